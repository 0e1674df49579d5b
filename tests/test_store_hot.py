"""The hot store's engines (one per URL per process) and its inserts that say which rows were new, on SQLite and
PostgreSQL: duplicates in one batch, rows already stored, and concurrent writers of the same ids."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.association import Link
from core.event import DeadLetter, Event, utcnow
from store import hot
from store.hot import HotStore
from store.schema import alerts, associations, dead_letters, events, review_queue

NOW = utcnow()


def event(i: int, event_class: str = "interesting", **overrides) -> Event:
    fields = dict(
        event_id=f"ztf:test{i}",
        source="ztf",
        kind="optical_transient",
        object_id=f"ZTF25obj{i}",
        event_time=NOW - timedelta(minutes=5),
        received_time=NOW,
        ra=10.0 + i,
        dec=-30.0,
        raw_format="ztf-avro",
        event_class=event_class,
        alert_level={"critical": "CRITICAL", "significant": "HIGH"}.get(event_class),
        score=0.5,
    )
    return Event(**{**fields, **overrides})


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else f"sqlite:///{tmp_path}/hot.db"
    store = HotStore(url)
    store.ensure_schema()
    yield url
    store.close()


# --- engines ---------------------------------------------------------------------------------------------------


def test_one_engine_per_url_per_process(tmp_path):
    first, second = HotStore(f"sqlite:///{tmp_path}/a.db"), HotStore(f"sqlite:///{tmp_path}/a.db")
    other = HotStore(f"sqlite:///{tmp_path}/b.db")
    assert first.engine is second.engine
    assert other.engine is not first.engine
    first.close()
    first.close()  # closing twice gives back one reference, not two
    assert HotStore(f"sqlite:///{tmp_path}/a.db").engine is second.engine  # still held by `second`
    for store in (second, other):
        store.close()


def test_the_last_close_disposes_the_engine(tmp_path):
    url = f"sqlite:///{tmp_path}/a.db"
    stores = [HotStore(url) for _ in range(3)]
    engine = stores[0].engine
    for store in stores:
        store.close()
    assert url not in hot._engines
    fresh = HotStore(url)
    assert fresh.engine is not engine
    fresh.close()


def test_threads_opening_one_url_share_one_engine(tmp_path):
    url = f"sqlite:///{tmp_path}/a.db"
    barrier = threading.Barrier(8)

    def open_store(_: int) -> HotStore:
        barrier.wait()
        return HotStore(url)

    with ThreadPoolExecutor(8) as pool:
        stores = list(pool.map(open_store, range(8)))
    assert len({id(store.engine) for store in stores}) == 1
    assert hot._engines[url][1] == 8
    for store in stores:
        store.close()
    assert url not in hot._engines


def test_one_engine_on_postgres_and_a_database_that_can_be_dropped(postgres_url):
    first, second = HotStore(postgres_url), HotStore(postgres_url)
    assert first.engine is second.engine
    first.ensure_schema()
    assert second.count(events) == 0
    first.close()
    second.close()  # the fixture drops the database afterwards
    assert postgres_url not in hot._engines


def test_a_replaced_sqlite_file_is_read_again(tmp_path):
    """A restore replaces the file under pooled connections: they are dropped, not left reading the old file."""
    url = f"sqlite:///{tmp_path}/hot.db"
    holder, store = HotStore(url), HotStore(url)  # `holder` keeps the engine (and its pool) alive
    store.ensure_schema()
    store.add_events([event(1)])
    with store.engine.begin() as conn:
        conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    shutil.copyfile(tmp_path / "hot.db", tmp_path / "backup.db")
    store.add_events([event(2)])
    assert store.count(events) == 2
    for stale in ("hot.db", "hot.db-wal", "hot.db-shm"):
        (tmp_path / stale).unlink(missing_ok=True)
    shutil.copyfile(tmp_path / "backup.db", tmp_path / "hot.db")
    assert store.count(events) == 1
    holder.close()
    store.close()


# --- which rows were new -----------------------------------------------------------------------------------------


def test_duplicates_in_one_batch_are_stored_once(url):
    store = HotStore(url)
    batch = [event(1), event(2), event(1, score=0.9), event(3)]
    assert store.add_events(batch) == {"ztf:test1", "ztf:test2", "ztf:test3"}
    assert store.count(events) == 3
    assert store.add_events([]) == set()
    store.close()


def test_rows_already_stored_are_not_new(url):
    store = HotStore(url)
    assert store.add_events([event(1), event(2)]) == {"ztf:test1", "ztf:test2"}
    assert store.add_events([event(2), event(3)]) == {"ztf:test3"}
    assert store.add_events([event(1), event(2), event(3)]) == set()
    critical = [event(4, "critical"), event(5, "significant")]
    assert store.add_alerts(critical) == {"alert:ztf:test4", "alert:ztf:test5"}
    assert store.add_alerts(critical) == set()
    assert store.add_reviews([event(6), event(6)]) == {"ztf:test6"}
    assert store.add_reviews([event(6), event(7)]) == {"ztf:test7"}
    letters = [DeadLetter(source="ztf", stage="decode", reason="bad", payload=b"\x00", origin=f"f{i}") for i in (1, 2)]
    assert store.add_dead_letters(letters) == {letter.dead_letter_id for letter in letters}
    assert store.add_dead_letters(letters) == set()
    assert [store.count(table) for table in (events, alerts, review_queue, dead_letters)] == [3, 2, 2, 2]
    store.close()


def test_concurrent_writers_of_the_same_ids_are_told_once(url):
    """Six writers store the same 40 events at the same moment: each id is new to exactly one of them."""
    batch = [event(i) for i in range(40)]
    barrier = threading.Barrier(6)

    def write(_: int) -> set[str]:
        store = HotStore(url)
        barrier.wait()
        try:
            return store.add_events(batch)
        finally:
            store.close()

    with ThreadPoolExecutor(6) as pool:
        told = list(pool.map(write, range(6)))
    assert sum(len(ids) for ids in told) == 40
    assert set().union(*told) == {e.event_id for e in batch}
    store = HotStore(url)
    assert store.count(events) == 40
    store.close()


def test_an_association_is_applied_once_even_by_concurrent_writers(url):
    store = HotStore(url)
    trigger = event(1, "significant", event_id="gcn:grb1", source="gcn", kind="grb", raw_format="voevent")
    store.add_events([trigger, event(2)])
    link = Link("gcn:grb1", "ztf:test2", 0.1, 600.0)
    barrier = threading.Barrier(4)

    def apply(_: int):
        writer = HotStore(url)
        barrier.wait()
        try:
            return writer.apply_association(link)
        finally:
            writer.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(apply, range(4)))
    applied = [result for result in results if result is not None]
    assert len(applied) == 1 and {raised.event_id for raised in applied[0]} == {"gcn:grb1", "ztf:test2"}
    assert store.count(associations) == 1
    assert store.count(events, event_class="critical") == 1 and store.count(events, event_class="significant") == 1
    assert store.apply_association(link) is None
    store.close()
