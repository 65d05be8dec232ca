"""The caller's side of a scripted replay: which audio is the caller, and one segment per turn.

Where the caller's audio comes from is decided from evidence, never guessed from a provider's
documented channel layout (Vapi puts the customer on channel 0, Retell on channel 1):

1. the per-party ``customer`` recording, when present and not silent;
2. else the channel of the ``stereo`` recording whose voice activity best matches the baseline's
   turn times, if one clearly does (:func:`voicereplay.audio.pick_channel`);
3. else no track: every caller turn is synthesized from its transcript.

The agent's stereo channel is found the same way; :func:`voicereplay.audio.detect_layout` gives
both, so the replay's stereo file can use the baseline's layout.

Failures: a recording that cannot be read raises :class:`~voicereplay.errors.RecordingError`
where it is loaded (:func:`~voicereplay.audio.load_channels`). A *silent* recording, or
a turn whose span is silent in the chosen track, is not an error: that turn falls back to TTS of
its transcript, and the segment's ``note`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voicereplay.audio import FRAME, Audio, ChannelPick, cut, pick_channel, silent, voice_activity
from voicereplay.errors import SimulationError, StageError
from voicereplay.models import Call, RecordingKind
from voicereplay.simulate.stages import TextToSpeech

__all__ = ["CallerSegment", "CallerTrack", "caller_segments", "find_caller_track",
           "original_segments"]

PAD = 0.1  # seconds of audio kept before and after each caller turn
DEFAULT_GAP = 0.5  # seconds the caller waits before speaking, when the baseline does not say
MIN_TURN_ACTIVITY = 0.1  # share of a turn's frames that must be active to use its audio

SegmentOrigin = Literal["original-audio", "tts-of-transcript", "caller-llm"]


@dataclass(frozen=True)
class CallerTrack:
    """The caller's audio for the whole call, and where it came from."""

    audio: Audio
    kind: RecordingKind  # "customer" or "stereo"
    channel: int
    pick: ChannelPick | None = None  # how a stereo channel was chosen


@dataclass(frozen=True)
class CallerSegment:
    """What the caller says in one turn: audio plus where it came from.

    ``lead``/``tail`` are the seconds of padding before/after the speech inside ``audio``;
    ``gap`` is the silence the caller left in the baseline before this turn (seconds).
    """

    turn_index: int | None  # index in the baseline call's turns (None: adaptive's LLM caller)
    text: str
    audio: Audio
    origin: SegmentOrigin
    gap: float = DEFAULT_GAP
    lead: float = 0.0
    tail: float = 0.0
    note: str | None = None  # why the transcript was synthesized instead of the audio used

    @property
    def speech(self) -> float:
        """Seconds from the start of the speech to its end."""
        return max(0.0, self.audio.duration - self.lead - self.tail)


def find_caller_track(
    call: Call, recordings: Mapping[RecordingKind, list[Audio]]
) -> tuple[CallerTrack | None, list[str]]:
    """The caller's track (see the module docstring), and notes on what was passed over."""
    notes: list[str] = []
    customer = recordings.get("customer") or []
    if customer:
        if not silent(customer[0]):
            return CallerTrack(customer[0], "customer", 0), notes
        notes.append("the customer recording is silent")
    stereo = recordings.get("stereo") or []
    if len(stereo) >= 2:
        pick = pick_channel(stereo, call, "user")
        if pick.channel is not None:
            return CallerTrack(stereo[pick.channel], "stereo", pick.channel, pick), notes
        notes.append(f"stereo recording: {pick.reason}")
    elif not customer:
        notes.append("no customer or stereo recording")
    return None, notes


def original_segments(
    call: Call, recordings: Mapping[RecordingKind, list[Audio]]
) -> dict[int, CallerSegment | str]:
    """For each baseline user turn (by index in ``call.turns``): its segment of original audio,
    or the reason it has none (no caller track, no times, or a silent span).

    Audio is cut at the turn's start/end with :data:`PAD` seconds either side (clamped to the
    track). :func:`caller_segments` synthesizes the turns this gives a reason for; ``voicereplay
    save`` writes the segments it gives into a scenario."""
    track, notes = find_caller_track(call, recordings)
    active = voice_activity(track.audio) if track else None
    gaps = _gaps(call)
    found: dict[int, CallerSegment | str] = {}
    for index, turn in enumerate(call.turns):
        if turn.role != "user":
            continue
        if track is None or active is None:
            found[index] = "; ".join(notes)
        elif turn.start is None or turn.end is None or turn.end <= turn.start:
            found[index] = "the turn has no start/end times"
        else:
            first, last = int(turn.start / FRAME), int(np.ceil(turn.end / FRAME))
            inside = active[first:last]
            if inside.size and inside.mean() >= MIN_TURN_ACTIVITY:
                audio = cut(track.audio, turn.start - PAD, turn.end + PAD)
                lead = min(PAD, turn.start)
                tail = min(PAD, max(0.0, audio.duration - lead - (turn.end - turn.start)))
                found[index] = CallerSegment(index, turn.text, audio, "original-audio",
                                             gap=gaps.get(index, DEFAULT_GAP), lead=lead,
                                             tail=tail)
            else:
                found[index] = (f"the {track.kind} recording is silent from "
                                f"{turn.start:.2f} s to {turn.end:.2f} s")
    return found


def caller_segments(
    call: Call,
    recordings: Mapping[RecordingKind, list[Audio]],
    tts_caller: TextToSpeech | None,
) -> list[CallerSegment]:
    """One segment per baseline user turn, in order: its original audio
    (:func:`original_segments`), or TTS of its text.

    A turn is synthesized when there is no caller track, the turn has no times, or its
    span is silent in the track; a blank turn with no audio is skipped. Raises
    :class:`SimulationError` when a turn needs TTS and no caller TTS was given.
    """
    gaps = _gaps(call)
    segments: list[CallerSegment] = []
    for index, found in original_segments(call, recordings).items():
        if isinstance(found, CallerSegment):
            segments.append(found)
            continue
        reason, turn = found, call.turns[index]
        if not turn.text.strip():
            continue  # nothing to say and nothing to play
        if tts_caller is None:
            raise SimulationError(
                f"caller turn {index} ({turn.text[:40]!r}) has no usable audio ({reason}) and "
                "no caller text-to-speech backend was given to synthesize it")
        try:
            audio = tts_caller.synthesize(turn.text).audio
        except StageError as exc:
            raise StageError(f"synthesizing caller turn {index} ({turn.text[:40]!r}): "
                             f"{exc.message}", stage=exc.stage, retryable=exc.retryable) from exc
        segments.append(CallerSegment(index, turn.text, audio, "tts-of-transcript",
                                      gap=gaps.get(index, DEFAULT_GAP),
                                      note=f"synthesized from the transcript: {reason}"))
    return segments


def _gaps(call: Call) -> dict[int, float]:
    """For each timed user turn: seconds between the end of the speech before it and its start."""
    timed = sorted(((t.start, i, t) for i, t in enumerate(call.turns)
                    if t.role in ("user", "agent") and t.start is not None),
                   key=lambda item: (item[0], item[1]))
    gaps: dict[int, float] = {}
    previous_end = 0.0
    for start, index, turn in timed:
        if turn.role == "user":
            gaps[index] = max(0.0, start - previous_end)
        previous_end = max(previous_end, turn.end if turn.end is not None else start)
    return gaps
