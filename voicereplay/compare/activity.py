"""Who spoke when, measured in the recordings: per-party tracks and their speech spans.

:func:`party_tracks` gives the agent's and the caller's audio as separate mono tracks, from the
per-party files (``agent`` / ``customer`` kinds) or from the two channels of a ``stereo`` file.
:func:`party_speech` finds speech in each track with the one voice-activity detector
(:func:`voicereplay.audio.speech_spans`) and returns ``(start, end)`` spans in **seconds from
the start of the track** (= from the call start for a provider's recording).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from voicereplay.audio import (
    Audio,
    ChannelLayout,
    Span,
    detect_layout,
    load_channels,
    mono,
    speech_spans,
)
from voicereplay.models import Call, RecordingKind

__all__ = ["Recordings", "party_speech", "party_tracks"]

# kind → file; keyed by plain strings or by RecordingKind (Mapping keys are invariant)
Recordings = Mapping[str, Path | str] | Mapping[RecordingKind, Path | str]


def party_tracks(recordings: Recordings, call: Call | None = None) -> dict[str, Audio] | None:
    """``{"agent": Audio, "caller": Audio}``: each party's mono track, or None if unknown.

    ``recordings`` maps a recording kind (``agent``, ``customer``, ``stereo``, ``mixed``) to its
    file. Both per-party files win (several channels in one: their average); else the stereo
    file's channels, laid out by :func:`~voicereplay.audio.detect_layout` when ``call`` is given
    (voice activity against the call's turn times) and caller ch0 / agent ch1 otherwise. A
    mixed-only call, or a "stereo" file with one channel, gives None. A file that cannot be read
    raises :class:`~voicereplay.errors.RecordingError` naming it.
    """
    if "agent" in recordings and "customer" in recordings:
        return {"agent": mono(load_channels(Path(recordings["agent"]))),
                "caller": mono(load_channels(Path(recordings["customer"])))}
    if "stereo" not in recordings:
        return None
    channels = load_channels(Path(recordings["stereo"]))
    if len(channels) < 2:
        return None
    if call is not None:
        found: dict[RecordingKind, list[Audio]] = {"stereo": channels}
        layout = detect_layout(call, found)
    else:
        layout = ChannelLayout()
    return {"agent": channels[layout.agent], "caller": channels[layout.caller]}


def party_speech(tracks: Mapping[str, Audio], **options: float) -> dict[str, list[Span]]:
    """:func:`~voicereplay.audio.speech_spans` of every track (``options``: frame, min_speech,
    min_gap)."""
    return {party: speech_spans(audio, **options) for party, audio in tracks.items()}
