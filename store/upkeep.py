"""Store upkeep (the guide's weekly index rebuild): vacuum, analyse and reindex the hot store."""

from __future__ import annotations

import time
from collections.abc import Iterator

import sqlalchemy as sa

from store.hot import HotStore
from store.schema import metadata


def upkeep(store: HotStore) -> Iterator[str]:
    """Run the maintenance statements for the store's database; yields a line per step with its duration."""
    if store.engine.dialect.name == "sqlite":
        steps = ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "ANALYZE", "REINDEX"]
    else:
        names = ", ".join(table.name for table in metadata.sorted_tables)
        steps = [f"VACUUM (ANALYZE) {names}"] + [f"REINDEX TABLE {table.name}" for table in metadata.sorted_tables]
    # VACUUM cannot run inside a transaction on either database.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in steps:
            started = time.monotonic()
            conn.execute(sa.text(statement))
            yield f"{statement[:60]:<60} {time.monotonic() - started:7.2f} s"
