"""The database tables of the store, as typed SQLAlchemy 2 models (one row class per table).

The table classes describe the schema that ``voicereplay/migrations`` creates; the migrations, not
``metadata.create_all``, build the database, and a test checks the two agree. Every datetime is
stored as naive UTC and read back as aware UTC (:class:`UTCDateTime`), on SQLite and Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "BatchRow",
    "Base",
    "BlobRow",
    "CallDataRow",
    "CallRecordingRow",
    "CallRow",
    "CallSearchRow",
    "EventRow",
    "JobRow",
    "OutsideText",
    "ReplayRow",
    "SnapshotRow",
    "UTCDateTime",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive values are taken as UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class OutsideText(TypeDecorator[str]):
    """Text that comes from outside (provider URLs, error messages), stored without NUL
    characters: PostgreSQL text cannot hold them (SQLite can), so they are dropped on the way
    in, on both."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return value.replace("\x00", "") if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SnapshotRow(Base):
    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BlobRow(Base):
    """A content-addressed audio file under the artifacts dir; ``path`` is relative to the
    home (absolute only for a file outside it)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallRow(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("provider", "call_id"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_provider", "provider"),
        Index("ix_calls_agent_id", "agent_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    call_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    ended_reason: Mapped[str | None] = mapped_column(String(255))
    agent_id: Mapped[str | None] = mapped_column(String(255))
    agent_version: Mapped[str | None] = mapped_column(String(255))
    customer_number: Mapped[str | None] = mapped_column(String(64))
    cost_usd: Mapped[float | None] = mapped_column(Float)
    success: Mapped[bool | None] = mapped_column(Boolean)
    turn_count: Mapped[int] = mapped_column(Integer)  # spoken turns: agent + user
    snapshot_id: Mapped[str | None] = mapped_column(ForeignKey("snapshots.id"))
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallDataRow(Base):
    """The whole stored call (raw payload included), beside its ``calls`` row: the calls
    table keeps only what listing and filters read, so scanning it stays cheap."""

    __tablename__ = "call_data"

    call_pk: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class CallSearchRow(Base):
    """What the calls list's search (``q``) looks in: the call's id, customer number and spoken
    transcript, lowercased. A table of its own, so a search scans these few bytes per call."""

    __tablename__ = "call_search"

    call_pk: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(Text)


class CallRecordingRow(Base):
    __tablename__ = "call_recordings"

    call_pk: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    url: Mapped[str | None] = mapped_column(OutsideText())
    sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))


class ReplayRow(Base):
    """One replay of a stored call; ``data`` is the whole :class:`~voicereplay.models.Replay`."""

    __tablename__ = "replays"
    __table_args__ = (
        Index("ix_replays_call_pk", "call_pk"),
        Index("ix_replays_batch_id", "batch_id"),
        Index("ix_replays_job_id", "job_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_pk: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"))
    batch_id: Mapped[str | None] = mapped_column(String(64))
    run_index: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(OutsideText())
    duration_s: Mapped[float | None] = mapped_column(Float)
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    job_id: Mapped[str | None] = mapped_column(String(64))  # the job that produced it
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobRow(Base):
    """A unit of background work (a replay now); the authority on its state (see store.jobs)."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_call", "call_id"),
        Index("ix_jobs_batch_id", "batch_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_type: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(OutsideText())
    replay_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    call_provider: Mapped[str | None] = mapped_column(String(32))
    call_id: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str | None] = mapped_column(String(32))  # import, replay, compare, …
    progress: Mapped[str | None] = mapped_column(Text)  # the latest progress message
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # handed to the queue
    trigger: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the rule that started it
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what it did, besides replays
    batch_id: Mapped[str | None] = mapped_column(String(64))  # the batch it is part of


class BatchRow(Base):
    """Many calls replayed with one request (see store.batches); each call is a job."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("key", name="uq_batches_key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))  # the selection and request, hashed
    selection: Mapped[dict[str, Any]] = mapped_column(JSON)  # what the user selected
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the ReplayRequest, call unset
    calls: Mapped[list[list[str]]] = mapped_column(JSON)  # [provider, call id] per call
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventRow(Base):
    """A verified provider webhook, stored before it was acknowledged (see store.events)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("provider", "call_id", "event_type",
                         name="uq_events_provider_call_id_event_type"),
        Index("ix_events_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the first delivery
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deliveries: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(OutsideText())  # the raw body of the first delivery
    headers: Mapped[dict[str, str]] = mapped_column(JSON)  # the few kept, never a secret
    status: Mapped[str] = mapped_column(String(16))  # PENDING, PROCESSED, FAILED, IGNORED
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(OutsideText())
    job_id: Mapped[str | None] = mapped_column(String(64))
