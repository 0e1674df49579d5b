"""The notification outbox (`notify_outbox`): a pending row written with each new alert, in its transaction.

Alerts stored before the outbox are not queued here (their deliveries, if any, are in `deliveries`).

Revision ID: 0003_notify_outbox
Revises: 0002_audit_chain
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_notify_outbox"
down_revision = "0002_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("notify_outbox"):
        return
    op.create_table(
        "notify_outbox",
        sa.Column("alert_id", sa.String(300), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_notify_outbox_done_at", "notify_outbox", ["done_at"])


def downgrade() -> None:
    op.drop_table("notify_outbox")
