"""The store's home: relative paths survive a move, old absolute paths are migrated, a missing
recording is reported, and a read-only home can still be read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import sqlalchemy as sa

import voicereplay.store.database as database_module
from tests.test_replay_engine import FakeSTT, ToneTTS
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, StoreError
from voicereplay.models import Call, Recording, Replay, local_recordings, missing_recordings
from voicereplay.pipeline import import_calls
from voicereplay.providers.files import FilesProvider
from voicereplay.store import Store

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "demo"
KINDS = ["agent", "customer", "mixed", "stereo"]


def _open(home: Path, url: str | None = None) -> Store:
    """The store of ``home``; its database at ``url`` when given (else SQLite in the home)."""
    settings = Settings.for_home(home)
    return Store.from_settings(replace(settings, database_url=url) if url else settings)


def _import_demo(store: Store, tmp_path: Path) -> Call:
    exported = tmp_path / "export"
    exported.mkdir(exist_ok=True)
    for path in DEMO.glob("demo-refund.*"):
        shutil.copy(path, exported / path.name)
    [outcome] = import_calls(store, FilesProvider(exported))
    assert outcome.ok and outcome.call_id is not None, outcome.error
    return store.get_call(outcome.call_id, outcome.provider)


def _replay_with_audio(store: Store, call: Call) -> Replay:
    """A replay whose audio sits where replay_call puts it (artifacts/replays/<batch>-<run>)."""
    folder = store.artifacts.root / "replays" / "batch1-0"
    folder.mkdir(parents=True)
    soundfile.write(folder / "stereo.wav", np.zeros((800, 2), dtype=np.int16), 8000)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    assert snapshot is not None
    replay = Replay(id="r" * 12, call_provider=call.provider, call_id=call.call_id,
                    snapshot_id=snapshot.id,
                    recordings=[Recording(kind="stereo", path=str(folder / "stereo.wav"))])
    store.replays.save(replay, snapshot)
    return replay


def _db_rows(home: Path, query: str, url: str | None = None) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url or f"sqlite:///{home / 'voicereplay.db'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def test_a_moved_home_keeps_its_recordings_and_replay_audio(store_url: str,
                                                            tmp_path: Path) -> None:
    # SQLite: the database file moves with the home; PostgreSQL stays and the artifacts move
    url = None if store_url.startswith("sqlite") else store_url
    old, new = tmp_path / "old-home", tmp_path / "new-home"
    with _open(old, url) as store:
        call = _import_demo(store, tmp_path)
        replay = _replay_with_audio(store, call)
    assert all(not str(p).startswith("/")
               for (p,) in _db_rows(old, "select path from blobs", url))

    shutil.move(old, new)
    with _open(new, url) as store:
        moved = store.get_call(call.call_id, call.provider)
        local = local_recordings(moved.recordings)
        assert sorted(local) == KINDS
        assert all(path.is_relative_to(new) and path.is_file() for path in local.values())
        assert missing_recordings(moved.recordings) == []
        [audio] = store.replays.get(replay.id).recordings
        assert audio.path is not None and Path(audio.path).is_relative_to(new)
        assert soundfile.info(audio.path).frames == 800


def test_migration_0003_makes_old_absolute_paths_relative(store_url: str,
                                                          tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = None if store_url.startswith("sqlite") else store_url  # SQLite: the home's own file
    with _open(home, url) as store:
        call = _import_demo(store, tmp_path)
        _replay_with_audio(store, call)
    # What a store written before 0003 holds: absolute paths, some under a home since moved.
    engine = sa.create_engine(url or f"sqlite:///{home / 'voicereplay.db'}")
    with engine.begin() as conn:
        # Before 0006 the call was in calls.data, and there was no call_search.
        conn.execute(sa.text("alter table calls add column data json"))
        conn.execute(sa.text("update calls set data = (select data from call_data "
                             "where call_data.call_pk = calls.id)"))
        conn.execute(sa.text("drop table call_data"))
        conn.execute(sa.text("drop table call_search"))
        conn.execute(sa.text("update blobs set path = :old || path"), {"old": "/gone/home/"})
        for name in ("calls", "replays"):
            table = sa.table(name, sa.column("id"), sa.column("data", sa.JSON))
            for row_id, body in conn.execute(sa.select(table.c.id, table.c.data)).all():
                for rec in body["recordings"]:
                    rec["path"] = str(home / rec["path"])
                conn.execute(table.update().where(table.c.id == row_id).values(data=body))
        conn.execute(sa.text("drop table jobs"))  # 0004 to 0009 came later
        conn.execute(sa.text("drop table events"))
        conn.execute(sa.text("drop table batches"))
        conn.execute(sa.text("drop index ix_replays_job_id"))
        conn.execute(sa.text("alter table replays drop column job_id"))
        conn.execute(sa.text("update alembic_version set version_num = '0002_replays'"))
    engine.dispose()

    with _open(home, url) as store:  # runs 0003
        moved = store.get_call(call.call_id, call.provider)
        assert sorted(local_recordings(moved.recordings)) == KINDS
    assert _db_rows(home, "select version_num from alembic_version", url) == [
        ("0009_batches",)]
    paths = [p for (p,) in _db_rows(home, "select path from blobs", url)]
    assert len(paths) == 4 and all(p.startswith("artifacts/blobs/") for p in paths)
    stored = (_db_rows(home, "select data from call_data", url)
              + _db_rows(home, "select data from replays", url))
    for (data,) in stored:
        text = data if isinstance(data, str) else json.dumps(data)  # PostgreSQL decodes json
        assert '"path": "artifacts/' in text or '"path":"artifacts/' in text
        assert str(home) not in text


def test_a_missing_recording_is_a_warning_of_the_replay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voicereplay.pipeline.replaying import ReplayOptions, replay_call
    from voicereplay.simulate.stages import STT, TTS

    with _open(tmp_path / "home") as store:
        call = _import_demo(store, tmp_path)
        for recording in call.recordings:
            Path(recording.path or "").unlink()  # e.g. a backup restored without artifacts/
        stored = store.get_call(call.call_id, call.provider)
        assert local_recordings(stored.recordings) == {}
        monkeypatch.setitem(STT._factories, "store-test-stt", lambda **_: FakeSTT(stored))
        monkeypatch.setitem(TTS._factories, "store-test-tts", lambda **_: ToneTTS())
        snapshot = store.snapshot_for_call(call.call_id, call.provider)
        assert snapshot is not None
        [replay] = replay_call(store, stored, snapshot, options=ReplayOptions(
            model="recorded", stt="store-test-stt", tts="store-test-tts",
            caller_tts="store-test-tts"))
    for kind in KINDS:
        path = stored.recording(kind).path  # type: ignore[union-attr]
        assert f"recording {kind} is missing from the store ({path})" in replay.warnings
    callers = [t for t in replay.turns if t.role == "user"]
    assert callers and all(t.origin == "tts-of-transcript" for t in callers)


@pytest.fixture
def read_only_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home with a call in it, then made read-only for the store.

    Tests run as root here, where chmod does not stop writes; so the folder is reported
    read-only through ``os.access`` (what the store checks), and SQLite itself then enforces
    it: the store opens the file with ``mode=ro``, and any write is refused by SQLite.
    """
    home = tmp_path / "home"
    with _open(home) as store:
        _import_demo(store, tmp_path)
    real_access = database_module.os.access

    def access(path: object, mode: int) -> bool:
        if mode & database_module.os.W_OK and str(path).startswith(str(home)):
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(database_module.os, "access", access)
    yield home


