"""Stored replays: every replay of a call, with the snapshot it ran against.

``store.replays`` (a :class:`ReplayRepository`) saves a finished
:class:`~voicereplay.models.Replay` in one transaction with its snapshot, reads one back by id
(or an unambiguous prefix of 6+ characters), lists a call's replay history, newest first, and
deletes the replays of a job attempt that was superseded (their rows; the caller removes
their folders).
The replay's audio paths are stored relative to the home, like the calls' recordings.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, insert, select

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
    job_id: str | None = None
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
                    job_id=replay.job_id,
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
        job_id: str | None = None,
        status: str | None = None,
        limit: int | None = 50,
    ) -> list[ReplaySummary]:
        """Replays, newest first; of one call (``call_id``), batch or job when given."""
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
            if job_id is not None:
                query = query.where(ReplayRow.job_id == job_id)
            if status is not None:
                query = query.where(ReplayRow.status == status)
            query = query.order_by(ReplayRow.created_at.desc(), ReplayRow.run_index)
            if limit is not None:
                query = query.limit(limit)
            return [
                ReplaySummary(
                    id=row.id, call_provider=prov, call_id=cid, snapshot_id=row.snapshot_id,
                    batch_id=row.batch_id, job_id=row.job_id, run_index=row.run_index,
                    mode=row.mode,
                    status=row.status, error=row.error, duration=row.duration_s,
                    wall_seconds=row.wall_seconds, created_at=row.created_at,
                )
                for row, prov, cid in session.execute(query).all()
            ]

    def delete(self, replay_ids: Sequence[str]) -> builtins.list[Replay]:
        """Delete these replays' rows; returns them (for their folders). Unknown ids are
        ignored."""
        if not replay_ids:
            return []
        with self._db.session("deleting replays", write=True) as session:
            rows = session.scalars(select(ReplayRow).where(ReplayRow.id.in_(replay_ids))).all()
            gone = [Replay.model_validate(self._paths.resolved_recordings(r.data)) for r in rows]
            session.execute(delete(ReplayRow).where(ReplayRow.id.in_(replay_ids)))
        return gone
