"""Audio for every layer: the :class:`Audio` type, files, resampling, channel layout, and the
one voice-activity detector.

* :class:`Audio` is mono float32 in [-1, 1] at ``rate`` Hz; a multi-channel file reads as one
  ``Audio`` per channel (:func:`load_channels`, through soundfile's bundled libsndfile: WAV incl.
  8 kHz µ-law, FLAC, OGG, MP3). A file it cannot read is a
  :class:`~voicereplay.errors.RecordingError` naming the file. :func:`write_wav` writes 16-bit
  PCM.
* :func:`resample` uses soxr (a band-limited resampler): what lies above the new Nyquist
  frequency is filtered out instead of folding back as a false tone.
* Voice activity (:func:`voice_activity`, :func:`speech_spans`): per frame of ``frame`` seconds,
  RMS energy in dBFS; a frame is active above a threshold relative to the track's own level —
  :data:`RELATIVE_DB` below its loudest frame, but at least :data:`NOISE_MARGIN_DB` above its
  noise floor (the :data:`NOISE_PERCENTILE`-th percentile of frame energies) and at least
  :data:`FLOOR_DB`. So quiet 8 kHz phone audio and loud studio audio read alike, steady line
  noise stays out, and a track with no sound (digital silence, or steady noise with no quieter
  stretch) has no active frame. :func:`silent` only asks whether anything reaches the floor.
* Channel layout (:func:`detect_layout`): which channel of a stereo recording holds the caller
  and which the agent is decided from evidence — each channel's voice activity against the
  call's turn times (:func:`pick_channel`) — never from a provider's documented layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from voicereplay.errors import RecordingError
from voicereplay.models import Call, RecordingKind

__all__ = [
    "FLOOR_DB",
    "FRAME",
    "MIN_MARGIN",
    "MIN_SCORE",
    "NOISE_MARGIN_DB",
    "NOISE_PERCENTILE",
    "RELATIVE_DB",
    "Audio",
    "ChannelLayout",
    "ChannelPick",
    "ChannelScore",
    "Span",
    "cut",
    "detect_layout",
    "load_channels",
    "mix",
    "mono",
    "pick_channel",
    "resample",
    "silent",
    "speech_spans",
    "voice_activity",
    "write_wav",
]

Span = tuple[float, float]  # (start, end), seconds
Party = Literal["user", "agent"]

FRAME = 0.02  # seconds per voice-activity frame
RELATIVE_DB = 40.0  # a frame is speech within this many dB of the loudest frame …
NOISE_MARGIN_DB = 6.0  # … and at least this far above the noise floor …
NOISE_PERCENTILE = 10.0  # (the noise floor: this percentile of the frames' energies)
FLOOR_DB = -70.0  # … and above this absolute level (dBFS)
MIN_SCORE = 0.2  # a channel carries a party when its score reaches this …
MIN_MARGIN = 0.2  # … and beats the runner-up by this much


@dataclass(frozen=True)
class Audio:
    """Mono audio: float32 samples in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    @classmethod
    def silence(cls, seconds: float, rate: int) -> Audio:
        return cls(np.zeros(max(0, round(seconds * rate)), dtype=np.float32), rate)


