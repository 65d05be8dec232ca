"""Recordings of stored calls: the ``blobs`` and ``call_recordings`` tables, and home paths.

Paths are stored relative to the voicereplay home (``artifacts/blobs/ab/ab12….wav``) and made
absolute again when read, so a home that is moved or restored from a backup keeps working.
A path outside the home (which voicereplay never writes itself) stays absolute.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from voicereplay.models import RECORDING_KINDS, Call
from voicereplay.store.database import insert_missing
from voicereplay.store.tables import BlobRow, CallRecordingRow, utcnow

__all__ = ["HomePaths", "RecordingRepository"]


class HomePaths:
    """Paths under ``home`` to and from their stored (relative) form."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home).resolve()

    def stored(self, path: str | None) -> str | None:
        """``path`` relative to the home, as POSIX text; absolute if it lies outside."""
        if not path:
            return path
        candidate = Path(path)
        if not candidate.is_absolute():
            return PurePosixPath(candidate).as_posix()
        try:
            return candidate.resolve().relative_to(self.home).as_posix()
        except ValueError:
            return path

    def resolved(self, stored: str | None) -> str | None:
        """The absolute path of a stored path (relative ones are under the home)."""
        if not stored or Path(stored).is_absolute():
            return stored
        return str(self.home / stored)

    def stored_recordings(self, data: dict[str, Any]) -> dict[str, Any]:
        """A model dump (call or replay) with its recordings' paths in stored form."""
        return {**data, "recordings": [{**r, "path": self.stored(r.get("path"))}
                                       for r in data.get("recordings") or []]}

    def resolved_recordings(self, data: dict[str, Any]) -> dict[str, Any]:
        """A stored dump with its recordings' paths absolute under this home."""
        return {**data, "recordings": [{**r, "path": self.resolved(r.get("path"))}
                                       for r in data.get("recordings") or []]}


class RecordingRepository:
    """Row operations on ``call_recordings`` and ``blobs``, inside the caller's session."""

    def __init__(self, paths: HomePaths) -> None:
        self.paths = paths

    def replace(self, session: Session, call_pk: int, call: Call) -> None:
        """Replace the call's recording rows, registering downloaded files as blobs."""
        session.execute(delete(CallRecordingRow).where(CallRecordingRow.call_pk == call_pk))
        rows: dict[str, dict[str, Any]] = {}
        blobs: dict[str, dict[str, Any]] = {}
        for rec in call.recordings:
            if rec.kind in rows:
                continue  # Call.recording(kind) reads the first one too
            sha = rec.sha256 if rec.sha256 and rec.path else None
            if sha is not None:
                blobs.setdefault(sha, {"sha256": sha, "path": self.paths.stored(rec.path),
                                       "size": rec.size, "created_at": utcnow()})
            rows[rec.kind] = {"call_pk": call_pk, "kind": rec.kind, "url": rec.url,
                              "sha256": sha}
        if blobs:
            known = set(session.scalars(select(BlobRow.sha256).where(BlobRow.sha256.in_(blobs))))
            insert_missing(session, BlobRow, [b for s, b in blobs.items() if s not in known])
        if rows:
            session.execute(insert(CallRecordingRow), list(rows.values()))

    def kinds(self, session: Session, call_pks: list[int]) -> dict[int, tuple[str, ...]]:
        """Call pk → the kinds of its recordings, in :data:`RECORDING_KINDS` order."""
        found: dict[int, set[str]] = {}
        if call_pks:
            query = select(CallRecordingRow.call_pk, CallRecordingRow.kind).where(
                CallRecordingRow.call_pk.in_(call_pks))
            for pk, kind in session.execute(query):
                found.setdefault(pk, set()).add(kind)
        return {pk: tuple(k for k in RECORDING_KINDS if k in kinds)
                for pk, kinds in found.items()}

    def blob_known(self, session: Session, sha256: str) -> bool:
        """Whether a stored row refers to the blob with this content hash."""
        return session.get(BlobRow, sha256) is not None
