"""``/files/…``: a call's or a replay's audio track and a replay's report files, by id and name.

Which file is served is decided by the store (:mod:`voicereplay.pipeline.stored_files`): the URL
names a call or replay id and a track or report name from a fixed list, never a path, and a file
outside the artifacts folder is never served. Unknown ids and names are a JSON 404.

Range requests (seeking in a browser's audio player) are Starlette's :class:`FileResponse`:
in the installed Starlette (1.10) it answers ``Range: bytes=a-b``, ``a-`` and suffix ``-n``
with 206, ``Accept-Ranges: bytes`` and ``Content-Range: bytes a-b/size``, several ranges as
``multipart/byteranges``, a range starting past the end with 416 and ``Content-Range:
bytes */size``, and honours ``If-Range`` — so nothing is hand-written here (the tests pin each
case). Audio is served ``inline``; ``?download=1`` makes it an attachment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from voicereplay.errors import NotStoredError
from voicereplay.pipeline.stored_files import call_audio, replay_audio, report_file
from voicereplay.web.deps import StoreDep

router = APIRouter(prefix="/files", tags=["files"])

MEDIA_TYPES = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".flac": "audio/flac",
    ".m4a": "audio/mp4", ".webm": "audio/webm",
    ".json": "application/json", ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml", ".png": "image/png", ".svg": "image/svg+xml",
}
# A served file is data, never a page: no scripts (an SVG could hold one), no type sniffing.
HEADERS = {"X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
           "Cache-Control": "private, max-age=3600"}
Download = Annotated[bool, Query(description="serve as an attachment (a download)")]


def _file(path: Path, name: str, download: bool) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(),
                                                         "application/octet-stream"),
                        filename=name, headers=HEADERS,
                        content_disposition_type="attachment" if download else "inline")


def _name(*parts: str, path: Path) -> str:
    """A download name made of ``parts`` (safe characters only) and the file's suffix."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts)) + (path.suffix.lower() or ".bin")


@router.get("/calls/{provider}/{call_id}/{track}")
def call_track(provider: str, call_id: str, track: str, store: StoreDep,
               download: Download = False) -> FileResponse:
    """A call's recording: ``track`` is stereo, customer, agent or mixed (what it has)."""
    if provider not in ("vapi", "retell"):
        raise NotStoredError(f"no provider {provider!r}: use vapi or retell")
    path = call_audio(store, provider, call_id, track)
    return _file(path, _name(provider, call_id, track, path=path), download)


@router.get("/replays/{replay_id}/report/{name}")
def replay_report(replay_id: str, name: str, store: StoreDep,
                  download: Download = False) -> FileResponse:
    """A report file of the replay: report.json, report.md, junit.xml, latency.png|svg,
    waveform.png|svg."""
    path = report_file(store, replay_id, name)
    return _file(path, name, download)


@router.get("/replays/{replay_id}/{track}")
def replay_track(replay_id: str, track: str, store: StoreDep,
                 download: Download = False) -> FileResponse:
    """A replay's audio: ``track`` is stereo, customer, agent or mixed (what it has)."""
    path = replay_audio(store, replay_id, track)
    return _file(path, _name("replay", path.parent.name, track, path=path), download)