# -- files ------------------------------------------------------------------------------------
def load_channels(path: Path | str) -> list[Audio]:
    """Every channel of an audio file, each as mono float32."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types on odd files: name the file
        raise RecordingError(
            f"cannot read audio {path}: {exc}; the recording may be corrupt or truncated",
            provider="recording",
        ) from exc
    if data.shape[0] == 0:
        raise RecordingError(f"audio {path} holds no samples", provider="recording")
    return [Audio(np.ascontiguousarray(data[:, c]), int(rate)) for c in range(data.shape[1])]


def write_wav(path: Path | str, channels: list[Audio]) -> Path:
    """Write channels (same rate; shorter ones padded with silence) as 16-bit PCM WAV."""
    import soundfile

    if not channels:
        raise ValueError("no channels to write")
    rate = channels[0].rate
    if any(c.rate != rate for c in channels):
        raise ValueError("all channels must share one sample rate")
    length = max(len(c.samples) for c in channels)
    frame = np.zeros((length, len(channels)), dtype=np.float32)
    for index, channel in enumerate(channels):
        frame[: len(channel.samples), index] = channel.samples
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(frame, -1.0, 1.0), rate, subtype="PCM_16")
    return path


# -- samples ----------------------------------------------------------------------------------
def resample(audio: Audio, rate: int) -> Audio:
    """``audio`` at ``rate`` Hz (soxr, high quality: band-limited, no aliasing)."""
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    if audio.rate == rate:
        return audio
    if len(audio.samples) == 0:
        return Audio(np.zeros(0, dtype=np.float32), rate)
    import soxr

    samples = soxr.resample(np.asarray(audio.samples, dtype=np.float32), audio.rate, rate,
                            quality="HQ")
    return Audio(np.asarray(samples, dtype=np.float32), rate)


def cut(audio: Audio, start: float, end: float) -> Audio:
    """The part of ``audio`` between ``start`` and ``end`` seconds (clamped to the audio)."""
    first = max(0, int(round(start * audio.rate)))
    last = min(len(audio.samples), int(round(end * audio.rate)))
    return Audio(audio.samples[first:max(first, last)].copy(), audio.rate)


def mix(channels: list[Audio]) -> Audio:
    """The sum of channels (same rate), clipped to [-1, 1]."""
    length = max(len(c.samples) for c in channels)
    total = np.zeros(length, dtype=np.float32)
    for channel in channels:
        total[: len(channel.samples)] += channel.samples
    return Audio(np.clip(total, -1.0, 1.0), channels[0].rate)


def mono(channels: list[Audio]) -> Audio:
    """One track from several channels of one file: their average."""
    if len(channels) == 1:
        return channels[0]
    samples = np.mean([c.samples for c in channels], axis=0).astype(np.float32)
    return Audio(samples, channels[0].rate)


# -- voice activity ---------------------------------------------------------------------------
def _levels(samples: np.ndarray, rate: int, frame: float) -> np.ndarray:
    """RMS energy per frame, dBFS (float or integer PCM; 2-D arrays averaged to mono)."""
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    data = np.asarray(samples)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float64) / float(np.iinfo(data.dtype).max)
    data = data.astype(np.float64, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1)
    size = max(1, int(round(frame * rate)))
    count = len(data) // size
    blocks = data[: count * size].reshape(count, size)
    rms = np.sqrt(np.mean(blocks**2, axis=1)) if count else np.zeros(0)
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-10)))


def voice_activity(audio: Audio, frame: float = FRAME) -> np.ndarray:
    """Per-frame voice activity (bool) of ``audio``, see the module docstring."""
    level = _levels(audio.samples, audio.rate, frame)
    if level.size == 0:
        return np.zeros(0, dtype=bool)
    loudest = float(level.max())
    noise = float(np.percentile(level, NOISE_PERCENTILE))
    return np.asarray(level > max(loudest - RELATIVE_DB, noise + NOISE_MARGIN_DB, FLOOR_DB))


def silent(audio: Audio, frame: float = FRAME) -> bool:
    """True when no frame of ``audio`` reaches :data:`FLOOR_DB` (nothing to hear at all)."""
    level = _levels(audio.samples, audio.rate, frame)
    return bool(level.size == 0 or level.max() <= FLOOR_DB)


def speech_spans(audio: Audio, *, frame: float = FRAME, min_speech: float = 0.1,
                 min_gap: float = 0.25) -> list[Span]:
    """Speech spans of one track, seconds from its start, sorted and non-overlapping.

    Active frames (:func:`voice_activity`) are joined into spans; gaps shorter than ``min_gap``
    are bridged (pauses between words), then spans shorter than ``min_speech`` are dropped
    (clicks, blips).
    """
    active = voice_activity(audio, frame)
    if not active.any():
        return []
    seconds = max(1, int(round(frame * audio.rate))) / audio.rate
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    runs = [(float(a * seconds), float(b * seconds))
            for a, b in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[Span] = [runs[0]]
    for start, end in runs[1:]:
        if start - merged[-1][1] < min_gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(round(s, 6), round(e, 6)) for s, e in merged if e - s >= min_speech]


# -- channel layout ---------------------------------------------------------------------------
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


def pick_channel(channels: list[Audio], call: Call, party: Party) -> ChannelPick:
    """The channel whose voice activity matches the turns of ``party``, if one clearly does.

    Each channel is scored by the share of its frames active inside the caller's turns minus
    the share active inside the agent's turns (the reverse for the agent); the best must reach
    :data:`MIN_SCORE` and beat the runner-up by :data:`MIN_MARGIN`.
    """
    user = _spans(call, "user")
    agent = _spans(call, "agent")
    if not user or not agent:
        return ChannelPick(party, None, (), "the baseline has no timed turns of both parties")
    scores: list[ChannelScore] = []
    for index, channel in enumerate(channels):
        active = voice_activity(channel)
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


def _spans(call: Call, role: Party) -> list[Span]:
    return [(t.start, t.end) for t in call.turns
            if t.role == role and t.start is not None and t.end is not None and t.end > t.start]


def _share(active: np.ndarray, spans: list[Span]) -> float:
    """The share of frames inside ``spans`` that are active (frames judged by their centre)."""
    if active.size == 0:
        return 0.0
    centres = (np.arange(active.size) + 0.5) * FRAME
    inside = np.zeros(active.size, dtype=bool)
    for start, end in spans:
        inside |= (centres >= start) & (centres < end)
    count = int(inside.sum())
    return float(active[inside].sum()) / count if count else 0.0
