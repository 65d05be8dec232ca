"""Stored replays: every replay of a call, with the snapshot it ran against.

``store.replays`` (a :class:`ReplayRepository`) saves a finished
:class:`~voicereplay.models.Replay` in one transaction with its snapshot, reads one back by id
(or an unambiguous prefix of 6+ characters), and lists a call's replay history, newest first.
The replay's audio paths are stored relative to the home, like the calls' recordings.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select

from voicereplay.models import Replay
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store.calls import find_call
from voicereplay.store.database import Database
from voicereplay.store.prefix import by_id_or_prefix
from voicereplay.store.recordings import HomePaths
from voicereplay.store.snapshots import put_snapshot
from voicereplay.store.tables import CallRow, ReplayRow, utcnow

__all__ = ["ReplayRepository", "ReplaySummary"]


class ReplaySummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    call_provider: str
    call_id: str
    snapshot_id: str
    batch_id: str | None
    run_index: int
    mode: str
    status: str
    error: str | None
    duration: float | None
    wall_seconds: float | None
    created_at: datetime


class ReplayRepository:
    def __init__(self, db: Database, paths: HomePaths) -> None:
        self._db = db
        self._paths = paths

    def save(self, replay: Replay, snapshot: AgentSnapshot) -> str:
        """Store ``replay`` (its call must be stored) and the snapshot it ran against."""
        if replay.snapshot_id != snapshot.id:
            raise ValueError("the replay names another snapshot than the one given")
        with self._db.session(f"saving replay {replay.id}", write=True) as session:
            call = find_call(session, replay.call_id, replay.call_provider)
            put_snapshot(session, snapshot)
            session.execute(
                insert(ReplayRow).values(
                    id=replay.id,
                    call_pk=call.id,
                    snapshot_id=snapshot.id,
                    batch_id=replay.batch_id,
                    run_index=replay.run_index,
                    mode=replay.mode,
                    status=replay.status,
                    error=replay.error,
                    duration_s=replay.duration,
                    wall_seconds=replay.wall_seconds,
                    data=self._paths.stored_recordings(replay.model_dump(mode="json")),
                    created_at=replay.created_at or utcnow(),
                )
            )
        return replay.id

    def get(self, replay_id: str) -> Replay:
        wanted = replay_id.strip().lower()
        with self._db.session(f"reading replay {wanted}") as session:
            row = by_id_or_prefix(
                session, ReplayRow, ReplayRow.id, wanted, what="replay",
                missing_hint="; `voicereplay replays list` shows them",
            )
            return Replay.model_validate(self._paths.resolved_recordings(row.data))

    def list(
        self,
        *,
        call_id: str | None = None,
        provider: str | None = None,
        batch_id: str | None = None,
        limit: int | None = 50,
    ) -> list[ReplaySummary]:
        """Replays, newest first; of one call (``call_id``) or one batch when given."""
        with self._db.session("listing replays") as session:
            query = select(ReplayRow, CallRow.provider, CallRow.call_id).join(
                CallRow, CallRow.id == ReplayRow.call_pk
            )
            if call_id is not None:
                query = query.where(ReplayRow.call_pk == find_call(session, call_id, provider).id)
            elif provider is not None:
                query = query.where(CallRow.provider == provider)
            if batch_id is not None:
                query = query.where(ReplayRow.batch_id == batch_id)
            query = query.order_by(ReplayRow.created_at.desc(), ReplayRow.run_index)
            if limit is not None:
                query = query.limit(limit)
            return [
                ReplaySummary(
                    id=row.id, call_provider=prov, call_id=cid, snapshot_id=row.snapshot_id,
                    batch_id=row.batch_id, run_index=row.run_index, mode=row.mode,
                    status=row.status, error=row.error, duration=row.duration_s,
                    wall_seconds=row.wall_seconds, created_at=row.created_at,
                )
                for row, prov, cid in session.execute(query).all()
            ]
