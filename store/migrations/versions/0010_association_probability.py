"""Associations record their chance-coincidence probability and whether they raised the events' classes.

Links stored before this revision raised their events (the old rule) and have no probability.

Revision ID: 0010_association_probability
Revises: 0009_releases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_association_probability"
down_revision = "0009_releases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (SQLite and PostgreSQL both take them with a constant default): no table rebuild. A store
    # adopted from before Alembic was made with today's tables and has them already.
    have = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("associations")}
    if "chance_probability" not in have:
        op.add_column("associations", sa.Column("chance_probability", sa.Float, nullable=True))
    if "raised" not in have:
        op.add_column("associations", sa.Column("raised", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("associations") as batch:
        batch.drop_column("raised")
        batch.drop_column("chance_probability")
