"""Webhook events: what providers told us, stored durably before the webhook is acknowledged.

:meth:`EventRepository.record` writes one row per (provider, call id, event type) and commits
it before returning, so a 2xx is only ever sent for an event on disk. A redelivery of the same
event (Vapi retries with a backoff plan, Retell up to three times) finds the stored row: it
counts the delivery (``deliveries``, ``last_received_at``) and keeps the first body — it is not
stored twice. The body is not part of the key, because the presigned URLs in it differ on
every delivery. The INSERT comes first and the key's unique constraint decides, so a new event
(nearly every delivery) costs one write transaction.

A new event is ``PENDING``; whoever processes it (the next step: imports, rules, replays) moves
it to ``PROCESSED``, ``FAILED`` (with the error) or ``IGNORED`` with :meth:`~EventRepository.mark`.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from voicereplay.errors import NotStoredError, StoreError
from voicereplay.store.database import Database
from voicereplay.store.tables import EventRow, utcnow

__all__ = ["Event", "EventRepository", "EventStatus"]

_EVENTS = cast(Table, EventRow.__table__)  # Core statements on it skip the ORM's bookkeeping
EventStatus = Literal["PENDING", "PROCESSED", "FAILED", "IGNORED"]


class Event(BaseModel):
    """A stored webhook event (times are aware UTC)."""

    model_config = ConfigDict(frozen=True)

    id: str
    provider: str
    event_type: str
    call_id: str
    received_at: datetime
    last_received_at: datetime
    deliveries: int
    body: str
    headers: dict[str, str]
    status: EventStatus
    processed_at: datetime | None = None
    error: str | None = None
    job_id: str | None = None


def _event(row: EventRow) -> Event:
    return Event.model_validate(row, from_attributes=True)


class EventRepository:
    """The ``events`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, provider: str, event_type: str, call_id: str, body: str,
               headers: Mapping[str, str] | None = None, *,
               now: datetime | None = None) -> tuple[Event, bool]:
        """Store an event (committed on return); ``True`` when it is new, ``False`` for a
        redelivery of a stored one (then only its delivery count and time change)."""
        now = now or utcnow()
        values = {"id": uuid.uuid4().hex, "provider": provider, "event_type": event_type,
                  "call_id": call_id, "received_at": now, "last_received_at": now,
                  "deliveries": 1, "body": body, "headers": dict(headers or {}),
                  "status": "PENDING"}
        try:  # a new event is the usual case: one INSERT, its key's unique constraint decides
            with self._db.session("storing a webhook event", write=True) as session:
                session.execute(insert(_EVENTS), values)
        except StoreError as exc:  # stored already (a redelivery, or a concurrent delivery)
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            found = self._redelivered(provider, event_type, call_id, now)
            if found is None:
                raise
            return found, False
        return Event.model_validate(values), True

    def get(self, event_id: str) -> Event:
        with self._db.session("reading a webhook event") as session:
            row = session.get(EventRow, event_id)
            if row is None:
                raise NotStoredError(f"no webhook event {event_id!r} is stored")
            return _event(row)

    def find(self, provider: str, call_id: str, event_type: str) -> Event | None:
        with self._db.session("reading a webhook event") as session:
            row = session.scalars(select(EventRow).where(
                EventRow.provider == provider, EventRow.call_id == call_id,
                EventRow.event_type == event_type)).first()
            return _event(row) if row is not None else None

    def list(self, *, status: EventStatus | None = None, provider: str | None = None,
             call_id: str | None = None, limit: int | None = 100) -> builtins.list[Event]:
        """Events, oldest first (the order to process them in)."""
        query = select(EventRow).order_by(EventRow.received_at, EventRow.id).limit(limit)
        if status is not None:
            query = query.where(EventRow.status == status)
        if provider is not None:
            query = query.where(EventRow.provider == provider)
        if call_id is not None:
            query = query.where(EventRow.call_id == call_id)
        with self._db.session("listing webhook events") as session:
            return [_event(row) for row in session.scalars(query)]

    def mark(self, event_id: str, status: EventStatus, *, error: str | None = None,
             job_id: str | None = None, now: datetime | None = None) -> Event:
        """Record what processing the event did."""
        with self._db.session("updating a webhook event", write=True) as session:
            done = session.execute(update(EventRow).where(EventRow.id == event_id).values(
                status=status, error=error, job_id=job_id,
                processed_at=None if status == "PENDING" else (now or utcnow())))
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise NotStoredError(f"no webhook event {event_id!r} is stored")
        return self.get(event_id)

    def _redelivered(self, provider: str, event_type: str, call_id: str,
                     now: datetime) -> Event | None:
        """Count one more delivery of a stored event; None when it is not stored."""
        key = (EventRow.provider == provider, EventRow.event_type == event_type,
               EventRow.call_id == call_id)
        with self._db.session("counting a webhook redelivery", write=True) as session:
            done = session.execute(update(EventRow).where(*key).values(
                deliveries=EventRow.deliveries + 1, last_received_at=now))
            if done.rowcount == 0:  # type: ignore[attr-defined]
                return None
            row = session.scalars(select(EventRow).where(*key)).one()
            return _event(row)
