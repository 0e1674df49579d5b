"""The local streaming runner sets each DoFn up once per step and thread, not once per bundle."""

from __future__ import annotations

import threading
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream

from pipeline.runners.local import restore_local_runner
from pipeline.runners.local.dofns import reuse_local_dofns

CALLS: Counter[str] = Counter()
LOCK = threading.Lock()


class CountingDoFn(beam.DoFn):
    def setup(self) -> None:
        with LOCK:
            CALLS["setup"] += 1

    def start_bundle(self) -> None:
        with LOCK:
            CALLS["bundles"] += 1

    def process(self, element: int):
        yield element

    def teardown(self) -> None:
        with LOCK:
            CALLS["teardown"] += 1


@pytest.fixture(autouse=True)
def stock_local_runner():
    restore_local_runner()
    yield
    restore_local_runner()


def run_many_bundles() -> None:
    stream = test_stream.TestStream()
    for i in range(12):  # each watermark step ends a bundle
        stream = stream.add_elements([i]).advance_watermark_to(i + 1)
    options = PipelineOptions(runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as p:
        p | stream | beam.ParDo(CountingDoFn())


def test_setup_once_per_thread_and_teardown_at_the_end():
    CALLS.clear()
    run_many_bundles()
    per_bundle = dict(CALLS)
    assert per_bundle["setup"] == per_bundle["bundles"] >= 12  # Beam's local runner: setup at every bundle

    CALLS.clear()
    with reuse_local_dofns():
        run_many_bundles()
        assert CALLS["teardown"] == 0
    assert CALLS["bundles"] >= 12
    assert 1 <= CALLS["setup"] <= 4  # one per executor thread that ran the step
    assert CALLS["teardown"] == CALLS["setup"]  # all released when the job ends

    CALLS.clear()
    run_many_bundles()  # outside the context the runner is as Beam ships it
    assert CALLS["setup"] == CALLS["bundles"]
