"""Failed logins and lockouts (`login_throttle`), per account and per client address (access/throttle.py).

Stores where a console created the table on first use (before this revision) keep it as it is.

Revision ID: 0005_login_throttle
Revises: 0004_heartbeats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_login_throttle"
down_revision = "0004_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("login_throttle"):
        return
    op.create_table(
        "login_throttle",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
