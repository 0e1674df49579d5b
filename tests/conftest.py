"""Shared fixtures: the real sample packets, the shipped configuration, a pinned Beam runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from config import load_config
from pipeline.event import Packet

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
    from pipeline.store import HotStore

    hot = HotStore(f"sqlite:///{tmp_path}/nightwatch.db")
    hot.ensure_schema()
    yield hot
    hot.close()
