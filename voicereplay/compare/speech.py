"""Who spoke when, measured in a call's (or a replay's) recordings.

:func:`speech_of` finds the per-party tracks among the recordings (the ``agent`` and
``customer`` files, else the two channels of ``stereo``) and returns each party's speech spans
from :func:`~voicereplay.audio.speech_spans`, or ``None`` when there is no per-party
audio (a mixed recording cannot tell the parties apart); metrics then use the turns' times.
"""

from __future__ import annotations

from collections.abc import Sequence

from voicereplay.audio import speech_spans
from voicereplay.compare.activity import party_tracks
from voicereplay.errors import RecordingError
from voicereplay.models import Call, Recording, local_recordings

__all__ = ["Spans", "speech_of"]

Spans = dict[str, list[tuple[float, float]]]


def speech_of(recordings: Sequence[Recording], call: Call | None = None,
              warnings: list[str] | None = None) -> Spans | None:
    """``{"agent": [(start, end), …], "caller": […]}`` in seconds, or ``None``.

    Unreadable audio gives ``None`` too, with the reason appended to ``warnings`` (the
    comparison then measures from the turns' times instead of failing).
    """
    try:
        tracks = party_tracks(local_recordings(recordings), call)
    except RecordingError as exc:
        if warnings is None:
            raise
        warnings.append(f"{exc.message}; speech measured from the transcript's times instead")
        return None
    if tracks is None:
        return None
    return {party: speech_spans(audio) for party, audio in tracks.items()}
