"""Releases of the cuts and rules (`releases`), and the release a version in force came from
(`thresholds.release_id`): `nightwatch release register|shadow|canary|promote|rollback`; the steps of the
procedures run as one command (`procedure_runs`: `nightwatch deploy`, `nightwatch system-test`).

Revision ID: 0009_releases
Revises: 0008_status_updates
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_releases"
down_revision = "0008_status_updates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store the baseline adopted already has every table of the schema: only what is missing is added.
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("releases"):
        _releases()
    if not inspector.has_table("procedure_runs"):
        _procedure_runs()
    if "release_id" not in {column["name"] for column in inspector.get_columns("thresholds")}:
        with op.batch_alter_table("thresholds") as batch:
            batch.add_column(sa.Column("release_id", sa.Integer))


def _releases() -> None:
    op.create_table(
        "releases",
        sa.Column("release_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False, index=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("author", sa.String(160), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("share", sa.Float),
        sa.Column("trial_started_at", sa.DateTime(timezone=True)),
        sa.Column("report", sa.Text),
    )


def _procedure_runs() -> None:
    op.create_table(
        "procedure_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False, index=True),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("passed", sa.Boolean),
        sa.Column("report", sa.Text, nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("thresholds") as batch:
        batch.drop_column("release_id")
    op.drop_table("procedure_runs")
    op.drop_table("releases")
