"""Inserts that tell which rows were new, without a race: INSERT ... ON CONFLICT DO NOTHING RETURNING the key.

Two writers storing the same id at once both succeed, and exactly one of them is told the row was new (SQLite
3.35 and later, and PostgreSQL, return only the rows the statement inserted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


def insert_ignoring_conflicts(conn: sa.Connection, table: sa.Table, keys: Sequence[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, in the connection's dialect (a plain INSERT in another)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return table.insert()
    return insert(table).on_conflict_do_nothing(index_elements=list(keys))


def insert_new(conn: sa.Connection, table: sa.Table, key: str, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows whose key is not stored yet; returns the keys this statement stored.

    A key repeated within `rows` is stored once (its last row); a key stored already, or by a concurrent
    writer, is left as it is and not returned.
    """
    unique = list({row[key]: row for row in rows}.values())
    if not unique:
        return set()
    if conn.dialect.name not in ("postgresql", "sqlite"):  # no ON CONFLICT ... RETURNING: look first (racy)
        column = table.c[key]
        stored = set(conn.execute(sa.select(column).where(column.in_([row[key] for row in unique]))).scalars())
        fresh = [row for row in unique if row[key] not in stored]
        if fresh:
            conn.execute(table.insert(), fresh)
        return {row[key] for row in fresh}
    statement = insert_ignoring_conflicts(conn, table, [key]).returning(table.c[key])
    return set(conn.execute(statement, unique).scalars())
