"""Importing with broken recordings and a full disk: the call is kept or nothing is, never half.

A recording that cannot be replayed (no audio, garbage after a WAV header, a one-channel
"stereo", truncated before the transcript ends) is left out with a warning naming the file and
what is wrong; the rest of the call is imported. A disk that fills up during the import fails
that call with one line and leaves no blob file and no row behind.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from sqlalchemy import text

from voicereplay.artifacts import ArtifactStore
from voicereplay.config import Settings
from voicereplay.errors import StoreError
from voicereplay.pipeline import import_calls
from voicereplay.providers.files import FilesProvider
from voicereplay.recording_check import recording_problem
from voicereplay.store import Store

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
STEREO = (DEMO / "demo-refund.stereo.wav").read_bytes()


def _export(tmp_path: Path) -> Path:
    exported = tmp_path / "export"
    exported.mkdir()
    for path in DEMO.glob("demo-refund.*"):
        shutil.copy(path, exported / path.name)
    return exported


def _mono(path: Path) -> None:
    soundfile.write(path, np.zeros(8000 * 47, dtype=np.int16), 8000)


BAD_STEREO = {
    "one channel": (_mono, "has 1 channel; a stereo recording needs 2"),
    "truncated": (lambda p: p.write_bytes(STEREO[: len(STEREO) // 3]),
                  "ends at 15.5 s but the transcript runs to 45.6 s"),
    "garbage after a WAV header": (
        lambda p: p.write_bytes(b"RIFF\x00\x10\x00\x00WAVE" + os.urandom(4000)),
        "is not audio that can be decoded (Error in WAV file. No 'data' chunk marker"),
    "empty": (lambda p: p.write_bytes(b""), "is not audio (it is empty)"),
    "not audio": (lambda p: p.write_bytes(b"<html>403 Forbidden</html>"), "is not audio"),
}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store.from_settings(Settings.for_home(tmp_path / "home")) as s:
        yield s


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("damage", list(BAD_STEREO))
def test_a_bad_stereo_recording_is_left_out_with_a_warning(
        damage: str, store: Store, tmp_path: Path) -> None:
    exported = _export(tmp_path)
    spoil, problem = BAD_STEREO[damage]
    spoil(exported / "demo-refund.stereo.wav")

    [outcome] = import_calls(store, FilesProvider(exported))

    assert outcome.ok and outcome.status == "created", outcome.error
    [warning] = [w for w in outcome.warnings if "recording" in w]
    assert warning.startswith("stereo recording demo-refund.stereo.wav")
    assert problem in warning and "imported without it" in warning
    assert "artifacts" not in warning  # the user's file is named, not an internal blob
    assert outcome.call_id is not None
    call = store.get_call(outcome.call_id, outcome.provider)
    assert sorted(r.kind for r in call.recordings) == ["agent", "customer", "mixed"]
    kept = {Path(r.path or "") for r in call.recordings}
    assert set(_files(store.artifacts.root / "blobs")) == kept  # the bad blob is not kept


def test_good_recordings_pass_the_check() -> None:
    for kind in ("stereo", "customer", "agent", "mixed"):
        assert recording_problem(DEMO / f"demo-refund.{kind}.wav", kind, call_end=45.566) is None


def test_a_full_disk_fails_the_call_in_one_line_and_leaves_nothing(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exported = _export(tmp_path)
    real_open = ArtifactStore._open_temp
    opened: list[str] = []

    class FullDisk:
        """A temp file whose writes fail like a full disk, from the second blob on."""

        def __init__(self, out: Any) -> None:
            self.out = out

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.out, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.out.close()

    def open_temp(self: ArtifactStore) -> tuple[Any, str]:
        out, name = real_open(self)
        opened.append(name)
        return (out if len(opened) == 1 else FullDisk(out)), name

    monkeypatch.setattr(ArtifactStore, "_open_temp", open_temp)
    [outcome] = import_calls(store, FilesProvider(exported), concurrency=1)

    assert len(opened) == 2  # one recording was written before the disk filled up
    assert outcome.status == "failed" and outcome.exit_code == StoreError.exit_code
    assert outcome.error is not None and "\n" not in outcome.error
    assert outcome.error.startswith("the disk is full: cannot write audio under ")
    assert _files(store.artifacts.root) == []  # no orphaned blob, no temp file
    with store.engine.connect() as conn:
        for table in ("calls", "blobs", "call_recordings", "snapshots"):
            assert conn.execute(text(f"select count(*) from {table}")).scalar() == 0, table


def test_a_save_that_fails_removes_the_blobs_it_wrote(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exported = _export(tmp_path)

    def full(*_args: Any, **_kwargs: Any) -> str:
        raise StoreError("saving call failed: database or disk is full")

    monkeypatch.setattr(store, "save_call", full)
    [outcome] = import_calls(store, FilesProvider(exported))
    assert outcome.status == "failed" and outcome.error and "disk is full" in outcome.error
    assert _files(store.artifacts.root / "blobs") == []


def test_a_full_disk_in_the_cli_is_one_line(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from voicereplay.cli import app

    exported = _export(tmp_path)

    def no_space(self: ArtifactStore) -> tuple[Any, str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ArtifactStore, "_open_temp", no_space)
    result = CliRunner().invoke(app, ["calls", "import", "--provider", "files",
                                      "--dir", str(exported)])
    assert result.exit_code == StoreError.exit_code
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = [ln for ln in result.stderr.splitlines() if "disk is full" in ln]
    assert "demo-refund.json" in line and "Traceback" not in result.output
    home = Settings.from_env().home
    assert _files(home / "artifacts" / "blobs") == []
