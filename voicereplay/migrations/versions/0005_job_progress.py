"""Jobs know their call, stage and delivery; replays know the job that produced them.

Revision ID: 0005_job_progress
Revises: 0004_jobs
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_job_progress"
down_revision = "0004_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("call_provider", sa.String(32), nullable=True))
        batch.add_column(sa.Column("call_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("stage", sa.String(32), nullable=True))
        batch.add_column(sa.Column("progress", sa.Text(), nullable=True))
        batch.add_column(sa.Column("delivered_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_jobs_call", ["call_id"])
    with op.batch_alter_table("replays") as batch:
        batch.add_column(sa.Column("job_id", sa.String(64), nullable=True))
        batch.create_index("ix_replays_job_id", ["job_id"])


def downgrade() -> None:
    with op.batch_alter_table("replays") as batch:
        batch.drop_index("ix_replays_job_id")
        batch.drop_column("job_id")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_call")
        for column in ("delivered_at", "progress", "stage", "call_id", "call_provider"):
            batch.drop_column(column)
