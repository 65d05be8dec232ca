"""Replays: every replay of a stored call, with its snapshot, mode, status and data.

Revision ID: 0002_replays
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_replays"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("call_pk", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=True),
        sa.Column("run_index", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("wall_seconds", sa.Float(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replays"),
        sa.ForeignKeyConstraint(
            ["call_pk"], ["calls.id"], name="fk_replays_call_pk_calls", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name="fk_replays_snapshot_id_snapshots"
        ),
    )
    op.create_index("ix_replays_call_pk", "replays", ["call_pk"])
    op.create_index("ix_replays_batch_id", "replays", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_replays_batch_id", table_name="replays")
    op.drop_index("ix_replays_call_pk", table_name="replays")
    op.drop_table("replays")
