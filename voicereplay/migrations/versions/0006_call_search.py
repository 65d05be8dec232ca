"""Calls that list fast: ``call_search`` (what the search box looks in) and ``call_data``.

- ``call_search``: one lowercased text per call — its id, the customer's number and the spoken
  turns of its transcript — so a case-insensitive substring search is one ``LIKE`` on one
  narrow column on SQLite and PostgreSQL alike (SQLite's ``lower()`` folds ASCII only, so the
  text is folded in Python on the way in).
- ``call_data``: the whole call (``calls.data`` until now) moves to a table of its own, so
  ``calls`` holds only what listing and filters read; a count or a filter over 10,000 calls
  then reads a few hundred bytes a call instead of each call's JSON.

Existing calls are filled in from their stored ``data``.

Revision ID: 0006_call_search
Revises: 0005_job_progress
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_call_search"
down_revision = "0005_job_progress"
branch_labels = None
depends_on = None


def _search_text(data: Any) -> str:
    """The same text ``voicereplay.store.calls.search_text`` writes (frozen here)."""
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        return ""
    parts = [str(data.get("call_id") or ""), str(data.get("customer_number") or "")]
    for turn in data.get("turns") or []:
        if isinstance(turn, dict) and turn.get("role") in ("agent", "user") and turn.get("text"):
            parts.append(str(turn["text"]))
    return "\n".join(parts).replace("\x00", "").lower()


def upgrade() -> None:
    for name, column in (("call_data", sa.Column("data", sa.JSON(), nullable=False)),
                         ("call_search", sa.Column("text", sa.Text(), nullable=False))):
        op.create_table(
            name,
            sa.Column("call_pk", sa.Integer(), nullable=False),
            column,
            sa.ForeignKeyConstraint(["call_pk"], ["calls.id"], ondelete="CASCADE",
                                    name=f"fk_{name}_call_pk_calls"),
            sa.PrimaryKeyConstraint("call_pk", name=f"pk_{name}"),
        )
    conn = op.get_bind()
    calls = sa.table("calls", sa.column("id", sa.Integer), sa.column("data", sa.JSON))
    search = sa.table("call_search", sa.column("call_pk", sa.Integer),
                      sa.column("text", sa.Text))
    for row_id, data in conn.execute(sa.select(calls.c.id, calls.c.data)).all():
        conn.execute(search.insert().values(call_pk=row_id, text=_search_text(data)))
    op.execute("INSERT INTO call_data (call_pk, data) SELECT id, data FROM calls")
    # A plain DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch copy of the table: copying
    # ``calls`` would drop the old one, and its ON DELETE CASCADE children with it.
    op.execute("ALTER TABLE calls DROP COLUMN data")


def downgrade() -> None:
    op.add_column("calls", sa.Column("data", sa.JSON(), nullable=True))
    op.execute("UPDATE calls SET data = (SELECT data FROM call_data "
               "WHERE call_data.call_pk = calls.id)")
    op.drop_table("call_data")
    op.drop_table("call_search")
