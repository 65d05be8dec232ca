"""Paths relative to the home: blobs.path and the recordings' paths inside calls and replays.

Before this revision the store kept absolute paths, so a moved or restored home pointed at files
that were no longer there. A path under the home becomes relative to it; a path elsewhere that
lies in an ``artifacts/blobs`` or ``artifacts/replays`` folder (the home was moved before this
upgrade ran) keeps its tail from ``artifacts/``; any other path is left as it is.

Revision ID: 0003_relative_paths
Revises: 0002_replays
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0003_relative_paths"
down_revision = "0002_replays"
branch_labels = None
depends_on = None

_ARTIFACT_FOLDERS = ("blobs", "replays")


def _relative(path: Any, home: Path | None) -> Any:
    if not isinstance(path, str) or not path.startswith("/"):
        return path
    if home is not None:
        try:
            return Path(path).relative_to(home).as_posix()
        except ValueError:
            pass
    parts = PurePosixPath(path).parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "artifacts" and parts[i + 1] in _ARTIFACT_FOLDERS:
            return PurePosixPath(*parts[i:]).as_posix()
    return path


def _rewrite(data: Any, home: Path | None) -> Any | None:
    """``data`` with its recordings' paths relative, or None when nothing changed."""
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict) or not isinstance(data.get("recordings"), list):
        return None
    changed = False
    for rec in data["recordings"]:
        if isinstance(rec, dict) and "path" in rec:
            new = _relative(rec["path"], home)
            changed |= new != rec["path"]
            rec["path"] = new
    return data if changed else None


def upgrade() -> None:
    raw_home = context.config.attributes.get("home")
    home = Path(raw_home).resolve() if raw_home else None
    conn = op.get_bind()
    blobs = sa.table("blobs", sa.column("sha256", sa.String), sa.column("path", sa.Text))
    for sha, path in conn.execute(sa.select(blobs.c.sha256, blobs.c.path)).all():
        new = _relative(path, home)
        if new != path:
            conn.execute(blobs.update().where(blobs.c.sha256 == sha).values(path=new))
    for name, key in (("calls", sa.Integer), ("replays", sa.String)):
        table = sa.table(name, sa.column("id", key), sa.column("data", sa.JSON))
        for row_id, data in conn.execute(sa.select(table.c.id, table.c.data)).all():
            new_data = _rewrite(data, home)
            if new_data is not None:
                conn.execute(table.update().where(table.c.id == row_id).values(data=new_data))


def downgrade() -> None:
    """Nothing to undo: relative paths are read as paths under the home by every version that
    has this revision, and older versions cannot know where a moved home went."""
