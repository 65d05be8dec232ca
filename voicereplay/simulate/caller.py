"""The caller's side of a scripted replay: which audio is the caller, and one segment per turn.

Where the caller's audio comes from is decided from evidence, never guessed from a provider's
documented channel layout (Vapi puts the customer on channel 0, Retell on channel 1):

1. the per-party ``customer`` recording, when present and not silent;
2. else the channel of the ``stereo`` recording whose voice activity best matches the baseline's
   turn times. Each channel is scored by the share of frames active inside the caller's turns
   minus the share active inside the agent's turns (:class:`ChannelScore`); a channel is picked
   only when it clearly wins (:data:`MIN_SCORE`, :data:`MIN_MARGIN`);
3. else no track: every caller turn is synthesized from its transcript.

The agent's stereo channel is found the same way; :func:`detect_layout` gives both, so the
replay's stereo file can use the baseline's layout.

Failures: a recording that cannot be read raises :class:`~voicereplay.errors.RecordingError`
where it is loaded (:func:`~voicereplay.simulate.audio.load_channels`). A *silent* recording, or
a turn whose span is silent in the chosen track, is not an error: that turn falls back to TTS of
its transcript, and the segment's ``note`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voicereplay.errors import SimulationError, StageError
from voicereplay.models import Call, RecordingKind
from voicereplay.simulate.audio import activity, cut
from voicereplay.simulate.stages import Audio, TextToSpeech

__all__ = [
    "MIN_MARGIN",
    "MIN_SCORE",
    "CallerSegment",
    "CallerTrack",
    "ChannelLayout",
    "ChannelPick",
    "ChannelScore",
    "caller_segments",
    "detect_layout",
    "find_caller_track",
    "pick_channel",
]

FRAME = 0.02  # seconds per activity frame
PAD = 0.1  # seconds of audio kept before and after each caller turn
DEFAULT_GAP = 0.5  # seconds the caller waits before speaking, when the baseline does not say
MIN_SCORE = 0.2  # the winning channel's score must reach this …
MIN_MARGIN = 0.2  # … and beat the runner-up by this much
MIN_TURN_ACTIVITY = 0.1  # share of a turn's frames that must be active to use its audio

Party = Literal["user", "agent"]
SegmentOrigin = Literal["original-audio", "tts-of-transcript", "caller-llm"]


@dataclass(frozen=True)
class ChannelScore:
    """How one channel's voice activity fits the baseline's turns (shares of frames, 0–1)."""

    channel: int
    user: float  # share of frames active inside the caller's turns
    agent: float  # share of frames active inside the agent's turns

    def score(self, party: Party) -> float:
        return self.user - self.agent if party == "user" else self.agent - self.user


@dataclass(frozen=True)
class ChannelPick:
    """The channel that carries ``party``, or ``None`` with the reason none was picked."""

    party: Party
    channel: int | None
    scores: tuple[ChannelScore, ...]
    reason: str


@dataclass(frozen=True)
class ChannelLayout:
    """Which channel of a stereo file holds whom. ``detected`` is False for the default."""

    caller: int = 0
    agent: int = 1
    detected: bool = False

    @property
    def channels(self) -> int:
        return max(self.caller, self.agent) + 1


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


def pick_channel(channels: list[Audio], call: Call, party: Party) -> ChannelPick:
    """The channel whose voice activity matches the turns of ``party``, if one clearly does."""
    user = _spans(call, "user")
    agent = _spans(call, "agent")
    if not user or not agent:
        return ChannelPick(party, None, (), "the baseline has no timed turns of both parties")
    scores: list[ChannelScore] = []
    for index, channel in enumerate(channels):
        active = activity(channel, frame=FRAME)
        scores.append(ChannelScore(index, _share(active, user), _share(active, agent)))
    ranked = sorted(scores, key=lambda s: s.score(party), reverse=True)
    best = ranked[0].score(party)
    runner_up = ranked[1].score(party) if len(ranked) > 1 else -1.0
    shown = ", ".join(f"ch{s.channel}={s.score(party):+.2f}" for s in scores)
    if not any(s.user or s.agent for s in scores):
        return ChannelPick(party, None, tuple(scores), "the recording is silent")
    if best < MIN_SCORE or best - runner_up < MIN_MARGIN:
        return ChannelPick(party, None, tuple(scores),
                           f"no channel clearly carries the {party} ({shown})")
    return ChannelPick(party, ranked[0].channel, tuple(scores),
                       f"ch{ranked[0].channel} carries the {party} ({shown})")


def detect_layout(call: Call, recordings: Mapping[RecordingKind, list[Audio]]) -> ChannelLayout:
    """The baseline stereo file's layout, or the default (caller ch0, agent ch1) if undecided."""
    stereo = recordings.get("stereo") or []
    if len(stereo) < 2:
        return ChannelLayout()
    caller = pick_channel(stereo, call, "user").channel
    agent = pick_channel(stereo, call, "agent").channel
    if caller is None or agent is None or caller == agent:
        return ChannelLayout()
    return ChannelLayout(caller=caller, agent=agent, detected=True)


