"""Concurrent first use of a home, and two imports of the same folder at once.

On SQLite and on a real PostgreSQL (``store_url``). Real processes open a fresh home together
(the migrations must run once, under the home's migration lock: a file lock beside SQLite, an
advisory lock on PostgreSQL), and two threads, each with its own Store as two commands would
have, import the same folder at the same moment (the loser of each insert race reports
"unchanged"; on PostgreSQL it gets there through the save's retry after a unique violation).
Six workers starting Huey on one fresh PostgreSQL database create its tables under the store's
schema lock.
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from voicereplay.config import Settings
from voicereplay.pipeline import ImportOutcome, import_calls
from voicereplay.providers.files import FilesProvider
from voicereplay.store import Store
from voicereplay.store.database import libpq_url

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _settings(home: Path, store_url: str) -> Settings:
    """The home's settings with its database at ``store_url`` (SQLite in the home or Postgres)."""
    if store_url.startswith("sqlite"):
        return Settings.for_home(home)
    return replace(Settings.for_home(home), database_url=store_url)


def _first_use(settings: Settings, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        with Store.from_settings(settings) as store:
            results.put(("ok", store.count_calls()))
    except BaseException as exc:  # reported to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def test_four_processes_open_a_fresh_home_at_once(store_url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    settings = _settings(tmp_path / "home", store_url)
    barrier, results = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_first_use, args=(settings, barrier, results))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == [("ok", 0)] * 4
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).all() == [
            ("0009_batches",)]
    engine.dispose()


def test_two_imports_of_the_same_folder_at_once(store_url: str, tmp_path: Path) -> None:
    exported = tmp_path / "export"
    shutil.copytree(FIXTURES / "vapi", exported)
    settings = _settings(tmp_path / "home", store_url)
    Store.from_settings(settings).close()  # the race here is the imports, not the migration
    barrier = threading.Barrier(2)
    results: list[list[ImportOutcome]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Store.from_settings(settings) as store:
                provider = FilesProvider(exported)
                barrier.wait(timeout=60)
                results.append(import_calls(store, provider, concurrency=2))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    first, second = ({o.source: o for o in run_} for run_ in results)
    assert set(first) == set(second) and len(first) == 3
    for source in first:
        pair = sorted([first[source].status, second[source].status])
        assert pair == ["created", "unchanged"], (source, first[source].error,
                                                  second[source].error)
    with Store.from_settings(settings) as store:
        assert store.count_calls() == 3


def _start_huey(url: str, artifacts: Path, barrier: Any, results: Any) -> None:
    from huey import PostgresHuey

    try:
        with Store(url, artifacts) as store:
            barrier.wait()
            with store.db.schema_lock():  # Huey's CREATE TABLE IF NOT EXISTS, one at a time
                huey = PostgresHuey("voicereplay", dsn=libpq_url(url))
            huey.storage.enqueue(b"task")
            results.put("ok")
    except BaseException as exc:  # reported to the parent
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.servers
def test_six_workers_start_huey_on_a_fresh_postgres_database_at_once(postgres_url: str,
                                                                     tmp_path: Path) -> None:
    # Without the schema lock, five of the six fail: duplicate key in pg_type (seen).
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    workers = [ctx.Process(target=_start_huey, args=(postgres_url, tmp_path, barrier, results))
               for _ in range(6)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == ["ok"] * 6
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from huey_task")).scalar() == 6
    engine.dispose()
