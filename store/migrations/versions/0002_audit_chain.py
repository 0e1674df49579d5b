"""The audit log becomes a hash chain (`audit_log.row_hash`, the `audit_chain` head row); dead letters can be
marked resolved (`dead_letters.resolved_at`, and an index on their event id) when their event is stored after all.

The rows written before the chain get their hashes here, in order (the append-only triggers are set aside for
that one update and put back). Every step is skipped where it is done already (a store adopted from
`store/schema.py` has the columns and the table).

Revision ID: 0002_audit_chain
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from store.chain import GENESIS, HEAD, chain_hash

revision = "0002_audit_chain"
down_revision = "0001"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = {
    verb: f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    for verb in ("UPDATE", "DELETE")
}


def _columns(inspector: sa.Inspector, table: str) -> set[str]:
    return {column["name"] for column in inspector.get_columns(table)}


def _set_triggers(bind: sa.Connection, enabled: bool) -> None:
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE audit_log {'ENABLE' if enabled else 'DISABLE'} TRIGGER audit_log_append_only")
    elif bind.dialect.name == "sqlite":
        for verb, create in _SQLITE_TRIGGERS.items():
            op.execute(create if enabled else f"DROP TRIGGER IF EXISTS audit_log_no_{verb.lower()}")


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    migrated = context.config.attributes.setdefault("migrated", [])
    if "row_hash" not in _columns(inspector, "audit_log"):
        op.add_column("audit_log", sa.Column("row_hash", sa.String(64)))
    if "resolved_at" not in _columns(inspector, "dead_letters"):
        op.add_column("dead_letters", sa.Column("resolved_at", sa.DateTime(timezone=True)))
    if "ix_dead_letters_event_id" not in {index["name"] for index in inspector.get_indexes("dead_letters")}:
        op.create_index("ix_dead_letters_event_id", "dead_letters", ["event_id"])
    if not inspector.has_table("audit_chain"):
        op.create_table(
            "audit_chain",
            sa.Column("name", sa.String(16), primary_key=True),
            sa.Column("last_id", sa.Integer),
            sa.Column("last_hash", sa.String(64), nullable=False),
        )
    log = sa.table(
        "audit_log",
        sa.column("audit_id", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        *(sa.column(name, sa.Text) for name in ("actor", "action", "target", "before", "after", "note", "row_hash")),
    )
    chain = sa.table("audit_chain", sa.column("name"), sa.column("last_id"), sa.column("last_hash"))
    rows = bind.execute(sa.select(log).order_by(log.c.audit_id)).all()
    previous, last_id, hashed = GENESIS, None, 0
    unhashed = [row for row in rows if row.row_hash is None]
    if unhashed:
        _set_triggers(bind, enabled=False)
    for row in rows:
        digest = row.row_hash
        if digest is None:
            digest = chain_hash(previous, row)
            bind.execute(log.update().where(log.c.audit_id == row.audit_id).values(row_hash=digest))
            hashed += 1
        previous, last_id = digest, row.audit_id
    if unhashed:
        _set_triggers(bind, enabled=True)
        migrated.append(f"hashed {hashed} audit rows into a chain")
    if bind.execute(sa.select(chain.c.name).where(chain.c.name == HEAD)).first() is None:
        bind.execute(chain.insert().values(name=HEAD, last_id=last_id, last_hash=previous))


def downgrade() -> None:
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("row_hash")
    op.drop_index("ix_dead_letters_event_id", "dead_letters")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("resolved_at")
