"""Jobs know what triggered them (a flag rule, for the notification) and what they produced
besides replays (an event job's triggered jobs, a notification's delivery status).

Revision ID: 0008_job_triggers
Revises: 0007_events
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_job_triggers"
down_revision = "0007_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("trigger", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("result", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("result")
        batch.drop_column("trigger")
