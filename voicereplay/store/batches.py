"""Batches: many calls replayed with one request, one replay job per call.

A batch stores what the user selected (``selection``), the replay request every call gets
(``request``, without its call) and the calls the selection resolved to, in order. Its state
is its jobs' (``jobs.batch_id``): the batch itself never changes after it is created, so
workers never write to it and two processes can never disagree about it.

``key`` is a hash of the selection and the request: :meth:`BatchRepository.create` with a key
that is stored returns the stored batch, which is how re-running ``voicereplay batch run`` with
the same arguments continues an interrupted batch.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError

from voicereplay.errors import StoreError
from voicereplay.store.database import Database
from voicereplay.store.prefix import by_id_or_prefix
from voicereplay.store.tables import BatchRow, utcnow

__all__ = ["Batch", "BatchRepository"]

_BATCHES = cast(Table, BatchRow.__table__)


class Batch(BaseModel):
    """A batch as stored (``calls``: ``(provider, call id)`` in selection order)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None
    key: str
    selection: dict[str, Any]
    request: dict[str, Any]
    calls: list[tuple[str, str]]
    created_at: datetime

    @property
    def label(self) -> str:
        """The name, else the short id."""
        return self.name or self.id[:12]


def _batch(row: BatchRow) -> Batch:
    return Batch(id=row.id, name=row.name, key=row.key, selection=row.selection,
                 request=row.request, calls=[(p, c) for p, c in row.calls],
                 created_at=row.created_at)


class BatchRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, key: str, *, selection: dict[str, Any], request: dict[str, Any],
               calls: builtins.list[tuple[str, str]], name: str | None = None
               ) -> tuple[Batch, bool]:
        """A new batch, or the stored one with this key; ``True`` when it is new."""
        existing = self.by_key(key)
        if existing is not None:
            return existing, False
        values = {"id": uuid.uuid4().hex, "name": name, "key": key, "selection": selection,
                  "request": request, "calls": [list(c) for c in calls],
                  "created_at": utcnow()}
        try:
            with self._db.session("storing a batch", write=True) as session:
                session.execute(insert(_BATCHES), values)
        except StoreError as exc:  # lost the race for the key: the other one wins
            found = self.by_key(key) if isinstance(exc.__cause__, IntegrityError) else None
            if found is None:
                raise
            return found, False
        return Batch.model_validate({**values, "calls": calls}), True

    def by_key(self, key: str) -> Batch | None:
        with self._db.session("reading a batch") as session:
            row = session.scalars(select(BatchRow).where(BatchRow.key == key)).first()
            return _batch(row) if row is not None else None

    def get(self, batch_id: str) -> Batch:
        """A batch by id, an unambiguous id prefix (6+ characters), or its name."""
        with self._db.session("reading a batch") as session:
            named = session.scalars(select(BatchRow).where(BatchRow.name == batch_id)
                                    .order_by(BatchRow.created_at.desc())).first()
            if named is not None:
                return _batch(named)
            return _batch(by_id_or_prefix(
                session, BatchRow, BatchRow.id, batch_id, what="batch",
                missing_hint=" (`voicereplay batch list` shows the stored batches)"))

    def list(self, *, limit: int | None = 50) -> builtins.list[Batch]:
        """Batches, newest first."""
        query = select(BatchRow).order_by(BatchRow.created_at.desc(), BatchRow.id).limit(limit)
        with self._db.session("listing batches") as session:
            return [_batch(row) for row in session.scalars(query)]
