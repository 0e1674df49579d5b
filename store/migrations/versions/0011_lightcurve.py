"""Light curves (`lightcurve`): every detection, non-detection and forced measurement an object's packets carried.

Stores with events from before it have no points: their light curves fill as new packets arrive.

Revision ID: 0011_lightcurve
Revises: 0010_association_probability
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_lightcurve"
down_revision = "0010_association_probability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("lightcurve"):  # a store made from the tables before Alembic adopted it
        return
    op.create_table(
        "lightcurve",
        sa.Column("object_id", sa.String(128), primary_key=True),
        sa.Column("point_id", sa.String(96), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mjd", sa.Float, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("band", sa.String(16)),
        sa.Column("mag", sa.Float),
        sa.Column("mag_err", sa.Float),
        sa.Column("limit_mag", sa.Float),
        sa.Column("flux", sa.Float),
        sa.Column("flux_err", sa.Float),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lightcurve")
