"""The public status page's updates (ops/statuspage.py).

Revision ID: 0008_status_updates
Revises: 0007_incidents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_status_updates"
down_revision = "0007_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("status_updates"):  # a store made from the metadata
        return
    op.create_table(
        "status_updates",
        sa.Column("update_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.incident_id"), index=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("author", sa.String(160), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("status_updates")
