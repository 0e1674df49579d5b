"""The hot store's schema migrations, with Alembic (`store/migrations/`): a store is upgraded to head on open.

A new store is created by the baseline revision; a store made before Alembic (tables and `nightwatch_meta`,
no `alembic_version`) is adopted by it. A store at a revision this Nightwatch does not know, or whose
`nightwatch_meta` schema version is above `SCHEMA_VERSION`, was made by a newer Nightwatch and is refused.
`nightwatch_meta` keeps the schema version (older Nightwatch versions read it to refuse a newer store) and a
line per migration that changed something.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from core.event import utcnow
from store.schema import SCHEMA_VERSION, meta

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK = 0x6E77_6D69  # PostgreSQL: one upgrade at a time per database, across processes
_upgrading = threading.Lock()  # and across threads of this process


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    return _script().get_current_head()


def number(revision: str) -> int:
    """A revision's schema version: its leading digits (`0002_audit_chain` is 2)."""
    return int(revision.split("_", 1)[0])


def _known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def upgrade(engine: sa.Engine, url: str) -> list[str]:
    """Bring the store at `engine` to the head revision; returns what was migrated (empty if nothing was)."""
    with _upgrading, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        current = MigrationContext.configure(conn).get_current_revision()
        legacy = _legacy_version(conn)
        newer = current if current is not None and not _known(current) else None
        if newer is None and legacy is not None and legacy > SCHEMA_VERSION:
            newer = str(legacy)
        if newer is not None:
            raise RuntimeError(
                f"hot store {url} has schema version {newer}, newer than this Nightwatch ({SCHEMA_VERSION})"
            )
        if current == head() and legacy == SCHEMA_VERSION:
            return []
        config = _config()
        config.attributes.update(connection=conn, url=url, migrated=[])
        command.upgrade(config, "head")
        migrated = list(config.attributes["migrated"])
        if current is not None and current != head():
            migrated.append(f"schema version {number(current)} -> {SCHEMA_VERSION}")
        _record(conn, legacy, migrated)
    return migrated


def _legacy_version(conn: sa.Connection) -> int | None:
    if not sa.inspect(conn).has_table(meta.name):
        return None
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return None if value is None else int(value)


def _record(conn: sa.Connection, legacy: int | None, migrated: list[str]) -> None:
    if legacy is None:
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    elif legacy != SCHEMA_VERSION:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
    if migrated:
        conn.execute(meta.insert().values(key=f"migrated {utcnow().isoformat()}", value=json.dumps(migrated)))
