"""The files a face may hand out: a call's or a replay's audio track and a replay's report
files, found by id and name in the store — never by a path a user gave.

Every function looks the call or replay up in the store, picks the file by a name from a fixed
list (:data:`~voicereplay.models.RECORDING_KINDS`, :data:`REPORT_FILES`), and checks that the
file it found lies inside the artifacts folder (a stored path that points elsewhere is not
served). Anything missing is a :class:`~voicereplay.errors.NotStoredError` that says what is.
"""

from __future__ import annotations

from pathlib import Path

from voicereplay.compare.comparison import recordings_dir
from voicereplay.compare.files import FIGURE_FORMATS
from voicereplay.errors import NotStoredError
from voicereplay.models import RECORDING_KINDS, Recording
from voicereplay.store import Store

__all__ = ["REPORT_FILES", "call_audio", "replay_audio", "report_file"]

REPORT_FILES: tuple[str, ...] = (
    "report.json", "report.md", "junit.xml",
    *(f"{chart}.{fmt}" for chart in ("latency", "waveform") for fmt in FIGURE_FORMATS),
)


def _inside(store: Store, path: Path, what: str) -> Path:
    """``path`` when it is a file inside the artifacts folder (symlinks resolved)."""
    root = store.artifacts.root.resolve()
    try:
        real = path.resolve()
    except OSError:
        real = None
    if real is None or not real.is_relative_to(root) or not real.is_file():
        raise NotStoredError(f"{what} is not in the artifact store")
    return real


def _track(store: Store, recordings: list[Recording], track: str, what: str) -> Path:
    if track not in RECORDING_KINDS:
        raise NotStoredError(f"no track {track!r}: tracks are {', '.join(RECORDING_KINDS)}")
    found = next((r for r in recordings if r.kind == track), None)
    if found is None or not found.path:
        have = [r.kind for r in recordings if r.path]
        raise NotStoredError(f"{what} has no {track} audio"
                             + (f" (it has {', '.join(have)})" if have else ""))
    return _inside(store, Path(found.path), f"the {track} audio of {what}")


def call_audio(store: Store, provider: str, call_id: str, track: str) -> Path:
    """The local file of the call's ``track`` (stereo, customer, agent or mixed)."""
    if track in RECORDING_KINDS:
        found = store.calls.recording_file(call_id, provider, track)
        if found is not None:
            return _inside(store, Path(found), f"the {track} audio of call {call_id}")
    call = store.get_call(call_id, provider)  # what is missing, said by the slow way
    return _track(store, call.recordings, track, f"call {call.call_id}")


def replay_audio(store: Store, replay_id: str, track: str) -> Path:
    """The local file of the replay's ``track``."""
    replay = store.replays.get(replay_id)
    return _track(store, replay.recordings, track, f"replay {replay.id[:12]}")


def report_file(store: Store, replay_id: str, name: str) -> Path:
    """One of the replay's report files (:data:`REPORT_FILES`), from its folder."""
    if name not in REPORT_FILES:
        raise NotStoredError(f"no report file {name!r}: they are {', '.join(REPORT_FILES)}")
    replay = store.replays.get(replay_id)
    folder = recordings_dir(replay)
    if folder is None:
        raise NotStoredError(f"replay {replay.id[:12]} has no folder of files")
    return _inside(store, folder / name, f"{name} of replay {replay.id[:12]}")
