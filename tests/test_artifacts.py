"""Content-addressed artifacts: same bytes, one file; a failed write leaves nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicereplay.artifacts import ArtifactStore


def test_same_bytes_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    a = store.put_bytes(b"RIFF" + b"x" * 100, ".wav")
    b = store.put_chunks([b"RIFF", b"x" * 50, b"x" * 50], ".wav")
    assert (a.sha256, a.path, a.size) == (b.sha256, b.path, b.size)
    assert a.new and not b.new  # only the first write created the file
    assert a.sha256 == hashlib.sha256(b"RIFF" + b"x" * 100).hexdigest()
    assert a.path.read_bytes() == b"RIFF" + b"x" * 100
    blobs = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert blobs == [a.path]


def test_failed_stream_leaves_no_file(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("connection dropped")

    with pytest.raises(RuntimeError):
        store.put_chunks(broken(), ".wav")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