def find_caller_track(
    call: Call, recordings: Mapping[RecordingKind, list[Audio]]
) -> tuple[CallerTrack | None, list[str]]:
    """The caller's track (see the module docstring), and notes on what was passed over."""
    notes: list[str] = []
    customer = recordings.get("customer") or []
    if customer:
        if activity(customer[0], frame=FRAME).any():
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


def caller_segments(
    call: Call,
    recordings: Mapping[RecordingKind, list[Audio]],
    tts_caller: TextToSpeech | None,
) -> list[CallerSegment]:
    """One segment per baseline user turn, in order: its original audio, or TTS of its text.

    Audio is cut at the turn's start/end with :data:`PAD` seconds either side (clamped to the
    track). A turn is synthesized when there is no caller track, the turn has no times, or its
    span is silent in the track; a blank turn with no audio is skipped. Raises
    :class:`SimulationError` when a turn needs TTS and no caller TTS was given.
    """
    track, notes = find_caller_track(call, recordings)
    active = activity(track.audio, frame=FRAME) if track else None
    gaps = _gaps(call)
    segments: list[CallerSegment] = []
    for index, turn in enumerate(call.turns):
        if turn.role != "user":
            continue
        gap = gaps.get(index, DEFAULT_GAP)
        if track is None or active is None:
            reason = "; ".join(notes)
        elif turn.start is None or turn.end is None or turn.end <= turn.start:
            reason = "the turn has no start/end times"
        else:
            first, last = int(turn.start / FRAME), int(np.ceil(turn.end / FRAME))
            inside = active[first:last]
            if inside.size and inside.mean() >= MIN_TURN_ACTIVITY:
                audio = cut(track.audio, turn.start - PAD, turn.end + PAD)
                lead = min(PAD, turn.start)
                tail = min(PAD, max(0.0, audio.duration - lead - (turn.end - turn.start)))
                segments.append(CallerSegment(index, turn.text, audio, "original-audio",
                                              gap=gap, lead=lead, tail=tail))
                continue
            reason = (f"the {track.kind} recording is silent from {turn.start:.2f} s "
                      f"to {turn.end:.2f} s")
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
        segments.append(CallerSegment(index, turn.text, audio, "tts-of-transcript", gap=gap,
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


def _spans(call: Call, role: Literal["user", "agent"]) -> list[tuple[float, float]]:
    return [(t.start, t.end) for t in call.turns
            if t.role == role and t.start is not None and t.end is not None and t.end > t.start]


def _share(active: np.ndarray, spans: list[tuple[float, float]]) -> float:
    """The share of frames inside ``spans`` that are active (frames judged by their centre)."""
    if active.size == 0:
        return 0.0
    centres = (np.arange(active.size) + 0.5) * FRAME
    inside = np.zeros(active.size, dtype=bool)
    for start, end in spans:
        inside |= (centres >= start) & (centres < end)
    count = int(inside.sum())
    return float(active[inside].sum()) / count if count else 0.0
