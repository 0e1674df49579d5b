"""Up to the production boundary: the graph translates for Dataflow, and setup.py ships what workers need."""

from __future__ import annotations

import subprocess
import sys
import tarfile

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.graph import build_pipeline, read_packets
from store.layout import Outputs
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_dataflow_dry_run_translates_the_whole_graph_with_the_setup_file(config):
    options = PipelineOptions(
        [
            "--runner=DataflowRunner",
            "--project=nightwatch-ci",
            "--region=europe-west1",
            "--temp_location=gs://nightwatch-ci/tmp",
            "--dry_run=True",
            f"--setup_file={REPO / 'setup.py'}",
        ]
    )
    p = beam.Pipeline(options=options)
    packets = read_packets(p, "gs://nightwatch-ci/packets/*", 0)
    outputs = Outputs(
        "postgresql://nightwatch@db/nightwatch",
        "gs://nightwatch-ci/warm",
        "gs://nightwatch-ci/archive",
        "gs://nightwatch-ci/dl",
    )
    build_pipeline(packets, config, outputs, "run-dry")
    p.run()  # translation and staging; raises on an untranslatable graph
    labels = {inner.full_label for outer in p.transforms_stack[0].parts for inner in outer.parts}
    steps = ("Decode", "Filter", "Classify", "Route", "StoreEvents", "WriteWarm", "WriteArchive", "Associate")
    assert {f"ProcessPackets/{step}" for step in steps} <= labels  # the one composite of every mode


def test_sdist_carries_configuration_and_schemas(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (archive,) = tmp_path.glob("nightwatch-*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(archive).getnames() if "/" in name}
    for needed in (
        "config/filters.yaml",
        "config/classification.yaml",
        "config/sources.yaml",
        "config/retention.yaml",
        "devtools/simulator/schemas/ztf/alert.avsc",
        "transforms/route.py",
        "store/migrations/env.py",
        "store/migrations/script.py.mako",
        "store/migrations/versions/0001_baseline.py",
        "setup.py",
    ):
        assert needed in names, needed
