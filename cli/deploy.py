"""`nightwatch deploy`: the guide's deployment procedure for the streaming job (ops/deploy.py).

Locally it runs end to end on the Pub/Sub emulator ($PUBSUB_EMULATOR_HOST) with a staging and a production job;
for Dataflow and Flink `--dry-run` prints each step's exact commands, and without it runs them in order.
Exit codes: 0 deployed, 1 a step failed (and what was deployed was rolled back), 2 refused or misused.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from access.accounts import acting
from cli.common import EXIT_FAILURE, EXIT_OK, open_store, store_options
from config.settings import load_config
from devtools.pubsub import EMULATOR_ENV
from ops import deploy
from ops.procedure import Outcome, Procedure

REPO = Path(__file__).resolve().parents[1]


def graph_steps(config: Any, project: str) -> list[str]:
    """Every step name of the streaming graph this code builds (what Dataflow matches an update against)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.pipeline import PipelineVisitor

    from pipeline.streaming import build_streaming_pipeline
    from store.layout import Outputs

    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    build_streaming_pipeline(pipeline, config, Outputs.under("out", None), "graph", project)
    names: list[str] = []

    class Names(PipelineVisitor):
        def enter_composite_transform(self, node: Any) -> None:
            if node.full_label:
                names.append(node.full_label)

        def visit_transform(self, node: Any) -> None:
            names.append(node.full_label)

    pipeline.visit(Names())
    return names


def _deploy(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    if args.tests_command:
        config = config.model_copy(
            update={"deploy": config.deploy.model_copy(update={"tests_command": shlex.split(args.tests_command)})}
        )
    if args.settle is not None:
        config = config.model_copy(update={"deploy": config.deploy.model_copy(update={"settle_s": args.settle})})
    if args.target == "local":
        return _local(args, config)
    return _production(args, config)


def _local(args: argparse.Namespace, config: Any) -> int:
    if args.dry_run:
        raise ValueError("--dry-run is for --target dataflow|flink; a local deployment runs for real")
    if not os.environ.get(EMULATOR_ENV):
        raise ValueError(
            f"a local deployment needs a running Pub/Sub emulator: start one (make emulator) and set {EMULATOR_ENV}"
        )
    store = open_store(args)
    try:
        plan = deploy.LocalPlan(
            config_dir=args.config,
            output=args.output,
            staging_output=args.staging_output,
            project=args.project or config.streaming.pubsub.project,
            jobs_dir=Path(args.jobs_dir or Path(args.output) / "jobs"),
            repo=REPO,
        )
        run = deploy.deploy_local(
            store, config, args.as_user, plan, args.reason, progress=lambda line: print(line, flush=True)
        )
    finally:
        store.close()
    return EXIT_FAILURE if run.failed else EXIT_OK


def _production(args: argparse.Namespace, config: Any) -> int:
    project = args.project or config.streaming.pubsub.project
    config_dir = args.config or "config"
    incompatible, why = args.graph == "incompatible", "--graph incompatible"
    if args.graph == "auto":
        if args.previous_steps:
            previous = json.loads(Path(args.previous_steps).read_text())
            mapping = config.deploy.dataflow.transform_name_mapping
            missing = deploy.incompatible_steps(previous, graph_steps(config, project), mapping)
            incompatible = bool(missing) and args.target == "dataflow"
            why = (
                f"{len(missing)} step(s) of the running job unmapped (e.g. {', '.join(missing[:3])})"
                if missing
                else ("every step of the running job kept or mapped")
            )
        else:
            why = "no --previous-steps: assumed compatible"
    commands = deploy.production_commands(args.target, config, config_dir, incompatible, args.previous_config)
    how = {"dataflow": "drain and replace" if incompatible else "update in place", "flink": "savepoint, stop, start"}
    print(f"deploy to {args.target}: {how[args.target]} ({why})")
    if args.save_steps:
        Path(args.save_steps).write_text(json.dumps(graph_steps(config, project), indent=1))
    if args.dry_run:
        for step, lines in commands.items():
            print(f"{step}:")
            for line in lines:
                print(f"  {shlex.join(line)}")
        return EXIT_OK
    store = open_store(args)
    try:
        acting(store, args.as_user, deploy.PERMISSION)
        run = Procedure(store, "deploy", args.as_user, details={"target": args.target, "commands": commands})
        for step, lines in commands.items():
            if step.startswith("roll back"):
                continue
            run.step(step, lambda lines=lines: _run_commands(lines))
        if run.failed:
            run.stop_on_failure = False
            run.step("roll back", lambda: _run_commands(commands["roll back (on failure)"]))
        run.finish()
    finally:
        store.close()
    return EXIT_FAILURE if run.failed else EXIT_OK


def _run_commands(lines: list[list[str]]) -> Outcome:
    for line in lines:
        done = subprocess.run(line, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["(no output)"]
            return Outcome(False, f"`{shlex.join(line)}` exited {done.returncode}: {last[0]}")
    return Outcome(True, "; ".join(shlex.join(line) for line in lines))


def add_commands(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "deploy",
        help="deploy the streaming job: tests, announce, staging, smoke test, production, watch, verify, rollback",
        description="The guide's deployment procedure. --target local runs it on the Pub/Sub emulator with a "
        "staging and a production job; dataflow and flink print (--dry-run) or run each step's commands.",
    )
    command.add_argument("--as", dest="as_user", required=True, help="your console user (Admin; audited)")
    command.add_argument("--target", choices=["local", "dataflow", "flink"], default="local")
    command.add_argument("--reason", default="deployment of the streaming job", help="for the maintenance notice")
    command.add_argument("--staging-output", default="out-staging", help="local: the staging job's output folder")
    command.add_argument("--jobs-dir", help="local: where the jobs' command lines and logs are kept (OUTPUT/jobs)")
    command.add_argument("--project", help="Pub/Sub project (default: streaming.yaml)")
    command.add_argument("--tests-command", help="the tests to run first (default: deploy.yaml tests_command)")
    command.add_argument("--settle", type=float, help="seconds to watch the panels (default: deploy.yaml settle_s)")
    command.add_argument("--dry-run", action="store_true", help="dataflow/flink: print each step's commands")
    command.add_argument(
        "--graph",
        choices=["auto", "compatible", "incompatible"],
        default="auto",
        help="dataflow: update in place (compatible) or drain and replace; auto compares with --previous-steps",
    )
    command.add_argument("--previous-steps", help="dataflow: the running job's step names (JSON, from --save-steps)")
    command.add_argument("--save-steps", help="write this graph's step names here (for the next deployment)")
    command.add_argument("--previous-config", help="the configuration folder to roll back to")
    store_options(command)
    command.set_defaults(handler=_deploy)