def test_a_read_only_home_can_be_read(read_only_home: Path) -> None:
    with _open(read_only_home) as store:
        assert store.read_only
        [summary] = store.list_calls()
        call = store.get_call(summary.call_id)
        assert sorted(local_recordings(call.recordings)) == KINDS
        assert store.snapshot_for_call(call.call_id) is not None
        assert store.replays.list() == []
        with pytest.raises(StoreError, match=r"^saving call .*: the store at .* is read-only"):
            store.save_call(call.model_copy(update={"ended_reason": "edited"}))
        with store.engine.begin() as conn:  # SQLite refuses writes below the store, too
            with pytest.raises(sa.exc.OperationalError, match="readonly"):
                conn.execute(sa.text("delete from calls"))
        assert store.count_calls() == 1


def test_a_read_only_folder_without_a_store_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setattr(database_module.os, "access", lambda path, mode: False)
    with pytest.raises(StoreError, match=r"there is no store yet and .*/ro is read-only$"):
        _open(folder)


def test_read_only_home_in_the_cli(read_only_home: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from voicereplay.cli import app

    monkeypatch.setenv("VOICEREPLAY_HOME", str(read_only_home))
    runner = CliRunner()
    listed = runner.invoke(app, ["calls", "list"])
    assert listed.exit_code == 0, listed.output
    assert "dfed92e7" in listed.stdout
    shown = runner.invoke(app, ["calls", "show", "dfed92e7-b86e-5139-835c-d451a4f9d515"])
    assert shown.exit_code == 0, shown.output
    assert runner.invoke(app, ["replays", "list"]).exit_code == 0


def test_in_memory_sqlite_is_refused_for_the_store(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        with pytest.raises(ConfigError, match="in-memory SQLite"):
            Store(url, tmp_path / "artifacts")


def _without_file_override() -> list[str]:
    """A command prefix that runs a child without root's power to write any file, or [] when
    this process is not root (then file modes bind it already)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: chmod cannot make a folder read-only")
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_a_chmod_read_only_home_in_real_processes(tmp_path: Path) -> None:
    """The real thing: the home's files and folders lose their write bits, and the commands run
    in a child process that cannot override file modes (root's DAC capabilities dropped)."""
    home = tmp_path / "home"
    with _open(home) as store:
        call = _import_demo(store, tmp_path)
    tmp_path.chmod(0o755)
    for path in [home, *home.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    prefix = _without_file_override()
    env = {**os.environ, "VOICEREPLAY_HOME": str(home), "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, "-c",
                               "from voicereplay.cli import app; app()", *args],
                              env=env, capture_output=True, text=True, timeout=300)

    try:
        probe = subprocess.run([*prefix, sys.executable, "-c",
                                f"open({str(home / 'probe')!r}, 'w')"], capture_output=True)
        assert probe.returncode != 0  # the child really cannot write the home
        listed = cli("calls", "list")
        assert listed.returncode == 0, listed.stderr
        assert call.call_id[:8] in listed.stdout
        shown = cli("calls", "show", call.call_id)
        assert shown.returncode == 0, shown.stderr
        assert cli("replays", "list").returncode == 0
        imported = cli("calls", "import", "--provider", "files", "--dir",
                       str(tmp_path / "export"))
        assert imported.returncode == 1 and "Traceback" not in imported.stderr
        assert "read-only" in imported.stderr
    finally:
        for path in [home, *home.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
