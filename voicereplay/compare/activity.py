"""Who spoke when, measured in the recordings: per-party tracks and their speech spans.

:func:`party_tracks` gives the agent's and the caller's audio as separate mono tracks, from the
per-party files (``agent`` / ``customer`` kinds) or from the two channels of a ``stereo`` file.
:func:`speech_spans` finds speech in one track with an energy detector and returns
``(start, end)`` spans in **seconds from the start of the track** (= from the call start for a
provider's recording), sorted and non-overlapping.

The detector (per frame of ``frame`` seconds, RMS energy in dBFS):

* the threshold is relative to the track's own level: :data:`RELATIVE_DB` below its loudest
  frame, but at least :data:`NOISE_MARGIN_DB` above its noise floor (the
  :data:`NOISE_PERCENTILE`-th percentile of frame energies) and at least :data:`FLOOR_DB`.
  So quiet 8 kHz phone audio and loud studio audio read alike, steady line noise stays out, and a
  track with no sound (digital silence, or one with no quieter stretch than its loudest,
  i.e. steady noise) gives ``[]``;
* active frames are joined into spans; gaps shorter than ``min_gap`` are bridged (pauses
  between words), then spans shorter than ``min_speech`` are dropped (clicks, blips).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from voicereplay.errors import RecordingError
from voicereplay.models import Call, RecordingKind
from voicereplay.simulate.audio import load_channels
from voicereplay.simulate.caller import ChannelLayout, detect_layout
from voicereplay.simulate.stages import Audio

__all__ = [
    "FLOOR_DB",
    "NOISE_MARGIN_DB",
    "NOISE_PERCENTILE",
    "RELATIVE_DB",
    "Recordings",
    "Span",
    "party_speech",
    "party_tracks",
    "speech_spans",
]

Span = tuple[float, float]  # (start, end), seconds
# kind → file; keyed by plain strings or by RecordingKind (Mapping keys are invariant)
Recordings = Mapping[str, Path | str] | Mapping[RecordingKind, Path | str]

RELATIVE_DB = 40.0  # a frame is speech within this many dB of the loudest frame …
NOISE_MARGIN_DB = 6.0  # … and at least this far above the noise floor …
NOISE_PERCENTILE = 10.0  # (the noise floor: this percentile of the frames' energies)
FLOOR_DB = -70.0  # … and above this absolute level (dBFS)


def speech_spans(samples: np.ndarray, rate: int, *, frame: float = 0.02,
                 min_speech: float = 0.1, min_gap: float = 0.25) -> list[Span]:
    """Speech spans of one mono track (seconds), see the module docstring.

    ``samples`` may be float in [-1, 1] or integer PCM (scaled by its dtype's range); a 2-D
    array (samples × channels) is averaged to mono.
    """
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
    if count == 0:
        return []
    blocks = data[: count * size].reshape(count, size)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-10))
    loudest = float(level.max())
    noise = float(np.percentile(level, NOISE_PERCENTILE))
    threshold = max(loudest - RELATIVE_DB, noise + NOISE_MARGIN_DB, FLOOR_DB)
    active = level > threshold
    if not active.any():
        return []
    seconds = size / rate
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    runs = [(float(a * seconds), float(b * seconds)) for a, b in zip(edges[::2], edges[1::2],
                                                                     strict=True)]
    merged: list[Span] = [runs[0]]
    for start, end in runs[1:]:
        if start - merged[-1][1] < min_gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(round(s, 6), round(e, 6)) for s, e in merged if e - s >= min_speech]


def party_tracks(recordings: Recordings, call: Call | None = None) -> dict[str, Audio] | None:
    """``{"agent": Audio, "caller": Audio}``: each party's mono track, or None if unknown.

    ``recordings`` maps a recording kind (``agent``, ``customer``, ``stereo``, ``mixed``) to its
    file. Both per-party files win; else the stereo file's channels, laid out by
    :func:`~voicereplay.simulate.caller.detect_layout` when ``call`` is given (voice activity
    against the call's turn times) and caller ch0 / agent ch1 otherwise. A mixed-only call, or a
    "stereo" file with one channel, gives None. A file that cannot be read raises
    :class:`~voicereplay.errors.RecordingError` naming it.
    """
    if "agent" in recordings and "customer" in recordings:
        return {"agent": _mono(Path(recordings["agent"])),
                "caller": _mono(Path(recordings["customer"]))}
    if "stereo" not in recordings:
        return None
    path = Path(recordings["stereo"])
    channels = _load(path)
    if len(channels) < 2:
        return None
    if call is not None:
        found: dict[RecordingKind, list[Audio]] = {"stereo": channels}
        layout = detect_layout(call, found)
    else:
        layout = ChannelLayout()
    return {"agent": channels[layout.agent], "caller": channels[layout.caller]}


def party_speech(tracks: Mapping[str, Audio], **options: float) -> dict[str, list[Span]]:
    """:func:`speech_spans` of every track (``options``: frame, min_speech, min_gap)."""
    return {party: speech_spans(audio.samples, audio.rate, **options)
            for party, audio in tracks.items()}


def _load(path: Path) -> list[Audio]:
    try:
        return load_channels(path)
    except RecordingError:
        raise
    except Exception as exc:  # soundfile may raise others on odd files: still name the file
        raise RecordingError(f"cannot read audio {path}: {exc}", provider="recording") from exc


def _mono(path: Path) -> Audio:
    channels = _load(path)  # a per-party file with several channels: their average
    if len(channels) == 1:
        return channels[0]
    samples = np.mean([c.samples for c in channels], axis=0).astype(np.float32)
    return Audio(samples, channels[0].rate)
