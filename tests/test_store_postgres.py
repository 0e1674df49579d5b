"""The hot store on the real PostgreSQL on this machine (127.0.0.1:5432, trust auth), as production runs it."""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.batch import run
from store.hot import HotStore
from store.schema import alerts, dead_letters, events, review_queue
from tests.conftest import DATA


def test_pipeline_on_postgres_matches_sqlite(postgres_url, tmp_path):
    glob = f"{DATA}/**/*"
    on_postgres = run([f"--input={glob}", f"--output={tmp_path / 'pg'}", f"--db_url={postgres_url}"])
    on_sqlite = run([f"--input={glob}", f"--output={tmp_path / 'lite'}"])
    assert on_postgres.accounted and on_postgres.by_class == on_sqlite.by_class
    postgres, sqlite = HotStore(postgres_url), HotStore(f"sqlite:///{tmp_path / 'lite'}/nightwatch.db")
    for table in (events, alerts, review_queue, dead_letters):
        assert postgres.count(table) == sqlite.count(table), table.name
    with postgres.engine.connect() as conn:
        payloads = conn.execute(sa.select(dead_letters.c.origin, dead_letters.c.payload)).all()
    for origin, payload in payloads:  # raw bytes kept exactly (bytea)
        assert open(origin, "rb").read() == payload
    # Idempotent on PostgreSQL too.
    again = run([f"--input={glob}", f"--output={tmp_path / 'pg'}", f"--db_url={postgres_url}"])
    assert again.count("events.new") == 0 and postgres.count(events) == sum(on_postgres.by_class.values())
    postgres.close()
