"""Shared fixtures: the real sample packets, the shipped configuration, a pinned Beam runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from config import load_config
from core.event import Packet

REPO = Path(__file__).resolve().parents[1]
# CI lays shared/ beside the clone; a developer's checkout has it at ../shared too.
DATA = Path(os.environ.get("NIGHTWATCH_SAMPLE_DATA", REPO.parent / "shared" / "data"))


def sample_files(pattern: str = "**/*") -> list[Path]:
    files = [
        path
        for path in sorted(DATA.glob(pattern))
        if path.is_file() and path.suffix in (".avro", ".json", ".xml") and "schemas" not in path.parts
    ]
    assert files, f"no sample packets under {DATA} matching {pattern}"
    return files


def packet_of(path: Path, **overrides) -> Packet:
    return Packet(payload=path.read_bytes(), origin=str(path), **overrides)


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture
def beam_pipeline():
    """A TestPipeline on the in-process batch runner (the default DirectRunner would try to fetch Prism)."""
    return TestPipeline(options=PipelineOptions(runner="FnApiRunner"), blocking=True)


@pytest.fixture
def store(tmp_path):
    """An empty hot store (SQLite) in the test's folder."""
    from store.hot import HotStore

    hot = HotStore(f"sqlite:///{tmp_path}/nightwatch.db")
    hot.ensure_schema()
    yield hot
    hot.close()


@pytest.fixture
def postgres_url():
    """A database of its own on the machine's PostgreSQL (127.0.0.1:5432, trust auth), dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    server = "postgresql+psycopg://postgres@127.0.0.1:5432"
    name = f"nightwatch_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{server}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"{server}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def simulated_night(folder: Path, count: int = 150) -> Path:
    """A real batch run over simulated packets: events, alerts, review queue, dead letters, archive."""
    from pipeline.batch import run

    summary = run([f"--simulate={count}", f"--output={folder}", "--run_id=console-test"])
    assert summary.ok, summary.table()
    return folder


@pytest.fixture(scope="session")
def night_template(tmp_path_factory) -> Path:
    """One simulated night for the whole session; tests work on copies of it (`copy_night`)."""
    return simulated_night(tmp_path_factory.mktemp("night"))


def copy_night(template: Path, target: Path) -> Path:
    """A private copy of the run's output, so each test changes its own store and archive."""
    import shutil

    shutil.copytree(template, target, dirs_exist_ok=True)
    return target


def window_rows(now, minutes=10, **overrides):
    """Stream metrics windows at the expected rates, normal unless overridden per source."""
    from datetime import timedelta

    expected_rates = {name: spec.expected_rate_per_min for name, spec in load_config().sources.sources.items()}
    rows = []
    for index in range(minutes):
        start = now - timedelta(minutes=minutes - index)
        for source, expected in expected_rates.items():
            received = round(expected)
            row = {
                "source": source,
                "window_start": start,
                "run_id": "stream-test",
                "window_end": start + timedelta(minutes=1),
                "night": "2026-11-26",
                "received": received,
                "stored": received,
                "dead_letters": 0,
                "alerts": 0,
                "late": 0,
                "rate_per_min": float(received),
                "expected_rate_per_min": expected,
                "rate_deviation": 0.0,
                "latency_p50_s": 2.0,
                "latency_p95_s": 5.0,
                "latency_p99_s": 8.0,
                "error_rate": 0.0,
                "queue_depth": 0,
                "updated_at": start + timedelta(minutes=1, seconds=5),
            }
            row.update(overrides.get(source, {}))
            rows.append(row)
    return rows


def service_key(db_url: str, role: str = "operator", name: str = "test-service") -> str:
    """A service account (access/identity.py) of `role` in the store at `db_url`, made directly as a database
    holder would; returns its API key. Commands that change state act with it through $NIGHTWATCH_API_KEY."""
    from access import accounts, apikeys
    from store.hot import HotStore

    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    hot = HotStore(db_url)
    hot.ensure_schema()
    if accounts.get_user(hot, name) is None:
        accounts.create_user_as_system(hot, "test", name, role, None, None)
    token, _ = apikeys.create_key(hot, "test", name, role, "tests")
    hot.close()
    return token


def act_as_service(monkeypatch, db_url: str, role: str = "operator", name: str = "test-service") -> str:
    """Let the commands a test runs act as a service account of `role` (sets $NIGHTWATCH_API_KEY)."""
    token = service_key(db_url, role, name)
    monkeypatch.setenv("NIGHTWATCH_API_KEY", token)
    return token
