"""Scheduled runs and their outcomes, and who ticked each checklist item (`schedule_runs`, ops/schedule.py).

A store the baseline adopted (made before Alembic) got the table from the schema already: kept as it is.

Revision ID: 0006_schedule_runs
Revises: 0005_login_throttle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_schedule_runs"
down_revision = "0005_login_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("schedule_runs"):  # a store adopted by the baseline has it already
        return
    op.create_table(
        "schedule_runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("task", sa.String(160), nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("detail", sa.Text),
        sa.Column("done_by", sa.String(128)),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_schedule_runs_job_due", "schedule_runs", ["job", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_runs_job_due", table_name="schedule_runs")
    op.drop_table("schedule_runs")
