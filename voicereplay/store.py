"""The store: imported calls, agent snapshots and recording blobs in a SQL database.

SQLite at ``$VOICEREPLAY_HOME/voicereplay.db`` by default, any SQLAlchemy URL (e.g. Postgres) by
``VOICEREPLAY_DATABASE_URL``, ``sqlite://`` in memory for tests. Opening a :class:`Store` runs
the Alembic migrations shipped in ``voicereplay/migrations`` on the store's own connection, so
the schema is always current and nobody runs ``alembic`` by hand. Tables live in
:mod:`voicereplay.db`; audio files live in the content-addressed :class:`ArtifactStore`.

Saving is idempotent: a call is stored with the sha256 of its canonical JSON (provider fields
that change on every fetch left out), and saving the same content again writes nothing. Each
save is one transaction. Every public method opens its own session, so one thread can save
while others download. SQLAlchemy errors leave as :class:`StoreError` with the URL shown
without its password.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Engine, create_engine, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, defer, sessionmaker
from sqlalchemy.pool import StaticPool

from voicereplay.artifacts import ArtifactStore
from voicereplay.config import Settings
from voicereplay.db import (
    CallRecordingRow,
    CallRow,
    SnapshotRow,
    call_row_values,
    find_call,
    put_recordings,
    put_snapshot,
    utcnow,
)
from voicereplay.errors import NotStoredError, StoreError
from voicereplay.models import RECORDING_KINDS, Call
from voicereplay.snapshot import AgentSnapshot

if TYPE_CHECKING:
    from voicereplay.replay_store import ReplayStore

__all__ = ["CallSummary", "SaveResult", "Store", "content_sha256", "redact_url"]

SaveResult = Literal["created", "updated", "unchanged"]
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIN_SNAPSHOT_PREFIX = 6
# Vapi regenerates these on every response (artifact.presigned*Url, presignedUrlsExpiresAt).
_VOLATILE_KEY = re.compile(r"presigned\w*Url|presignedUrlsExpiresAt")


class CallSummary(BaseModel):
    """One row of :meth:`Store.list_calls`: what a calls table shows, without turns or raw."""

    model_config = ConfigDict(frozen=True)

    provider: str
    call_id: str
    type: str
    status: str | None
    started_at: datetime | None
    duration: float | None  # seconds
    ended_reason: str | None
    agent_id: str | None
    cost_usd: float | None
    success: bool | None
    turn_count: int  # spoken turns (agent + user)
    snapshot_id: str | None
    recording_kinds: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.call_id}"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def content_sha256(call: Call, data: dict[str, Any] | None = None) -> str:
    """The sha256 of ``call``'s canonical JSON, blind to what changes on every fetch.

    ``data`` is ``call.model_dump(mode="json")`` when the caller has it already.
    """
    body = dict(data if data is not None else call.model_dump(mode="json"))
    body["raw"] = _without_volatile(body["raw"])
    body["recordings"] = [
        {k: v for k, v in rec.items() if not (k == "path" and rec.get("sha256"))}
        for rec in body["recordings"]  # same bytes, wherever they were put
    ]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if not _VOLATILE_KEY.fullmatch(k)}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


class Store:
    """Calls, snapshots and blobs in the database at ``database_url``; audio under
    ``artifacts_root``."""

    def __init__(self, database_url: str, artifacts_root: Path) -> None:
        self.url = redact_url(database_url)
        self.artifacts = ArtifactStore(artifacts_root)
        self._password = _password(database_url)
        self._memory = False
        self.engine = self._create_engine(database_url)
        try:
            with self.engine.begin() as conn:
                command.upgrade(_alembic_config(conn), "head")
        except (SQLAlchemyError, CommandError) as exc:
            self.engine.dispose()
            raise StoreError(f"cannot open database {self.url}: {self._reason(exc)}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Store:
        """The store at ``settings`` (default: from the environment), creating its home dir."""
        settings = settings or Settings.from_env()
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the voicereplay home {settings.home}: {exc}") from exc
        return cls(settings.database_url, settings.artifacts_dir)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def replays(self) -> ReplayStore:
        """Every replay of the stored calls (see :mod:`voicereplay.replay_store`)."""
        from voicereplay.replay_store import ReplayStore

        return ReplayStore(self)

    # -- calls ---------------------------------------------------------------------------

    def save_call(self, call: Call, snapshot: AgentSnapshot | None = None) -> SaveResult:
        """Store ``call`` (and link ``snapshot``) in one transaction; a re-import of the same
        content writes nothing. Without ``snapshot`` an existing link is kept."""
        data = call.model_dump(mode="json")
        sha = content_sha256(call, data)
        with self._session(f"saving call {call.key}", write=True) as session:
            found = session.execute(
                select(CallRow.id, CallRow.content_sha256, CallRow.snapshot_id).where(
                    CallRow.provider == call.provider, CallRow.call_id == call.call_id
                )
            ).first()
            snapshot_id = found.snapshot_id if found is not None else None
            if snapshot is not None:
                snapshot_id = put_snapshot(session, snapshot)
            if found is not None and (found.content_sha256, found.snapshot_id) == (
                sha,
                snapshot_id,
            ):
                return "unchanged"
            now = utcnow()
            values = call_row_values(call, sha, snapshot_id, now, data)
            if found is None:
                call_pk = session.scalars(
                    insert(CallRow)
                    .values(provider=call.provider, call_id=call.call_id, imported_at=now, **values)
                    .returning(CallRow.id)
                ).one()
            else:
                call_pk = found.id
                session.execute(update(CallRow).where(CallRow.id == call_pk).values(**values))
            put_recordings(session, call_pk, call)
            return "created" if found is None else "updated"

    def get_call(self, call_id: str, provider: str | None = None) -> Call:
        """The stored call; ``call_id`` may be written ``provider:call_id``."""
        with self._session(f"reading call {call_id}") as session:
            return Call.model_validate(find_call(session, call_id, provider).data)

    def has_call(self, call_id: str, provider: str) -> bool:
        return self.call_sha(call_id, provider) is not None

    def call_sha(self, call_id: str, provider: str) -> str | None:
        """The content sha256 the call was stored with, or None when it is not stored."""
        with self._session(f"reading call {provider}:{call_id}") as session:
            return session.scalar(
                select(CallRow.content_sha256).where(
                    CallRow.provider == provider, CallRow.call_id == call_id
                )
            )

    def list_calls(
        self,
        *,
        provider: str | None = None,
        agent_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[CallSummary]:
        """Stored calls newest first (by ``started_at``, calls without one last), started in
        ``[since, until)``; ``limit=None`` lists all."""
        where = _filters(provider, agent_id, status, since, until, success)
        query = (
            select(CallRow)
            .where(*where)
            .order_by(CallRow.started_at.desc().nulls_last(), CallRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._session("listing calls") as session:
            rows = session.scalars(query.options(defer(CallRow.data))).all()
            kinds: dict[int, list[str]] = {}
            if rows:
                recs = session.execute(
                    select(CallRecordingRow.call_pk, CallRecordingRow.kind).where(
                        CallRecordingRow.call_pk.in_([r.id for r in rows])
                    )
                )
                for pk, kind in recs:
                    kinds.setdefault(pk, []).append(kind)
            return [_summary(row, kinds.get(row.id, [])) for row in rows]

    def count_calls(
        self,
        *,
        provider: str | None = None,
        agent_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
    ) -> int:
        """How many calls :meth:`list_calls` would give with these filters and no limit."""
        where = _filters(provider, agent_id, status, since, until, success)
        with self._session("counting calls") as session:
            return session.scalar(select(func.count(CallRow.id)).where(*where)) or 0

    # -- snapshots -----------------------------------------------------------------------

    def save_snapshot(self, snapshot: AgentSnapshot) -> str:
        """Store ``snapshot`` unless a snapshot with its id is stored; returns the id."""
        with self._session(f"saving snapshot {snapshot.id}", write=True) as session:
            return put_snapshot(session, snapshot)

    def get_snapshot(self, snapshot_id: str) -> AgentSnapshot:
        """The snapshot with this id, or with the one id starting with this prefix (≥ 6 chars)."""
        wanted = snapshot_id.strip().lower()
        with self._session(f"reading snapshot {wanted}") as session:
            row = session.get(SnapshotRow, wanted)
            if row is None and len(wanted) >= MIN_SNAPSHOT_PREFIX:
                matches = session.scalars(
                    select(SnapshotRow)
                    .where(SnapshotRow.id.startswith(wanted, autoescape=True))
                    .order_by(SnapshotRow.id)
                    .limit(2)
                ).all()
                if len(matches) > 1:
                    raise NotStoredError(
                        f"snapshot id {wanted} is ambiguous: it matches {matches[0].id}, "
                        f"{matches[1].id} and maybe more; give more characters"
                    )
                row = matches[0] if matches else None
            if row is None:
                hint = (
                    f" (give at least {MIN_SNAPSHOT_PREFIX} characters of the id)"
                    if len(wanted) < MIN_SNAPSHOT_PREFIX
                    else ""
                )
                raise NotStoredError(f"snapshot {wanted} is not in the store{hint}")
            return AgentSnapshot.model_validate(row.data)

    def snapshot_for_call(self, call_id: str, provider: str | None = None) -> AgentSnapshot | None:
        """The snapshot stored with the call, None when the call has none."""
        with self._session(f"reading call {call_id}") as session:
            snapshot_id = find_call(session, call_id, provider).snapshot_id
            if snapshot_id is None:
                return None
            row = session.get(SnapshotRow, snapshot_id)
            return AgentSnapshot.model_validate(row.data) if row is not None else None

    # -- plumbing ------------------------------------------------------------------------

    def _create_engine(self, database_url: str) -> Engine:
        try:
            url = make_url(database_url)
            options: dict[str, Any] = {}
            if url.get_backend_name() == "sqlite":
                options["connect_args"] = {"check_same_thread": False}
                if url.database in (None, "", ":memory:"):
                    self._memory = True
                    options["poolclass"] = StaticPool  # one connection: one database
            engine = create_engine(url, **options)
        except ImportError as exc:
            raise StoreError(
                f"cannot open database {self.url}: its database driver is not installed ({exc})"
            ) from exc
        except ArgumentError as exc:
            raise StoreError(f"cannot open database {self.url}: {self._reason(exc)}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
        return engine

    @contextmanager
    def _session(self, action: str, *, write: bool = False) -> Iterator[Session]:
        """A session in a transaction; writes (and everything in memory) take turns."""
        lock: AbstractContextManager[Any] = (
            self._write_lock if write or self._memory else nullcontext()
        )
        try:
            with lock, self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"{action} failed in {self.url}: {self._reason(exc)}") from exc

    def _reason(self, exc: Exception) -> str:
        """The first line of what went wrong, without the password."""
        inner = exc.orig if isinstance(exc, DBAPIError) else exc
        text = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
        return text.replace(self._password, "***") if self._password else text


def _password(database_url: str) -> str | None:
    try:
        return make_url(database_url).password or None
    except ArgumentError:
        return None


def _alembic_config(connection: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the web app) work while an import writes, and with synchronous=NORMAL
    # a commit no longer waits for an fsync: one transaction per call stays cheap.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _filters(
    provider: str | None,
    agent_id: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    success: bool | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if provider is not None:
        where.append(CallRow.provider == provider)
    if agent_id is not None:
        where.append(CallRow.agent_id == agent_id)
    if status is not None:
        where.append(CallRow.status == status)
    if since is not None:
        where.append(CallRow.started_at >= since)
    if until is not None:
        where.append(CallRow.started_at < until)
    if success is not None:
        where.append(CallRow.success == success)
    return where


def _summary(row: CallRow, kinds: list[str]) -> CallSummary:
    return CallSummary(
        provider=row.provider,
        call_id=row.call_id,
        type=row.type,
        status=row.status,
        started_at=row.started_at,
        duration=row.duration_s,
        ended_reason=row.ended_reason,
        agent_id=row.agent_id,
        cost_usd=row.cost_usd,
        success=row.success,
        turn_count=row.turn_count,
        snapshot_id=row.snapshot_id,
        recording_kinds=tuple(k for k in RECORDING_KINDS if k in kinds),
    )
