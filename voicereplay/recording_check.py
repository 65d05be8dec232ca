"""Checking a downloaded recording before a call is stored with it.

A recording that cannot be replayed is better left out of the store, with a warning that names
the file and what is wrong, than stored and found broken in the middle of a replay (which then
names an internal blob). :func:`recording_problem` decodes the whole file with soundfile and
answers why it cannot serve as the call's recording of that kind, or None when it can:

* it does not decode as audio (a WAV header with a garbage body, HTML, an empty file);
* it holds no samples;
* a ``stereo`` recording does not have 2 channels (caller and agent, one each);
* it ends before the call's transcript does (truncated download or export).

Without the recording, a scripted replay synthesizes the caller's turns from the transcript, as
it does for a call that never had audio.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import soundfile

from voicereplay.models import RecordingKind, Turn

__all__ = ["TRUNCATION_TOLERANCE", "recording_problem", "transcript_end"]

TRUNCATION_TOLERANCE = 0.5  # seconds a recording may stop short of the last turn's end
_CHANNELS: dict[RecordingKind, int] = {"stereo": 2}
_BLOCK = 1 << 16  # frames decoded at a time, so a long call never sits in memory whole


def transcript_end(turns: Iterable[Turn]) -> float | None:
    """Where the last timed turn ends (seconds from the start of the call), if any turn is."""
    ends = [t.end for t in turns if t.end is not None]
    return max(ends) if ends else None


def recording_problem(path: Path, kind: RecordingKind, *,
                      call_end: float | None = None) -> str | None:
    """What makes the file at ``path`` unusable as the call's ``kind`` recording, or None.

    ``call_end`` is where the call's transcript ends (:func:`transcript_end`); a recording that
    stops more than :data:`TRUNCATION_TOLERANCE` seconds before it is reported as truncated.
    """
    try:
        if path.stat().st_size == 0:
            return "is empty"
        with soundfile.SoundFile(str(path)) as audio:
            channels, rate = audio.channels, audio.samplerate
            frames = 0
            while True:
                block = audio.read(_BLOCK, dtype="int16", always_2d=True)
                if not len(block):
                    break
                frames += len(block)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        return f"is not audio that can be decoded ({_reason(exc)})"
    if frames == 0 or rate <= 0:
        return "holds no audio"
    wanted = _CHANNELS.get(kind)
    if wanted is not None and channels != wanted:
        return (f"has {channels} channel{'s' if channels != 1 else ''}; a {kind} recording "
                f"needs {wanted} (caller and agent)")
    duration = frames / rate
    if call_end is not None and duration + TRUNCATION_TOLERANCE < call_end:
        return f"ends at {duration:.1f} s but the transcript runs to {call_end:.1f} s"
    return None



def _reason(exc: Exception) -> str:
    """libsndfile's reason, without the internal path it names ("Error opening '…': ")."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    return re.sub(r"^Error opening .*?: ", "", text).rstrip(".") or type(exc).__name__
