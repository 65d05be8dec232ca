"""Real database servers for the tests: PostgreSQL and redis-server on 127.0.0.1.

A pytest plugin (registered in ``tests/conftest.py``). Each server starts once per test session,
on a free port and in a temporary directory that is removed when the session ends; nothing of the
machine's own PostgreSQL (the Debian package's ``main`` cluster) or redis service is used.

Fixtures:

* ``postgres_url`` — a fresh, empty database per test on the session's PostgreSQL, as the
  SQLAlchemy URL ``postgresql+psycopg://postgres@127.0.0.1:<port>/<db>``; dropped after the test.
* ``redis_url`` — ``redis://127.0.0.1:<port>/<n>`` on the session's redis-server, flushed
  before the test.
* ``store_url`` — parametrized over ``sqlite`` (a file under ``tmp_path``) and ``postgres``
  (``postgres_url``): a store test taking it runs on both.
* ``postgres_server`` / ``redis_server`` — the session's servers themselves (port, how long the
  start took).

Tests that use them carry ``@pytest.mark.servers``. The servers come from the Debian packages
``postgresql`` and ``redis-server``; when a binary is missing the fixture errors with the
command that installs them (a skip would hide the tests that did not run). ``initdb`` and
``postgres`` refuse to run as root, so as root they run as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

INSTALL_HINT = "apt-get install postgresql redis-server"
READY_LIMIT_S = 180.0  # generous: a loaded CI machine; the servers usually answer in a second


def _missing(what: str) -> NoReturn:
    pytest.fail(f"{what} not found; install it with `{INSTALL_HINT}`", pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poll(ready: Callable[[], bool], what: str, log: Path | None = None) -> None:
    """Call ``ready()`` until it returns True; fail with the server's log after the limit."""
    deadline = time.monotonic() + READY_LIMIT_S
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    pytest.fail(f"{what} did not become ready in {READY_LIMIT_S:.0f} s\n{tail}", pytrace=False)


# -- PostgreSQL --------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    newest = max(found, key=lambda p: int(Path(p).parent.parent.name.split(".")[0]))
    return Path(newest).parent


@dataclass
class PostgresServer:
    """A running PostgreSQL on 127.0.0.1 that trusts local connections (user ``postgres``)."""

    port: int
    bin_dir: Path
    root: Path
    startup_seconds: float = 0.0
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = f"t{next(self._names)}_{uuid.uuid4().hex[:8]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_postgres_user(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` system user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        _missing("runuser (util-linux)")
    return [str(runuser), "-u", "postgres", "--", *argv]


def _pg_run(argv: list[str], log: Path) -> None:
    result = subprocess.run(_as_postgres_user(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.fail(f"{Path(argv[0]).name} failed ({result.returncode}): "
                    f"{(result.stderr or result.stdout).strip()}\n{tail}", pytrace=False)


def _pg_ready(bin_dir: Path, port: int) -> bool:
    return subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1",
                           "-p", str(port), "-U", "postgres", "-d", "postgres"],
                          check=False).returncode == 0


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a free port in a temporary directory, stopped and removed on
    exit (the ``postgres_server`` fixture; bench/jobs.py starts one the same way)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        _missing("PostgreSQL (/usr/lib/postgresql/*/bin/initdb)")
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="voicereplay-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _missing("the postgres system user")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "postgres.log"
    port = _free_port()
    server = PostgresServer(port=port, bin_dir=bin_dir, root=root)
    try:
        _pg_run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-locale", "--no-sync"], log)
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        # -W: do not let pg_ctl wait; readiness is polled below with its own limit
        _pg_run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                 "-W", "start"], log)
        _poll(lambda: _pg_ready(bin_dir, port), f"PostgreSQL on 127.0.0.1:{port}", log)
        server.startup_seconds = time.monotonic() - started
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data),
                                              "-m", "fast", "-w", "stop"]),
                           capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


# -- redis-server ------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    startup_seconds: float = 0.0
    _dbs: Iterator[int] = field(default_factory=lambda: itertools.cycle(range(16)))

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


def _redis_ping(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def redis_binary() -> str | None:
    """The ``redis-server`` on the PATH, or None."""
    return shutil.which("redis-server")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        _missing("redis-server")
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="voicereplay-redis-"))
    log = root / "redis.log"
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root), "--logfile", str(log), "--daemonize", "no"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _poll(lambda: process.poll() is None and _redis_ping(port),
              f"redis-server on 127.0.0.1:{port}", log)
        yield RedisServer(port=port, startup_seconds=time.monotonic() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    import redis

    db = next(redis_server._dbs)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=db)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server.url(db)


# -- the store on both databases ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store database URL: a SQLite file under ``tmp_path``, then an empty PostgreSQL
    database (a test taking this fixture runs once on each)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'vr.db'}"
