"""Waveform peaks of a recording, computed once and cached beside the audio.

A page that shows a long call's waveform should not make the browser download and decode the
whole WAV first: :func:`waveform_peaks` reads the file once in blocks (soundfile), keeps the
highest and lowest sample of each of ``points`` equal slices (over every channel), and writes
them to ``<file>.peaks.json``. The cache is used while the audio's size and modification time
match what it was computed from, and rebuilt otherwise. The result is what wavesurfer.js takes
as ``peaks`` (``[maxima, minima]``, each from -1 to 1) with the ``duration`` in seconds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from voicereplay.errors import RecordingError

__all__ = ["DEFAULT_POINTS", "Peaks", "cache_path", "compute_peaks", "waveform_peaks"]

log = logging.getLogger(__name__)

DEFAULT_POINTS = 1200
CACHE_VERSION = 1


class Peaks(BaseModel):
    """``peaks[0]``: the highest sample of each slice, ``peaks[1]``: the lowest (-1..1)."""

    duration: float = Field(description="seconds")
    sample_rate: int
    channels: int
    points: int
    peaks: list[list[float]]


def cache_path(audio: Path) -> Path:
    return audio.with_name(audio.name + ".peaks.json")


def compute_peaks(audio: Path, points: int = DEFAULT_POINTS) -> Peaks:
    """Min/max of ``points`` slices of ``audio``, read block by block (a long call is never
    held in memory whole). A file shorter than ``points`` samples gets one point per sample."""
    import soundfile

    try:
        info = soundfile.info(str(audio))
        frames, rate = int(info.frames), int(info.samplerate)
        slice_frames = max(1, math.ceil(frames / max(1, points)))
        highs: list[float] = []
        lows: list[float] = []
        for block in soundfile.blocks(str(audio), blocksize=slice_frames, dtype="float32",
                                      always_2d=True):
            if block.size == 0:
                continue
            highs.append(round(float(np.max(block)), 4))
            lows.append(round(float(np.min(block)), 4))
    except RuntimeError as exc:  # soundfile's LibsndfileError: name the file
        raise RecordingError(f"cannot read audio {audio.name}: {exc}",
                             provider="recording") from exc
    return Peaks(duration=frames / rate if rate else 0.0, sample_rate=rate,
                 channels=int(info.channels), points=len(highs), peaks=[highs, lows])


def _source(audio: Path) -> dict[str, int]:
    stat = audio.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _cached(path: Path, source: dict[str, int], points: int) -> Peaks | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("version") != CACHE_VERSION or data.get("source") != source \
            or data.get("requested") != points:
        return None
    try:
        return Peaks.model_validate(data.get("peaks"))
    except ValueError:
        return None


def _write(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically; a store that cannot be written to just gets no cache."""
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".peaks-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out, separators=(",", ":"))
        os.replace(temp, path)
    except OSError as exc:
        log.info("waveform peaks of %s not cached: %s", path.name, exc)


def waveform_peaks(audio: Path, points: int = DEFAULT_POINTS) -> Peaks:
    """The peaks of ``audio``, from ``<audio>.peaks.json`` when it is current (see module)."""
    try:
        source = _source(audio)
    except OSError as exc:
        raise RecordingError(f"audio {audio.name} is missing from the store",
                             provider="recording") from exc
    path = cache_path(audio)
    cached = _cached(path, source, points)
    if cached is not None:
        return cached
    peaks = compute_peaks(audio, points)
    _write(path, {"version": CACHE_VERSION, "source": source, "requested": points,
                  "peaks": peaks.model_dump()})
    return peaks
