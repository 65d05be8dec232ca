"""The one database object of the store: engine, sessions, migrations, SQLite tuning.

:class:`Database` opens the SQLAlchemy engine for a store URL (SQLite file or PostgreSQL; an
in-memory SQLite database is refused because it would lose everything when the process ends),
brings the schema to the newest Alembic revision shipped in ``voicereplay/migrations`` and hands
out sessions to the repositories.

Concurrency, as a first-time user meets it:

* Migrations are serialized between processes: an exclusive ``flock`` on
  ``<db file>.migrate.lock`` beside a SQLite file, ``pg_advisory_lock`` on PostgreSQL. Four
  commands on a fresh home therefore create the schema once, and the other three find it made.
  :meth:`Database.schema_lock` is the same lock, for other tables made at start-up.
  A database already at the newest revision is never locked (so a read-only home opens).
* SQLite write transactions start with ``BEGIN IMMEDIATE``: a writer takes the database's write
  lock before it reads what it is about to change, so two imports of the same call queue up
  instead of both inserting it (the second then finds it unchanged). Reads stay ``BEGIN``
  (deferred) and, in WAL mode, never wait for a writer.
* A SQLite file in a folder this process cannot write is opened read-only (``mode=ro``, and
  ``immutable`` because SQLite cannot keep its WAL index there): reading works, a write fails
  with one line saying the store is read-only. Changes another process makes to the file while
  it is open this way are not seen.

JSON columns are written the same on both databases: PostgreSQL's ``json`` type refuses the
``NaN`` and ``Infinity`` tokens that Python's ``json`` writes, so a non-finite float (a metric
of nothing, say) is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, which
the pydantic models read back as the float.

SQLAlchemy errors leave as :class:`~voicereplay.errors.StoreError` with the URL shown without
its password.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from voicereplay.config import check_database_url
from voicereplay.errors import StoreError

__all__ = ["MIGRATIONS_DIR", "Database", "insert_missing", "json_dumps", "libpq_url",
           "redact_url"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_PG_LOCK_KEY = zlib.crc32(b"voicereplay-migrations")
_READ_ONLY = ("readonly database", "read-only", "read only")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def libpq_url(url: str) -> str:
    """A PostgreSQL store URL as libpq takes it (``psycopg.connect``, Huey's PostgresStorage):
    ``postgresql+psycopg://u:p@host/db`` → ``postgresql://u:p@host/db``. It holds the password:
    never print it (use :func:`redact_url`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {redact_url(url)}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class Database:
    """The engine and sessions of one store database; migrated to the newest schema on open.

    ``home`` is handed to the migrations (paths under it are stored relative to it).
    """

    def __init__(self, url: str, *, home: Path | None = None) -> None:
        self.url = redact_url(url)
        self._password = _password(url)
        check_database_url(url, source="database URL")
        parsed = make_url(url)
        self.sqlite_file: Path | None = (
            Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database
            else None
        )
        self.read_only = self.sqlite_file is not None and not _writable(self.sqlite_file)
        if self.read_only and self.sqlite_file is not None and not self.sqlite_file.exists():
            raise StoreError(f"cannot open database {self.url}: there is no store yet and "
                             f"{self.sqlite_file.parent} is read-only")
        self.engine = self._create_engine(parsed)
        try:
            self._migrate(home)
        except (SQLAlchemyError, CommandError, OSError) as exc:
            self.engine.dispose()
            raise StoreError(f"cannot open database {self.url}: {self.reason(exc)}") from exc
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(
            self.engine.execution_options(voicereplay_write=True), expire_on_commit=False
        )
        self._write_lock = threading.RLock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self, action: str, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction; ``write`` sessions of this process take turns."""
        if write and self.read_only:
            raise StoreError(self._read_only_message(action))
        try:
            if write:
                with self._write_lock, self._writes.begin() as session:
                    yield session
            else:
                with self._reads.begin() as session:
                    yield session
        except SQLAlchemyError as exc:
            if _is_read_only(exc):
                raise StoreError(self._read_only_message(action)) from exc
            raise StoreError(f"{action} failed in {self.url}: {self.reason(exc)}") from exc

    def reason(self, exc: BaseException) -> str:
        """The first line of what went wrong, without the password."""
        inner = exc.orig if isinstance(exc, DBAPIError) else exc
        line = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
        return line.replace(self._password, "***") if self._password else line

    # -- plumbing ------------------------------------------------------------------------

    def _read_only_message(self, action: str) -> str:
        where = self.sqlite_file.parent if self.sqlite_file is not None else self.url
        return f"{action}: the store at {where} is read-only; reading commands still work"

    def _create_engine(self, parsed: URL) -> Engine:
        options: dict[str, Any] = {"json_serializer": json_dumps}
        if parsed.drivername == "postgresql":
            # SQLAlchemy's default PostgreSQL driver is psycopg2; the postgres extra installs
            # psycopg 3, so a plain postgresql:// URL means that one
            parsed = parsed.set(drivername="postgresql+psycopg")
        if self.sqlite_file is not None:
            options["connect_args"] = {"check_same_thread": False}
            if self.read_only:
                # immutable: SQLite cannot make the WAL index (-shm) in a read-only folder, so it
                # reads the file as it stands, without locks
                parsed = parsed.set(
                    database=f"file:{quote(str(self.sqlite_file))}?mode=ro&immutable=1",
                    query={"uri": "true"},
                )
        try:
            engine = create_engine(parsed, **options)
        except ImportError as exc:
            hint = (" (pip install 'voicereplay[postgres]')"
                    if parsed.get_backend_name() == "postgresql" else "")
            raise StoreError(
                f"cannot open database {self.url}: its database driver is not installed "
                f"({exc}){hint}"
            ) from exc
        except ArgumentError as exc:
            raise StoreError(f"cannot open database {self.url}: {self.reason(exc)}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect(self.read_only))
            event.listen(engine, "begin", _sqlite_begin)
        return engine

    def _migrate(self, home: Path | None) -> None:
        if self.sqlite_file is not None and not self.read_only and not _has_data(
                self.sqlite_file):
            # A fresh SQLite file: its first connection switches it to WAL, a write that must
            # not race another process's migration (two connections escalating their locks at
            # once deadlock, and SQLite answers "database is locked" without waiting), so the
            # whole first use happens under the lock.
            with self.schema_lock():
                self._upgrade(home)
            return
        if self._current(home):
            return  # nothing to do: no lock, so a read-only home opens too
        if self.read_only:
            raise StoreError(
                f"cannot open database {self.url}: it needs a schema upgrade, but the store is "
                "read-only; open it once where it can be written"
            )
        with self.schema_lock():
            self._upgrade(home)

    def _current(self, home: Path | None) -> bool:
        """Is the schema at the newest revision?"""
        script = ScriptDirectory.from_config(_alembic_config(None, home))
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
            conn.rollback()
        return set(current) == set(script.get_heads())

    def _upgrade(self, home: Path | None) -> None:
        """Migrate to the newest revision (under the schema lock), in a write transaction
        from its start (BEGIN IMMEDIATE on SQLite: a deferred one that read first could be
        refused the write lock)."""
        with self.engine.execution_options(voicereplay_write=True).begin() as conn:
            command.upgrade(_alembic_config(conn, home), "head")

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Only one process changes the schema of this database at a time (see the module docs).

        The migrations run under it; so should anything else that creates tables in the store's
        database when it starts, such as Huey's queue tables on PostgreSQL: several workers
        running ``CREATE TABLE IF NOT EXISTS`` at once on PostgreSQL collide (a unique violation
        in ``pg_type``) unless they take turns.
        """
        if self.sqlite_file is not None:
            lock_path = self.sqlite_file.with_name(self.sqlite_file.name + ".migrate.lock")
            with open(lock_path, "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        elif self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                    conn.commit()
        else:  # pragma: no cover - check_database_url allows only sqlite and postgresql
            yield


def _writable(db_file: Path) -> bool:
    """Whether this process may write the SQLite file (and its -wal/-shm files beside it)."""
    folder = db_file.parent
    if not folder.exists():
        return True  # let SQLite say why it cannot open it
    if db_file.exists() and not os.access(db_file, os.W_OK):
        return False
    return os.access(folder, os.W_OK)


def _is_read_only(exc: SQLAlchemyError) -> bool:
    message = str(exc.orig if isinstance(exc, DBAPIError) else exc).lower()
    return any(marker in message for marker in _READ_ONLY)


def _password(database_url: str) -> str | None:
    try:
        return make_url(database_url).password or None
    except ArgumentError:
        return None


def _alembic_config(connection: Connection | None, home: Path | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    cfg.attributes["home"] = home
    return cfg


def _has_data(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _sqlite_on_connect(read_only: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is off; _sqlite_begin starts every transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=10000")  # first: switching to WAL may wait
        cursor.execute("PRAGMA foreign_keys=ON")
        if not read_only:
            # WAL lets readers (the web app) work while an import writes, and with
            # synchronous=NORMAL a commit does not wait for an fsync.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("voicereplay_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def json_dumps(value: Any) -> str:
    """``value`` as JSON for a JSON column; non-finite floats as strings (see the module docs)."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: the rare case pays for the walk
        return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def insert_missing(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, skipping any whose primary key is already there.

    ``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL: two imports writing the same snapshot
    or blob at once both succeed.
    """
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
