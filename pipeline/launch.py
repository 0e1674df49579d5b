"""Production runners: the options Dataflow and Flink need, checked before anything is submitted.

`nightwatch run|stream --runner dataflow|flink ...` turns friendly options into Beam's, refuses a job
that lacks what its runner needs (with the missing option named), and `--dry-run` builds the whole graph
and validates the options without submitting: Dataflow translates it offline (`dry_run=True`); Flink's
graph is translated to the portable representation and its Kafka sources are configured, but their
expansion needs Java and Beam's expansion service, which happen at submission.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import apache_beam as beam

_GCS_PATH = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,61}[a-z0-9](/.*)?$")
REPO_SETUP = Path(__file__).resolve().parents[1] / "setup.py"
RUNNERS = {
    "local": None,
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "dask": "pipeline.runners.dask.runner.NightwatchDaskRunner",  # batch and replay only
}


def add_runner_options(parser: argparse.ArgumentParser, with_project: bool = True) -> None:
    group = parser.add_argument_group("production runners (--runner dataflow|flink)")
    group.add_argument("--runner", choices=list(RUNNERS), default="local", help="where to run (default: local)")
    group.add_argument("--dry-run", action="store_true", help="build the graph and validate options; submit nothing")
    if with_project:
        group.add_argument("--project", help="Dataflow: GCP project")
    group.add_argument("--region", help="Dataflow: region, e.g. europe-west1")
    group.add_argument("--temp-location", help="Dataflow: gs:// folder for temporary files")
    group.add_argument("--setup-file", default=str(REPO_SETUP), help="Dataflow: setup.py installed on workers")
    group.add_argument("--max-workers", type=int, default=20, help="Dataflow: autoscaling ceiling (default 20)")
    group.add_argument("--no-streaming-engine", action="store_true", help="Dataflow: without Streaming Engine")
    group.add_argument("--flink-master", help="Flink: JobManager address host:port")
    group.add_argument("--parallelism", type=int, default=4, help="Flink: parallelism (default 4)")
    group.add_argument("--kafka-bootstrap", help="Flink: Kafka bootstrap servers, host:port[,host:port]")
    group.add_argument(
        "--dask-scheduler",
        help="Dask (batch, replay): the dask.distributed scheduler, tcp://HOST:8786 (default: a local cluster of "
        "--dask-workers processes for the run)",
    )
    group.add_argument("--dask-workers", type=int, default=2, help="Dask: workers of the local cluster (default 2)")


@dataclass(frozen=True)
class RunnerPlan:
    kind: str
    beam_args: list[str]
    dry_run: bool
    kafka_bootstrap: str | None = None


class RunnerOptionsError(ValueError):
    """A production runner was asked for without an option it needs."""


def plan_runner(args: argparse.Namespace, streaming: bool) -> RunnerPlan:
    kind = args.runner
    if kind == "local":
        if args.dry_run:
            raise RunnerOptionsError("--dry-run is for --runner dataflow|flink")
        return RunnerPlan(kind, [], False)
    if kind == "dask":
        if streaming:
            raise RunnerOptionsError("--runner dask runs batch and replay jobs only (Dask bags are bounded)")
        if args.dry_run:
            raise RunnerOptionsError("--dry-run is for --runner dataflow|flink")
        beam_args = [f"--runner={RUNNERS['dask']}", f"--direct_num_workers={args.dask_workers}"]
        if args.dask_scheduler:
            beam_args.append(f"--dask_client_address={args.dask_scheduler}")
        return RunnerPlan(kind, beam_args, False)
    missing: list[str] = []
    if kind == "dataflow":
        for option, value in (
            ("--project", args.project),
            ("--region", args.region),
            ("--temp-location", args.temp_location),
        ):
            if not value:
                missing.append(option)
        if args.temp_location and not _GCS_PATH.match(args.temp_location):
            # Beam would otherwise try to create a default bucket, which needs the network and credentials.
            raise RunnerOptionsError(
                f"--temp-location must be gs://BUCKET/path with a valid bucket name (3-63 characters), "
                f"not {args.temp_location!r}"
            )
        if missing:
            raise RunnerOptionsError(f"--runner dataflow needs {', '.join(missing)}")
        beam_args = [
            "--runner=DataflowRunner",
            f"--project={args.project}",
            f"--region={args.region}",
            f"--temp_location={args.temp_location}",
            f"--setup_file={args.setup_file}",
            "--autoscaling_algorithm=THROUGHPUT_BASED",
            f"--max_num_workers={args.max_workers}",
        ]
        if streaming:
            beam_args.append("--streaming")
            if not args.no_streaming_engine:
                beam_args.append("--enable_streaming_engine")
        if args.dry_run:
            beam_args.append("--dry_run=True")
        return RunnerPlan(kind, beam_args, args.dry_run)
    if not args.flink_master:
        missing.append("--flink-master")
    if streaming and not args.kafka_bootstrap:
        missing.append("--kafka-bootstrap")
    if missing:
        raise RunnerOptionsError(f"--runner flink needs {', '.join(missing)}")
    beam_args = [
        "--runner=FlinkRunner",
        f"--flink_master={args.flink_master}",
        f"--parallelism={args.parallelism}",
        "--environment_type=DOCKER",
        "--job_server_timeout=60",  # an unreachable job endpoint otherwise hangs for 300 s
    ]
    if streaming:
        beam_args.append("--streaming")
    return RunnerPlan(kind, beam_args, args.dry_run, args.kafka_bootstrap)


def check_options(plan: RunnerPlan) -> None:
    """Beam's own validation of Flink's options. (For Dataflow it would reach for Cloud Storage; the checks in
    `plan_runner` and the offline translation of a dry run stand in for it.)"""
    if plan.kind != "flink":
        return
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners import create_runner

    options = PipelineOptions(plan.beam_args)
    runner = create_runner(RUNNERS[plan.kind])
    errors = PipelineOptionsValidator(options, runner).validate()
    if errors:
        raise RunnerOptionsError("; ".join(errors))


def submit(plan: RunnerPlan, build: Callable[[beam.Pipeline], None]) -> str:
    """Build the graph with `build` and submit it to the runner (or, for a dry run, only translate it)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    check_options(plan)
    options = PipelineOptions(plan.beam_args)
    if plan.kind == "flink" and plan.dry_run:
        # Translating to the portable graph is what the Flink job server receives; nothing is contacted.
        p = beam.Pipeline(runner="DirectRunner", options=options)
        build(p)
        proto = p.to_runner_api()
        return (
            f"dry run: Flink graph of {len(proto.components.transforms)} transforms translated, options valid; "
            "Kafka sources configured (their expansion needs Java and Beam's expansion service at submission); "
            "nothing submitted"
        )
    p = beam.Pipeline(options=options)
    build(p)
    result = p.run()
    if plan.dry_run:
        return (
            f"dry run: {plan.kind} graph of {len(p.to_runner_api().components.transforms)} transforms translated "
            "and options valid; nothing submitted"
        )
    job = getattr(result, "job_id", lambda: None)
    return f"submitted to {plan.kind}: job {job() if callable(job) else job}; state {result.state}"
