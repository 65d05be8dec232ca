"""The replay's virtual clock: caller and agent audio laid out on one timeline, one track each.

The replay runs faster (or slower) than real time; the timeline is what a listener would have
heard. Times are seconds from the start of the replayed call:

- the agent starts speaking :func:`response_latency` after the caller's speech ends — endpointing
  + STT latency + LLM time to first token (tool rounds included) + TTS time to first audio,
  all as measured on this machine;
- the caller's next turn starts after the agent's audio ends plus the gap the caller left in the
  baseline before that turn.

:meth:`Timeline.render` mixes the placed clips into the replay's tracks (``stereo``,
``customer``, ``agent``, ``mixed``), all at the timeline's rate and all exactly
:attr:`Timeline.duration` long; the stereo file uses the baseline's channel layout.
:func:`write_tracks` writes them as WAV files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from voicereplay.audio import Audio, ChannelLayout, mix, resample, write_wav
from voicereplay.errors import StoreError
from voicereplay.models import RECORDING_KINDS, Recording, RecordingKind

__all__ = ["DEFAULT_RATE", "Span", "Timeline", "response_latency", "write_tracks"]

DEFAULT_RATE = 16000
Party = Literal["caller", "agent"]


@dataclass(frozen=True)
class Span:
    """Where placed speech sits on the timeline (seconds); ``cut`` if the limit truncated it."""

    start: float
    end: float
    cut: bool = False


def response_latency(*, endpointing: float, stt: float, llm_ttft: float,
                     tts_ttfa: float) -> float:
    """Seconds from the end of the caller's speech to the start of the agent's audio."""
    return endpointing + stt + llm_ttft + tts_ttfa


class Timeline:
    """Audio clips per party at positions on one clock, rendered to equal-length tracks.

    ``limit`` (seconds, e.g. the agent's max call duration) stops the call: nothing starts at or
    after it, and a clip crossing it is cut there. ``tail`` is the silence after the last clip.
    """

    def __init__(self, rate: int = DEFAULT_RATE, *, limit: float | None = None,
                 tail: float = 0.25) -> None:
        if rate <= 0:
            raise ValueError("the timeline needs a positive sample rate")
        self.rate = rate
        self.limit = limit
        self.tail = tail
        self._clips: dict[Party, list[tuple[int, np.ndarray]]] = {"caller": [], "agent": []}
        self._speech_end = 0.0
        self._audio_end = 0.0
        self._stopped = False

    @property
    def speech_end(self) -> float:
        """Where the last placed speech (either party, padding excluded) ends."""
        return self._speech_end

    @property
    def stopped(self) -> bool:
        """True once the limit was reached."""
        return self._stopped

    @property
    def duration(self) -> float:
        """Seconds of rendered audio: the end of the last clip plus the tail."""
        return self._samples() / self.rate

    def place(self, party: Party, audio: Audio, at: float, *, lead: float = 0.0,
              tail: float = 0.0) -> Span | None:
        """Put ``audio`` so that its speech (after ``lead`` s of padding) starts at ``at``.

        Returns where the speech sits, or ``None`` if ``at`` is at or past the limit.
        """
        at = max(0.0, at)
        if self._stopped or (self.limit is not None and at >= self.limit):
            self._stopped = True
            return None
        audio = resample(audio, self.rate)
        samples = audio.samples
        begin = at - lead
        if begin < 0:  # padding before the call start is dropped
            samples = samples[round(-begin * self.rate):]
            begin = 0.0
        end = begin + len(samples) / self.rate
        speech_end = max(at, end - tail)
        cut = False
        if self.limit is not None and end > self.limit:
            samples = samples[: max(0, round((self.limit - begin) * self.rate))]
            end, speech_end, cut = self.limit, min(speech_end, self.limit), True
            self._stopped = True
        self._clips[party].append((round(begin * self.rate), samples))
        self._speech_end = max(self._speech_end, speech_end)
        self._audio_end = max(self._audio_end, end)
        return Span(at, speech_end, cut)

    def track(self, party: Party) -> Audio:
        """One party's audio for the whole timeline."""
        total = np.zeros(self._samples(), dtype=np.float32)
        for offset, samples in self._clips[party]:
            stop = min(len(total), offset + len(samples))
            total[offset:stop] += samples[: stop - offset]
        return Audio(np.clip(total, -1.0, 1.0), self.rate)

    def render(self, layout: ChannelLayout | None = None) -> dict[RecordingKind, list[Audio]]:
        """The replay's tracks as channel lists: ``stereo`` in ``layout``, the rest mono."""
        layout = layout or ChannelLayout()
        caller, agent = self.track("caller"), self.track("agent")
        silent = Audio(np.zeros(len(caller.samples), dtype=np.float32), self.rate)
        stereo = [silent] * layout.channels
        stereo[layout.caller], stereo[layout.agent] = caller, agent
        return {"stereo": stereo, "customer": [caller], "agent": [agent],
                "mixed": [mix([caller, agent])]}

    def _samples(self) -> int:
        end = self._audio_end + self.tail
        if self.limit is not None:
            end = min(end, max(self.limit, self._audio_end))
        return round(end * self.rate)


def write_tracks(out_dir: Path, tracks: Mapping[RecordingKind, list[Audio]]) -> list[Recording]:
    """Write every rendered track as ``<kind>.wav`` in ``out_dir``, with size and sha256.

    Each file is written under a temporary name and renamed; on failure every file written is
    removed and a :class:`~voicereplay.errors.StoreError` raised.
    """
    written: list[Path] = []
    saved: list[Recording] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for kind in RECORDING_KINDS:
            partial, final = out_dir / f".{kind}.partial.wav", out_dir / f"{kind}.wav"
            written.append(partial)
            write_wav(partial, tracks[kind])
            partial.replace(final)
            written.append(final)
            data = final.read_bytes()
            saved.append(Recording(kind=kind, path=str(final), size=len(data),
                                   sha256=hashlib.sha256(data).hexdigest()))
    except (OSError, RuntimeError, ValueError) as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise StoreError(f"cannot write the replay's audio into {out_dir}: {exc}") from exc
    return saved
