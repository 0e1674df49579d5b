"""The hot store's schema: created and upgraded by Alembic (store/migrations), an older store adopted, migrated in
place where it can be, refused where it cannot; a newer store refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core.event import utcnow
from store import migrate
from store.hot import HotStore
from store.schema import SCHEMA_VERSION, audit_log, events, meta, metadata, runs


def revision(store: HotStore) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


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
    assert revision(store) == migrate.head()
    store.close()


def test_a_change_that_cannot_be_made_in_place_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    older_store(url, "event_class")  # a required column
    with pytest.raises(RuntimeError, match="event_class, which cannot be added in place"):
        HotStore(url).ensure_schema()


@pytest.mark.parametrize("made_by", ["alembic", "meta"])
def test_a_newer_store_is_refused(made_by, tmp_path):
    """Newer: at a revision this Nightwatch does not know, or a schema version above its own (what an older
    Nightwatch, which reads only `nightwatch_meta`, also refuses)."""
    store = HotStore(f"sqlite:///{tmp_path}/new.db")
    store.ensure_schema()
    with store.engine.begin() as conn:
        if made_by == "alembic":
            conn.execute(
                sa.text("UPDATE alembic_version SET version_num = :newer"), {"newer": f"{SCHEMA_VERSION + 1:04d}"}
            )
        else:
            conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(RuntimeError, match="newer than this Nightwatch"):
        store.ensure_schema()
    store.close()


def test_the_schema_version_is_the_head_revision():
    assert migrate.number(migrate.head()) == SCHEMA_VERSION


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migrations_make_exactly_the_schema(backend, tmp_path, request):
    """A new store upgraded to head has every table, column and index of store/schema.py, and no more."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path}/new.db"
    store = HotStore(url)
    assert store.ensure_schema() == []
    assert revision(store) == migrate.head()
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    with store.engine.begin() as conn:
        conn.execute(audit_log.insert().values(at=utcnow(), actor="test", action="check", target="audit_log"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(audit_log.delete())  # the audit log's triggers came too
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_made_before_alembic_is_adopted_without_losing_data(backend, tmp_path, request):
    """What the hand-written migrations made: every table, `schema_version` in nightwatch_meta, no alembic_version."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path}/old.db"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(meta.insert().values(key="schema_version", value="1"))
        conn.execute(runs.insert().values(run_id="before-alembic", started_at=utcnow(), summary="{}"))
    engine.dispose()
    store = HotStore(url)
    assert revision(store) is None
    assert store.ensure_schema() == []
    assert revision(store) == migrate.head()
    assert store.count(runs, run_id="before-alembic") == 1
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        # Adopted at version 1, then brought to head by the later revisions (their steps found done already).
        assert conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar() == str(
            SCHEMA_VERSION
        )
    store.close()
