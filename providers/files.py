"""Exported call files: a directory of provider call JSON with recordings beside it.

The layout (the one ``fixtures/`` uses)::

    DIR/<stem>.json                 a call in Vapi's or Retell's shape (auto-detected): a
                                    GET-call body or a webhook body (end-of-call-report,
                                    call_ended / call_analyzed)
    DIR/<stem>.<kind>.wav           recordings, kind = stereo | customer | agent | mixed
                                    (any audio suffix: .wav .mp3 .flac .ogg)
    DIR/<stem>.assistant.json       Vapi GET /assistant/{id} body, when the call has none inline
    DIR/<stem>.agent.json           Retell GET /get-agent body
    DIR/<stem>.llm.json             Retell GET /get-retell-llm body
    DIR/<stem>.knowledge.json       Retell: the file behind the call's
                                    knowledge_base_retrieved_contents_url (the contents its
                                    knowledge base retrieved; see retell_knowledge)

A call whose JSON names its recordings by a relative name or a ``file://`` URL (an export with
the recordings downloaded beside it: ``"stereoRecordingUrl": "stereo.wav"``,
``artifact.recording.mono.customerUrl``, Retell ``recording_multi_channel_url``) gets those
files, resolved against the call file's folder; ``<stem>.<kind>.wav`` wins when both exist.

Nothing outside the folder is read: a reference that leaves it (``..``, an absolute path
elsewhere, a symlink out of it) and a symlinked file that points out of it are refused with a
warning. A file that is not UTF-8 JSON, or nests too deep, is one bad file, reported by name.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from voicereplay.errors import (
    ConfigError,
    NotFoundError,
    PayloadError,
    RecordingError,
    UnknownFormatError,
    VoiceReplayError,
)
from voicereplay.models import RECORDING_KINDS, Call, Recording
from voicereplay.providers import retell_payload, vapi_payload
from voicereplay.providers.base import CallProvider
from voicereplay.providers.fields import MAX_DEPTH, check_depth
from voicereplay.providers.registry import register
from voicereplay.providers.retell_knowledge import knowledge_url, with_retrieved
from voicereplay.snapshot import AgentSnapshot

__all__ = ["CallFile", "FilesProvider", "detect", "local_reference", "read_json", "scan"]

SIDECARS = ("assistant", "agent", "llm", "knowledge")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a")
log = logging.getLogger(__name__)


@dataclass
class CallFile:
    path: Path
    recordings: dict[str, Path] = field(default_factory=dict)
    sidecars: dict[str, Path] = field(default_factory=dict)
    refused: str | None = None  # why the call file is not read (a symlink out of the folder)

    @property
    def stem(self) -> str:
        return self.path.stem


def scan(directory: Path) -> list[CallFile]:
    """Every call file in ``directory`` (sorted by name), with its sidecars."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory; pass --dir with exported call JSON")
    root = directory.resolve()
    files = sorted(p for p in directory.iterdir() if p.is_file())
    outside = {p for p in files if not p.resolve().is_relative_to(root)}
    calls: dict[str, CallFile] = {}
    for path in files:
        if path.suffix == ".json" and not any(path.name.endswith(f".{s}.json") for s in SIDECARS):
            calls[path.stem] = CallFile(path, refused=(
                "is a symlink that leaves the folder, so it is not read" if path in outside
                else None))
    for path in files:
        call_stem, _, middle = path.name.partition(".")
        call = calls.get(call_stem)
        if call is None:
            continue
        kind, _, suffix = middle.partition(".")
        known = (kind in RECORDING_KINDS and f".{suffix}" in AUDIO_SUFFIXES) or (
            kind in SIDECARS and suffix == "json")
        if known and path in outside:
            log.warning("%s is a symlink that leaves %s; not read", path, directory)
        elif kind in RECORDING_KINDS and f".{suffix}" in AUDIO_SUFFIXES:
            call.recordings[kind] = path
        elif kind in SIDECARS and suffix == "json":
            call.sidecars[kind] = path
    return list(calls.values())


def local_reference(url: str, folder: Path) -> tuple[Path | None, str | None]:
    """The file a recording URL names inside ``folder``, and why not when it names none.

    Relative names and ``file://`` URLs are resolved against ``folder``; ``http(s)://`` and
    other URLs are not local (``(None, None)``). A reference that leaves the folder (``..``, an
    absolute path elsewhere, a symlink out of it) or names no file is refused, never read:
    ``(None, reason)``.
    """
    text = url.strip()
    shown = repr(text[:200])
    parts = urlsplit(text)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None, f"recording {shown} is on another host; not read"
        name = unquote(parts.path)
    elif len(parts.scheme) > 1:
        return None, None  # http(s) and the like: not a local file
    else:
        name = text  # a relative name (or a Windows drive path, refused below)
    root = Path(folder).resolve()
    try:
        target: Path | None = (root / name).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        target = None
    if target is None or not target.is_relative_to(root):
        return None, f"recording {shown} leaves the folder {folder}; refused, not read"
    if not target.is_file():
        return None, f"recording {shown} is not a file in {folder}; not imported"
    return target, None


def read_json(path: Path) -> Any:
    """A JSON file (a UTF-8 byte-order mark is allowed); too deep a nesting is a PayloadError."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8 text ({exc.reason})", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=str(path)
        ) from None
    except RecursionError:
        raise PayloadError(
            f"nests more than {MAX_DEPTH} levels deep; no call payload does, so it is not read",
            source=str(path),
        ) from None
    check_depth(payload, source=str(path))
    return payload


def detect(payload: Any, *, source: str | None = None) -> Literal["vapi", "retell"]:
    """Which provider's shape ``payload`` is in."""
    if isinstance(payload, dict):
        if vapi_payload.is_vapi(payload):
            return "vapi"
        if retell_payload.is_retell(payload):
            return "retell"
    raise UnknownFormatError(
        "neither a Vapi call/end-of-call-report nor a Retell call/webhook body", source=source
    )


