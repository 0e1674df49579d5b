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


def _store_url(args: argparse.Namespace) -> str:
    from pipeline.graph import Outputs

    return Outputs.under(args.output, args.db_url).db_url


def _parse_value(text: str) -> object:
    """A value typed on the command line: YAML, so 0.7, true, [0, 12] and words all work."""
    import yaml

    return yaml.safe_load(text)


def _thresholds(args: argparse.Namespace, _beam_args: list[str]) -> int:
    import getpass

    from config.settings import load_config
    from pipeline.store import HotStore
    from pipeline.thresholds import ThresholdStore, with_cut_value, with_rule_condition

    config = load_config(args.config)
    store = HotStore(_store_url(args))
    store.ensure_schema()
    versions = ThresholdStore(store)
    filters = versions.latest("filters") or config.filters
    rules = versions.latest("classification") or config.classification
    if args.action == "show":
        print(f"filters in force: {filters.version}")
        for source in ("ztf", "rubin", "gcn"):
            for cut in filters.cuts_for(source):
                print(f"  {source}.{cut.name}: {cut.field} {cut.op} {cut.value!r}")
        print(f"rules in force: {rules.version}")
        for rule in rules.rules:
            conditions = ", ".join(f"{name} {cond.describe()}" for name, cond in rule.when.items())
            print(f"  {rule.name} -> {rule.event_class} ({rule.score}): {conditions}")
        for row in versions.history(args.history):
            print(f"  v{row['version']} {row['kind']} by {row['author']} at {row['created_at']}: {row['note'] or ''}")
        return 0
    if args.action == "set-cut":
        changed = with_cut_value(filters, args.source, args.name, _parse_value(args.value))
    else:
        changed = with_rule_condition(rules, args.name, args.field, args.op, _parse_value(args.value))
    author = args.author or getpass.getuser()
    version = versions.publish(
        changed,
        author=author,
        note=args.note
        or " ".join(
            str(part)
            for part in (
                args.action,
                getattr(args, "source", ""),
                args.name,
                getattr(args, "field", ""),
                getattr(args, "op", ""),
                args.value,
            )
            if part
        ),
    )
    print(
        f"published {'filters' if args.action == 'set-cut' else 'classification'} version {version}; "
        "running jobs pick it up within seconds"
    )
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

    thresholds = commands.add_parser(
        "thresholds",
        help="show or change filter cuts and classification rules live (versioned in the hot store)",
        description="Changes are validated, stored as a new version and picked up by running jobs within seconds.",
    )
    actions = thresholds.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the cuts and rules in force, and the latest versions")
    show.add_argument("--history", type=int, default=10, help="how many versions to list (default 10)")
    set_cut = actions.add_parser("set-cut", help="change a filter cut's value, e.g. set-cut ztf real_bogus 0.7")
    set_cut.add_argument("source", choices=["ztf", "rubin", "gcn"])
    set_cut.add_argument("name", help="the cut's name (see `thresholds show`)")
    set_cut.add_argument("value", help="the new value (YAML: 0.7, true, [0, 12])")
    set_rule = actions.add_parser(
        "set-rule", help="set a rule's condition, e.g. set-rule grb_localised pos_error_deg '<=' 3"
    )
    set_rule.add_argument("name", help="the rule's name (see `thresholds show`)")
    set_rule.add_argument("field")
    set_rule.add_argument("op", choices=["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between", "not_between"])
    set_rule.add_argument("value", help="the value (YAML)")
    for action in (show, set_cut, set_rule):
        action.add_argument("--output", default="out", help="output folder holding the hot store (default: out)")
        action.add_argument("--db-url", help="hot store URL (default: sqlite file OUTPUT/nightwatch.db)")
        action.add_argument("--config", help="folder of YAML configuration (default: the shipped config/)")
    for action in (set_cut, set_rule):
        action.add_argument("--author", help="who makes the change (default: the login name)")
        action.add_argument("--note", help="why (recorded with the version)")
    thresholds.set_defaults(handler=_thresholds)
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
