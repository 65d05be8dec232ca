"""Audio plumbing for the simulation: read and write WAV/FLAC, resample, cut, measure activity.

Everything works on :class:`~voicereplay.simulate.stages.Audio` (mono float32 in [-1, 1]); a
multi-channel file reads as one ``Audio`` per channel. Reading goes through soundfile (bundled
libsndfile: WAV incl. 8 kHz µ-law, FLAC, OGG, MP3); a file it cannot read is a
:class:`~voicereplay.errors.RecordingError` that names the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicereplay.errors import RecordingError
from voicereplay.simulate.stages import Audio

__all__ = [
    "activity",
    "cut",
    "load_channels",
    "mix",
    "resample",
    "write_wav",
]


def load_channels(path: Path | str) -> list[Audio]:
    """Every channel of an audio file, each as mono float32."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
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


def resample(audio: Audio, rate: int) -> Audio:
    """``audio`` at ``rate`` Hz (linear interpolation; enough for speech at 8–48 kHz)."""
    if audio.rate == rate or len(audio.samples) == 0:
        return Audio(audio.samples, rate) if len(audio.samples) == 0 else audio
    count = max(1, round(len(audio.samples) * rate / audio.rate))
    old = np.arange(len(audio.samples), dtype=np.float64) / audio.rate
    new = np.arange(count, dtype=np.float64) / rate
    return Audio(np.interp(new, old, audio.samples).astype(np.float32), rate)


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


def activity(audio: Audio, frame: float = 0.02, threshold_db: float = -40.0) -> np.ndarray:
    """Per-frame voice activity (bool), by energy relative to the loudest frame.

    A frame is active when its RMS is within ``threshold_db`` of the loudest frame's RMS and
    above an absolute floor, so silence and line noise stay inactive.
    """
    size = max(1, int(round(frame * audio.rate)))
    frames = len(audio.samples) // size
    if frames == 0:
        return np.zeros(0, dtype=bool)
    blocks = audio.samples[: frames * size].reshape(frames, size).astype(np.float64)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    peak = float(rms.max())
    if peak < 1e-4:  # digital silence
        return np.zeros(frames, dtype=bool)
    return rms > max(peak * 10 ** (threshold_db / 20), 1e-4)
