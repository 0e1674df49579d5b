"""The hot store's schema: created, versioned, migrated in place where it can be, refused where it cannot."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from store.hot import SCHEMA_VERSION, HotStore, events, meta


def older_store(url: str, drop_column: str) -> None:
    """A store as an older Nightwatch made it: the events table without one column."""
    old = sa.MetaData()
    # Column.copy() is deprecated since SQLAlchemy 1.4; _copy() is what Table.to_metadata() uses.
    sa.Table("events", old, *[column._copy() for column in events.columns if column.name != drop_column])
    engine = sa.create_engine(url)
    old.create_all(engine)
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_older_store_is_migrated_in_place_and_logged(backend, tmp_path, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path}/old.db"
    older_store(url, "mag_err")
    store = HotStore(url)
    assert store.ensure_schema() == ["added events.mag_err"]
    assert "mag_err" in {column["name"] for column in sa.inspect(store.engine).get_columns("events")}
    with store.engine.connect() as conn:
        log = dict(conn.execute(sa.select(meta.c.key, meta.c.value)).all())
    assert log["schema_version"] == str(SCHEMA_VERSION)
    assert any(key.startswith("migrated ") and "events.mag_err" in value for key, value in log.items())
    assert store.ensure_schema() == []  # nothing more the second time
    store.close()


def test_a_change_that_cannot_be_made_in_place_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    older_store(url, "event_class")  # a required column
    with pytest.raises(RuntimeError, match="event_class, which cannot be added in place"):
        HotStore(url).ensure_schema()


def test_a_newer_store_is_refused(tmp_path):
    store = HotStore(f"sqlite:///{tmp_path}/new.db")
    store.ensure_schema()
    with store.engine.begin() as conn:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(RuntimeError, match="newer than this Nightwatch"):
        store.ensure_schema()
