"""`nightwatch run`: the batch pipeline over packet files or the simulator, here or on a production runner.

Also the production runners' options (`--runner dataflow|flink ...`), which `stream` shares.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from cli.common import Parser, deprecated_alias, outputs
from config.settings import load_config

# pipeline.launch only plans runner options at import time; it imports Beam when a job is submitted.
from pipeline.launch import RunnerPlan, add_runner_options, plan_runner, submit


def runner_options(command: Parser, with_project: bool = True) -> None:
    """--runner dataflow|flink and what each needs; Beam's own spellings of them still work, deprecated."""
    add_runner_options(command, with_project=with_project)
    for option in ("--temp-location", "--setup-file", "--flink-master"):
        deprecated_alias(command, "--" + option[2:].replace("-", "_"), option)


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    # Beam is imported only by the commands that run a job: the others start fast.
    from pipeline.batch import run, write_summary_json

    # A night has no corrupt packets unless asked for (the guide's error rate is under 0.1%).
    bad_fraction = args.bad_fraction if args.bad_fraction is not None else (0.0 if args.night else 0.01)
    argv = [f"--output={args.output}", f"--seed={args.seed}", f"--bad_fraction={bad_fraction}"]
    if args.night:
        argv.append("--night")
    if args.input:
        argv.append(f"--input={args.input}")
    else:
        argv.append(f"--simulate={args.simulate}")
    for flag, value in (
        ("db_url", args.db_url),
        ("config_dir", args.config),
        ("mix", args.mix),
        ("run_id", args.run_id),
    ):
        if value:
            argv.append(f"--{flag}={value}")
    plan = plan_runner(args, streaming=False)
    if plan.kind not in ("local", "dask"):
        return _submit_batch(args, plan, beam_args)
    beam_args = plan.beam_args + beam_args  # a Dask cluster writes where this process can read: a summary too
    what = f"packet files {args.input!r}" if args.input else f"{args.simulate} simulated packets"
    print(f"nightwatch: processing {what} -> {args.output}", file=sys.stderr, flush=True)
    summary = run(argv + beam_args)
    print(summary.table())
    if summary.top_alerts:
        print("top alerts of this run:")
        for line in summary.top_alerts:
            print(f"  {line}")
    if args.summary_json:
        write_summary_json(summary, args.summary_json)
        print(f"summary written to {args.summary_json}")
    return 0 if summary.ok else 1


def _submit_batch(args: argparse.Namespace, plan: RunnerPlan, beam_args: list[str]) -> int:
    from pipeline.graph import build_pipeline, read_packets  # Beam: see _run

    config = load_config(args.config)
    run_id = args.run_id or "production-batch"
    where = outputs(args)

    def build(p) -> None:  # noqa: ANN001 - a beam.Pipeline
        build_pipeline(read_packets(p, args.input, args.simulate, seed=args.seed), config, where, run_id)

    print(submit(dataclasses.replace(plan, beam_args=plan.beam_args + beam_args), build))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run the batch pipeline over packet files or the built-in simulator",
        description="Decode, filter, classify and route packets; write the hot store, warm and archive tiers. "
        "Unknown options are passed to Beam (e.g. --runner=DataflowRunner --project=...).",
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("--input", help="glob of packet files, e.g. 'data/**/*.avro' (quote it)")
    source.add_argument("--simulate", type=int, default=500, help="simulated packets when no --input (default 500)")
    run.add_argument("--output", default="out", help="output folder or gs:// root (default: out)")
    run.add_argument("--db-url", help="hot store URL (default: sqlite file OUTPUT/nightwatch.db)")
    run.add_argument("--config", help="folder of YAML configuration (default: the shipped config/)")
    run.add_argument("--summary-json", help="also write the run summary as JSON here")
    run.add_argument("--mix", help="simulator mix, e.g. ztf=0.6,rubin=0.35,gcn=0.05")
    run.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    run.add_argument(
        "--bad-fraction",
        type=float,
        default=None,
        help="share of corrupt simulated packets (default 0.01; 0 with --night)",
    )
    run.add_argument(
        "--night",
        action="store_true",
        help="simulate a night: sources in the proportions of their configured rates (config/sources.yaml), event "
        "times spread at those rates, a real night's classes (a handful of alerts)",
    )
    run.add_argument("--run-id", help="name of this run (default: generated)")
    for old, preferred in (
        ("--db_url", "--db-url"),
        ("--config_dir", "--config"),
        ("--bad_fraction", "--bad-fraction"),
        ("--run_id", "--run-id"),
    ):
        deprecated_alias(run, old, preferred)
    runner_options(run)
    run.set_defaults(handler=_run)
