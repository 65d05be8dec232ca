"""Content-addressed artifact files (recordings, later replay audio and reports).

A blob lives at ``<root>/blobs/<sha[:2]>/<sha><suffix>``; writing the same bytes twice keeps one
file. Writes go to a temporary file in the same directory and are renamed into place, so a
failed download never leaves a half-written blob.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from voicereplay.errors import StoreError

__all__ = ["ArtifactStore", "Blob"]


@dataclass(frozen=True)
class Blob:
    sha256: str
    path: Path
    size: int


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._made: set[Path] = set()

    def _dir(self, path: Path) -> Path:
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def path_for(self, sha256: str, suffix: str = "") -> Path:
        return self.root / "blobs" / sha256[:2] / f"{sha256}{suffix}"

    def put_chunks(self, chunks: Iterable[bytes], suffix: str = "") -> Blob:
        """Stream ``chunks`` into the store; returns the blob (existing or new)."""
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self._dir(self.root / "tmp"), suffix=".part")
        except OSError as exc:
            raise StoreError(f"cannot write artifacts under {self.root}: {exc}") from exc
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            final = self.path_for(sha, suffix)
            if final.exists():
                os.unlink(tmp_name)
            else:
                self._dir(final.parent)
                os.replace(tmp_name, final)
            return Blob(sha256=sha, path=final, size=size)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_bytes(self, data: bytes, suffix: str = "") -> Blob:
        return self.put_chunks([data], suffix)

    def put_file(self, source: Path, suffix: str | None = None) -> Blob:
        def read() -> Iterable[bytes]:
            with open(source, "rb") as fh:
                while chunk := fh.read(1 << 16):
                    yield chunk

        return self.put_chunks(read(), source.suffix if suffix is None else suffix)