class FilesProvider(CallProvider):
    name = "files"

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._by_id: dict[str, CallFile] = {}
        self._indexed = False
        self._lock = threading.Lock()
        self.warnings: list[str] = []  # recordings refused or missing, one line each

    # -- reading ----------------------------------------------------------------------------
    def load(self, file: CallFile) -> Call:
        """Parse one call file; raises a VoiceReplayError naming the file if it is bad."""
        source = str(file.path)
        if file.refused:
            raise PayloadError(file.refused, source=source)
        payload = read_json(file.path)
        kind = detect(payload, source=source)
        parser = vapi_payload if kind == "vapi" else retell_payload
        call = parser.parse_call(payload, source=source)
        with self._lock:
            self._by_id.setdefault(call.call_id, file)
        recordings = {r.kind: r for r in call.recordings}
        merged = [
            recordings.get(k, Recording(kind=k)).model_copy(update={"path": None})
            for k in RECORDING_KINDS
            if k in file.recordings or self._referenced(file, recordings.get(k)) is not None
        ]
        return call.model_copy(update={"recordings": merged})

    def _referenced(self, file: CallFile, recording: Recording | None) -> Path | None:
        """The local file the call's own URL names for ``recording``, if any (and allowed).

        A refused reference is warned about once per file (and kept in ``self.warnings``).
        """
        if recording is None or not recording.url:
            return None
        path, problem = local_reference(recording.url, file.path.parent)
        if problem is not None:
            warning = f"{file.path.name}: {problem}"
            with self._lock:
                fresh = warning not in self.warnings
                if fresh:
                    self.warnings.append(warning)
            if fresh:
                log.warning("%s", warning)
        return path

    def iter_loaded(self) -> Iterator[tuple[CallFile, Call | VoiceReplayError]]:
        """Every file with its call, or the error that file gave (so one bad file is skipped)."""
        for file in scan(self.directory):
            try:
                yield file, self.load(file)
            except VoiceReplayError as exc:
                yield file, exc

    def _file_for(self, call_id: str) -> CallFile:
        with self._lock:
            known = self._by_id.get(call_id)
        if known is not None:
            return known
        if not self._indexed:
            for _ in self.iter_loaded():  # load() records every call id it reads
                pass
            self._indexed = True
        try:
            return self._by_id[call_id]
        except KeyError:
            by_stem = {f.stem: f for f in scan(self.directory)}
            if call_id in by_stem:
                return by_stem[call_id]
            raise NotFoundError(
                f"call {call_id} is not in {self.directory} (no file with that call id or name)",
                provider=self.name,
            ) from None

    # -- CallProvider ------------------------------------------------------------------------
    def get_call(self, call_id: str) -> Call:
        return self.load(self._file_for(call_id))

    def list_calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[Call]:
        count = 0
        for _file, result in self.iter_loaded():
            if not isinstance(result, Call):
                continue
            started = result.started_at
            if since and (started is None or started < since):
                continue
            if until and (started is None or started >= until):
                continue
            yield result
            count += 1
            if limit is not None and count >= limit:
                return

    def get_snapshot(self, call: Call) -> AgentSnapshot:
        file = self._file_for(call.call_id)
        side = {name: read_json(path) for name, path in file.sidecars.items()}
        if call.provider == "vapi":
            assistant = vapi_payload.embedded_assistant(call.raw) or side.get("assistant")
            return vapi_payload.build_snapshot(call, assistant)
        return retell_payload.build_snapshot(call, side.get("agent"), side.get("llm"))

    def fetch_knowledge(self, call: Call) -> Call:
        """A Retell call's retrieved knowledge-base contents, from ``<stem>.knowledge.json``."""
        if call.provider != "retell" or knowledge_url(call) is None:
            return call
        file = self._file_for(call.call_id)
        path = file.sidecars.get("knowledge")
        if path is None:
            warning = (f"{file.path.name} names knowledge-base contents at a URL, which an "
                       f"exported folder holds as {file.stem}.knowledge.json; there is none, so "
                       "the call is imported without them")
            return call.model_copy(update={"warnings": [*call.warnings, warning]})
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            warning = f"{path.name} cannot be read ({exc}); imported without it"
            return call.model_copy(update={"warnings": [*call.warnings, warning]})
        return with_retrieved(call, text)

    def open_recording(
        self, call: Call, recording: Recording
    ) -> AbstractContextManager[Iterator[bytes]]:
        file = self._file_for(call.call_id)
        path = file.recordings.get(recording.kind) or self._referenced(file, recording)
        if path is None:
            raise RecordingError(
                f"call {call.call_id} has no {recording.kind} recording beside {file.path.name}",
                provider=self.name,
            )
        return _read_chunks(path)


@contextmanager
def _read_chunks(path: Path) -> Iterator[Iterator[bytes]]:
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror}", provider="files") from exc
    with fh:
        yield iter(lambda: fh.read(1 << 16), b"")


register("files", lambda directory=None, **_: FilesProvider(_require_dir(directory)))


def _require_dir(directory: Path | str | None) -> Path:
    if directory is None:
        raise ConfigError("the files provider needs a directory: pass --dir DIR")
    return Path(directory)
