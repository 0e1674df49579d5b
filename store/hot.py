"""The hot store: recent events, alerts, the review queue, dead letters and runs, in one SQL database.

SQLite by default (a file in the output folder); any SQLAlchemy URL (PostgreSQL in production). The tables are
in `store.schema`, their migrations in `store.migrate`; the queries, per aggregate, in `store.events`,
`store.associations` and `store.metrics`. Every write is idempotent on its id: storing the same event twice
leaves one row.

A process holds one engine (and its connection pool) per URL, however many `HotStore`s it opens: each
`HotStore` takes a reference and `close()` gives it back; the last one disposes the engine (and exit disposes
what is left).
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.associations import AssociationQueries
from store.events import EventQueries
from store.metrics import MetricQueries

_engines: dict[str, tuple[Engine, int]] = {}  # URL -> (engine, HotStores holding it)
_engines_lock = threading.Lock()


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def _create_engine(url: str) -> Engine:
    connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
    engine = sa.create_engine(url, connect_args=connect_args)
    if url.startswith("sqlite"):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        path = engine.url.database
        if path and path != ":memory:":
            sa.event.listen(engine, "connect", lambda _connection, record: record.info.update(file=_file_id(path)))
            sa.event.listen(engine, "checkout", lambda _connection, record, _proxy: _same_file(path, record))
    return engine


def acquire_engine(url: str) -> Engine:
    """The process's engine for `url` (created on first use); give it back with `release_engine`."""
    with _engines_lock:
        engine, holders = _engines.get(url) or (_create_engine(url), 0)
        _engines[url] = (engine, holders + 1)
        return engine


def release_engine(url: str) -> None:
    """Give back a reference taken by `acquire_engine`; the last one disposes the engine and its pool."""
    with _engines_lock:
        engine, holders = _engines[url]
        if holders > 1:
            _engines[url] = (engine, holders - 1)
            return
        del _engines[url]
    engine.dispose()


@atexit.register
def _dispose_all() -> None:
    with _engines_lock:
        engines = [engine for engine, _ in _engines.values()]
        _engines.clear()
    for engine in engines:
        engine.dispose()


def _forget_after_fork() -> None:
    # A forked child must not use its parent's pooled connections: it starts with engines of its own.
    for engine, _ in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


class HotStore(EventQueries, AssociationQueries, MetricQueries):
    """The SQL hot store. Create with a URL; `ensure_schema()` creates the tables or upgrades them to head."""

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = acquire_engine(url)
        self._closed = False

    def ensure_schema(self) -> list[str]:
        """Create a new store, or upgrade an older one to the head revision; returns what was migrated.

        A store made by a newer Nightwatch is refused (`store.migrate`).
        """
        from store import migrate  # Alembic is loaded only by the processes that open a store this way

        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return migrate.upgrade(self.engine, self.url)

    def close(self) -> None:
        """Give back this store's reference to the process's engine (once; later calls do nothing)."""
        if not self._closed:
            self._closed = True
            release_engine(self.url)

    def count(self, table: sa.Table, **where: Any) -> int:
        query = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts_by(self, table: sa.Table, column: str) -> dict[str, int]:
        query = sa.select(table.c[column], sa.func.count()).group_by(table.c[column])
        with self.engine.connect() as conn:
            return {str(key): int(value) for key, value in conn.execute(query)}


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _same_file(path: str, record: Any) -> None:
    # A pooled connection to a file since replaced (a restore, here or in another process) would go on reading
    # the old file: the pool drops it and connects again.
    if record.info.get("file") != _file_id(path):
        raise sa.exc.DisconnectionError(f"{path} was replaced")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while the pipeline writes; a busy timeout waits for other writers.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
