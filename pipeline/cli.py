"""The `nightwatch` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from config.settings import ConfigError


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.run import run, write_summary_json

    argv = [f"--output={args.output}", f"--seed={args.seed}", f"--bad_fraction={args.bad_fraction}"]
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


def _simulate(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from pipeline.simulator import generate_packets, parse_mix, write_packets

    mix = parse_mix(args.mix) if args.mix else None
    packets = generate_packets(
        args.count, seed=args.seed, mix=mix, bad_fraction=args.bad_fraction, rubin_wire=args.rubin_wire
    )
    written = write_packets(packets, Path(args.output))
    print(f"wrote {written} packets to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nightwatch",
        description="Nightwatch: ingest, classify, route and archive astronomical event packets.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    run.add_argument("--bad-fraction", type=float, default=0.01, help="share of corrupt simulated packets")
    run.add_argument("--run-id", help="name of this run (default: generated)")
    run.set_defaults(handler=_run)

    simulate = commands.add_parser("simulate", help="write simulated packets in the real formats to a folder")
    simulate.add_argument("--count", type=int, default=100, help="how many packets (default 100)")
    simulate.add_argument("--output", required=True, help="folder to write packet files into")
    simulate.add_argument("--mix", help="source mix, e.g. ztf=0.6,rubin=0.35,gcn=0.05")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--bad-fraction", type=float, default=0.0, help="share of deliberately corrupt packets")
    simulate.add_argument("--rubin-wire", choices=["container", "confluent", "both"], default="container")
    simulate.set_defaults(handler=_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if args.command != "run" and beam_args:
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    # Importing Beam installs a root handler, hence force=True; our own progress lines are INFO.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", force=True)
    logging.getLogger("nightwatch").setLevel(logging.INFO)
    try:
        return args.handler(args, beam_args)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"nightwatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
