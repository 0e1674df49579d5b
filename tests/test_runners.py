"""Production runners up to the boundary: options checked, graphs built and translated, nothing submitted."""

from __future__ import annotations

import pytest

from cli.main import main

DATAFLOW = [
    "--runner",
    "dataflow",
    "--project",
    "nightwatch-prod",
    "--region",
    "europe-west1",
    "--temp-location",
    "gs://nightwatch-prod/tmp",
]
REMOTE = ["--output", "gs://nightwatch-prod/out", "--db-url", "postgresql://nightwatch@db/nightwatch"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "--runner", "dataflow", "--project", "p"], "needs --region, --temp-location"),
        (["run", *DATAFLOW[:-1], "gs://x/tmp"], "valid bucket name"),
        (["stream", "--runner", "flink"], "needs --flink-master, --kafka-bootstrap"),
        (["run", "--dry-run"], "--dry-run is for --runner dataflow|flink"),
        (["run", "--runner", "dataflow", *DATAFLOW[2:], "--output", "gs://nightwatch-prod/out"], "give the hot store"),
    ],
)
def test_missing_or_bad_runner_options_are_named(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_dataflow_dry_runs_translate_batch_and_streaming_graphs(capsys):
    assert main(["run", *DATAFLOW, *REMOTE, "--input", "gs://nightwatch-prod/packets/*", "--dry-run"]) == 0
    batch = capsys.readouterr().out
    assert main(["stream", *DATAFLOW, *REMOTE, "--dry-run"]) == 0
    stream = capsys.readouterr().out
    assert "dry run: dataflow graph of" in batch and "nothing submitted" in batch
    transforms = [int(text.split("graph of ")[1].split()[0]) for text in (batch, stream)]
    assert transforms[1] > transforms[0] > 20  # streaming adds metrics, association, alerts out


def test_flink_dry_run_translates_the_portable_graph_with_kafka_sources_configured(tmp_path, capsys):
    argv = [
        "stream",
        "--runner",
        "flink",
        "--flink-master",
        "flink-jobmanager:8081",
        "--kafka-bootstrap",
        "kafka:9092",
        "--output",
        str(tmp_path),
        "--dry-run",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Flink graph of" in out and "Kafka sources configured" in out
