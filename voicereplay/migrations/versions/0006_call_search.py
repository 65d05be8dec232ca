"""The ``call_search`` table: what the calls list's search box looks in.

One lowercased text per call — its id, the customer's number and the spoken turns of its
transcript — so a case-insensitive substring search is one ``LIKE`` on one column on SQLite and
PostgreSQL alike (SQLite's ``lower()`` folds ASCII only, so the text is folded in Python on the
way in). A table of its own keeps the scan to these bytes, not each call's whole ``data``.
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
    op.create_table(
        "call_search",
        sa.Column("call_pk", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["call_pk"], ["calls.id"], ondelete="CASCADE",
                                name="fk_call_search_call_pk_calls"),
        sa.PrimaryKeyConstraint("call_pk", name="pk_call_search"),
    )
    conn = op.get_bind()
    calls = sa.table("calls", sa.column("id", sa.Integer), sa.column("data", sa.JSON))
    search = sa.table("call_search", sa.column("call_pk", sa.Integer),
                      sa.column("text", sa.Text))
    for row_id, data in conn.execute(sa.select(calls.c.id, calls.c.data)).all():
        conn.execute(search.insert().values(call_pk=row_id, text=_search_text(data)))


def downgrade() -> None:
    op.drop_table("call_search")
