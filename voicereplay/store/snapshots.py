"""Stored agent snapshots: the ``snapshots`` table, keyed by the snapshot's content hash."""

from __future__ import annotations

from sqlalchemy.orm import Session

from voicereplay.snapshot import AgentSnapshot
from voicereplay.store.database import Database, insert_missing
from voicereplay.store.prefix import by_id_or_prefix
from voicereplay.store.tables import SnapshotRow, utcnow

__all__ = ["SnapshotRepository", "put_snapshot"]


def put_snapshot(session: Session, snapshot: AgentSnapshot) -> str:
    """Store ``snapshot`` in the caller's transaction unless its id is stored; returns the id."""
    if session.get(SnapshotRow, snapshot.id) is not None:
        return snapshot.id
    insert_missing(session, SnapshotRow, [{"id": snapshot.id,
                                           "data": snapshot.model_dump(mode="json"),
                                           "created_at": utcnow()}])
    return snapshot.id


class SnapshotRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, snapshot: AgentSnapshot) -> str:
        """Store ``snapshot`` unless a snapshot with its id is stored; returns the id."""
        with self._db.session(f"saving snapshot {snapshot.id}", write=True) as session:
            return put_snapshot(session, snapshot)

    def get(self, snapshot_id: str) -> AgentSnapshot:
        """The snapshot with this id, or with the one id starting with this prefix (≥ 6 chars)."""
        wanted = snapshot_id.strip().lower()
        with self._db.session(f"reading snapshot {wanted}") as session:
            row = by_id_or_prefix(session, SnapshotRow, SnapshotRow.id, wanted, what="snapshot")
            return AgentSnapshot.model_validate(row.data)

    def get_in(self, session: Session, snapshot_id: str) -> AgentSnapshot | None:
        """The snapshot with exactly this id in the caller's session, or None."""
        row = session.get(SnapshotRow, snapshot_id)
        return AgentSnapshot.model_validate(row.data) if row is not None else None
