"""The database tables of the store, as typed SQLAlchemy 2 models, and the row operations
:mod:`voicereplay.store` runs inside its sessions.

The table classes describe the schema that ``voicereplay/migrations`` creates; the migrations, not
``metadata.create_all``, build the database, and a test checks the two agree. Every datetime is
stored as naive UTC and read back as aware UTC (:class:`UTCDateTime`), on SQLite and Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

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
    delete,
    insert,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from voicereplay.errors import ConfigError, NotStoredError
from voicereplay.models import Call, ProviderName
from voicereplay.snapshot import AgentSnapshot

__all__ = [
    "Base",
    "BlobRow",
    "CallRecordingRow",
    "CallRow",
    "ReplayRow",
    "SnapshotRow",
    "UTCDateTime",
    "call_row_values",
    "find_call",
    "put_recordings",
    "put_snapshot",
    "split_key",
    "utcnow",
]

PROVIDERS: tuple[str, ...] = get_args(ProviderName)
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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SnapshotRow(Base):
    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BlobRow(Base):
    """A content-addressed audio file under the artifacts dir."""

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
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole Call, raw included
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallRecordingRow(Base):
    __tablename__ = "call_recordings"

    call_pk: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    url: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))


class ReplayRow(Base):
    """One replay of a stored call; ``data`` is the whole :class:`~voicereplay.models.Replay`."""

    __tablename__ = "replays"
    __table_args__ = (
        Index("ix_replays_call_pk", "call_pk"),
        Index("ix_replays_batch_id", "batch_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_pk: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"))
    batch_id: Mapped[str | None] = mapped_column(String(64))
    run_index: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float | None] = mapped_column(Float)
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- row operations, each inside the caller's session/transaction ---------------------


def put_snapshot(session: Session, snapshot: AgentSnapshot) -> str:
    found = session.scalar(select(SnapshotRow.id).where(SnapshotRow.id == snapshot.id))
    if found is None:
        data = snapshot.model_dump(mode="json")
        session.execute(insert(SnapshotRow), [{"id": snapshot.id, "data": data,
                                               "created_at": utcnow()}])
    return snapshot.id


def call_row_values(
    call: Call,
    sha: str,
    snapshot_id: str | None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``calls`` columns for ``call`` (all but provider, call_id and imported_at)."""
    return {
        "type": call.type,
        "status": call.status,
        "started_at": call.started_at,
        "ended_at": call.ended_at,
        "duration_s": call.duration,
        "ended_reason": call.ended_reason,
        "agent_id": call.agent_id,
        "agent_version": call.agent_version,
        "customer_number": call.customer_number,
        "cost_usd": call.cost.total_usd,
        "success": call.analysis.success,
        "turn_count": sum(1 for t in call.turns if t.role in ("agent", "user")),
        "snapshot_id": snapshot_id,
        "content_sha256": sha,
        "data": data if data is not None else call.model_dump(mode="json"),
        "updated_at": now,
    }


def put_recordings(session: Session, call_pk: int, call: Call) -> None:
    """Replace the call's recording rows, registering downloaded files as blobs."""
    session.execute(delete(CallRecordingRow).where(CallRecordingRow.call_pk == call_pk))
    rows: dict[str, dict[str, Any]] = {}
    blobs: dict[str, dict[str, Any]] = {}
    for rec in call.recordings:
        if rec.kind in rows:
            continue  # Call.recording(kind) reads the first one too
        sha = rec.sha256 if rec.sha256 and rec.path else None
        if sha is not None:
            blobs.setdefault(sha, {"sha256": sha, "path": rec.path, "size": rec.size,
                                   "created_at": utcnow()})
        rows[rec.kind] = {"call_pk": call_pk, "kind": rec.kind, "url": rec.url, "sha256": sha}
    if blobs:
        known = set(session.scalars(select(BlobRow.sha256).where(BlobRow.sha256.in_(blobs))))
        new = [row for sha, row in blobs.items() if sha not in known]
        if new:
            session.execute(insert(BlobRow), new)
    if rows:
        session.execute(insert(CallRecordingRow), list(rows.values()))


def split_key(call_id: str, provider: str | None) -> tuple[str | None, str]:
    prefix, sep, rest = call_id.partition(":")
    if sep and rest and prefix in PROVIDERS and provider in (None, prefix):
        return prefix, rest
    return provider, call_id


def find_call(session: Session, call_id: str, provider: str | None) -> CallRow:
    provider, call_id = split_key(call_id.strip(), provider)
    query = select(CallRow).where(CallRow.call_id == call_id)
    if provider is not None:
        query = query.where(CallRow.provider == provider)
    rows = session.scalars(query.order_by(CallRow.provider).limit(2)).all()
    if not rows:
        shown = f"{provider}:{call_id}" if provider else call_id
        raise NotStoredError(
            f"call {shown} is not in the store; run `voicereplay calls import {call_id}` first"
        )
    if len(rows) > 1:
        a, b = rows[0].provider, rows[1].provider
        # Not NotStoredError: the call is stored, the user's reference is just underspecified.
        raise ConfigError(
            f"call id {call_id} is stored for more than one provider ({a}, {b}); "
            f"say which with --provider {a} (or write {a}:{call_id})"
        )
    return rows[0]
