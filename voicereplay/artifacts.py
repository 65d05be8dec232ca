"""Content-addressed artifact files (recordings, later replay audio and reports).

A blob lives at ``<root>/blobs/<sha[:2]>/<sha><suffix>``; writing the same bytes twice keeps one
file. Writes go to a temporary file in the same directory and are renamed into place, so a
failed download never leaves a half-written blob. A write that fails on the file system (a full
disk, a read-only folder) is a one-line :class:`~voicereplay.errors.StoreError` and leaves no
temporary file behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from voicereplay.errors import StoreError

__all__ = ["ArtifactStore", "Blob"]


@dataclass(frozen=True)
class Blob:
    sha256: str
    path: Path
    size: int
    new: bool = False  # this write created the file (it was not stored before)


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._made: set[Path] = set()
        self._tracking = threading.local()

    def _dir(self, path: Path) -> Path:
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def path_for(self, sha256: str, suffix: str = "") -> Path:
        return self.root / "blobs" / sha256[:2] / f"{sha256}{suffix}"

    def _open_temp(self) -> tuple[BinaryIO, str]:
        fd, name = tempfile.mkstemp(dir=self._dir(self.root / "tmp"), suffix=".part")
        return os.fdopen(fd, "wb"), name

    def put_chunks(self, chunks: Iterable[bytes], suffix: str = "") -> Blob:
        """Stream ``chunks`` into the store; returns the blob (existing or new)."""
        try:
            out, tmp_name = self._open_temp()
        except OSError as exc:
            raise StoreError(self._cannot_write(exc)) from exc
        digest = hashlib.sha256()
        size = 0
        try:
            with out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    with self._writing():
                        out.write(chunk)
                with self._writing():
                    out.flush()
            sha = digest.hexdigest()
            final = self.path_for(sha, suffix)
            if final.exists():
                return Blob(sha256=sha, path=final, size=size)
            with self._writing():
                self._dir(final.parent)
                os.replace(tmp_name, final)
            blob = Blob(sha256=sha, path=final, size=size, new=True)
            written = getattr(self._tracking, "blobs", None)
            if written is not None:
                written.append(blob)
            return blob
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)

    @contextmanager
    def track(self) -> Iterator[list[Blob]]:
        """Collect the blobs this thread creates inside the ``with`` block (so a failed import
        can remove exactly the files it wrote)."""
        previous = getattr(self._tracking, "blobs", None)
        written: list[Blob] = []
        self._tracking.blobs = written
        try:
            yield written
        finally:
            self._tracking.blobs = previous

    def put_bytes(self, data: bytes, suffix: str = "") -> Blob:
        return self.put_chunks([data], suffix)

    def put_file(self, source: Path, suffix: str | None = None) -> Blob:
        def read() -> Iterable[bytes]:
            with open(source, "rb") as fh:
                while chunk := fh.read(1 << 16):
                    yield chunk

        return self.put_chunks(read(), source.suffix if suffix is None else suffix)

    def discard(self, blob: Blob) -> None:
        """Remove ``blob``'s file (and its folder when that is left empty)."""
        try:
            blob.path.unlink(missing_ok=True)
            blob.path.parent.rmdir()
        except OSError:
            pass  # another blob shares the folder, or it is gone already
        self._made.discard(blob.path.parent)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StoreError(self._cannot_write(exc)) from exc

    def _cannot_write(self, exc: OSError) -> str:
        if exc.errno == errno.ENOSPC:
            return f"the disk is full: cannot write audio under {self.root}; free some space"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"cannot write audio under {self.root}: the folder is read-only"
        return f"cannot write artifacts under {self.root}: {exc.strerror or exc}"

