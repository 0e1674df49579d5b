"""Heartbeats, intake state, console faults and agent resources: the runbooks' worker status, stop/resume intake,
SEV-4 dashboard glitches, slow data.

New tables `heartbeats` (each running job or worker's latest beat), `intake_state` (paused sources) and
`console_faults` (the console's own faults, recorded when they happen), and three
nullable columns of `agent_metrics` (`cpu_ms`, `memory_mb`, `slowest`). Self-contained: it creates what is missing
and adds what may be empty, so it applies on any store the baseline made.

Revision ID: 0004_heartbeats
Revises: 0003_notify_outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_heartbeats"
down_revision = "0003_notify_outbox"
branch_labels = None
depends_on = None

metadata = sa.MetaData()

heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column("worker_id", sa.String(160), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("run_id", sa.String(64)),
    sa.Column("host", sa.String(128)),
    sa.Column("pid", sa.Integer),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed", sa.Integer, nullable=False),
    sa.Column("throughput_per_s", sa.Float),
    sa.Column("backlog", sa.Integer),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text),
)

console_faults = sa.Table(
    "console_faults",
    metadata,
    sa.Column("fault_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("page", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("user_name", sa.String(128)),
)

intake_state = sa.Table(
    "intake_state",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text),
)

AGENT_COLUMNS = (("cpu_ms", sa.Float), ("memory_mb", sa.Float), ("slowest", sa.Text))


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            table.create(bind)
    present = {column["name"] for column in inspector.get_columns("agent_metrics")}
    for name, kind in AGENT_COLUMNS:
        if name not in present:
            op.add_column("agent_metrics", sa.Column(name, kind))  # "schema version 1 -> 4" is logged


def downgrade() -> None:
    for name, _ in AGENT_COLUMNS:
        with op.batch_alter_table("agent_metrics") as batch:
            batch.drop_column(name)
    metadata.drop_all(op.get_bind())
