"""Batches: many calls replayed against one candidate agent, one replay job per call.

A batch row holds what the user selected, the replay request every call gets (its ``call``
filled in per job) and the resolved list of calls, so re-running ``voicereplay batch run`` with
the same arguments continues the stored batch instead of selecting again. Each job names its
batch (``jobs.batch_id``).

Revision ID: 0009_batches
Revises: 0008_job_triggers
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_batches"
down_revision = "0008_job_triggers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("calls", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint("key", name="uq_batches_key"),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(64), nullable=True))
        batch.create_index("ix_jobs_batch_id", ["batch_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_batch_id")
        batch.drop_column("batch_id")
    op.drop_table("batches")
