"""Incidents (ops/incidents/): the incident, its timeline and its procedure's checklist.

Revision ID: 0007_incidents
Revises: 0006_schedule_runs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_incidents"
down_revision = "0006_schedule_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("incidents"):  # a store made from the metadata (adopted at version 1)
        return
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("opened_severity", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("active", sa.String(8), unique=True),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("procedure", sa.String(128)),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("last_bad_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(160)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by", sa.String(160)),
        sa.Column("review", sa.Text),
        sa.Column("reviewed_by", sa.String(160)),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "incident_timeline",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.incident_id"), nullable=False, index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "incident_checklist",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.incident_id"), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("done_by", sa.String(160)),
    )


def downgrade() -> None:
    op.drop_table("incident_checklist")
    op.drop_table("incident_timeline")
    op.drop_table("incidents")
