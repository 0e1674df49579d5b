"""`nightwatch thresholds show|set-cut|set-rule`: filter cuts and classification rules, changed live.

A change is validated, stored in the hot store as a new version and picked up by running jobs within seconds.
"""

from __future__ import annotations

import argparse
import getpass

import yaml

from cli.common import open_store, store_options
from config.settings import NightwatchConfig, load_config
from store.thresholds import ThresholdStore, with_cut_value, with_rule_condition

OPERATORS = ["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between", "not_between"]


def parse_value(text: str) -> object:
    """A value typed on the command line: YAML, so 0.7, true, [0, 12] and words all work."""
    return yaml.safe_load(text)


def _thresholds(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    versions = ThresholdStore(open_store(args))
    try:
        return _show(args, versions, config) if args.action == "show" else _change(args, versions, config)
    finally:
        versions.close()


def _show(args: argparse.Namespace, versions: ThresholdStore, config: NightwatchConfig) -> int:
    filters = versions.latest("filters") or config.filters
    rules = versions.latest("classification") or config.classification
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


def _change(args: argparse.Namespace, versions: ThresholdStore, config: NightwatchConfig) -> int:
    filters = versions.latest("filters") or config.filters
    rules = versions.latest("classification") or config.classification
    if args.action == "set-cut":
        changed = with_cut_value(filters, args.source, args.name, parse_value(args.value))
    else:
        changed = with_rule_condition(rules, args.name, args.field, args.op, parse_value(args.value))
    parts = (
        args.action,
        getattr(args, "source", ""),
        args.name,
        getattr(args, "field", ""),
        getattr(args, "op", ""),
        args.value,
    )
    version = versions.publish(
        changed,
        author=args.author or getpass.getuser(),
        note=args.note or " ".join(str(part) for part in parts if part),
    )
    print(
        f"published {'filters' if args.action == 'set-cut' else 'classification'} version {version}; "
        "running jobs pick it up within seconds"
    )
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
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
    set_rule.add_argument("op", choices=OPERATORS)
    set_rule.add_argument("value", help="the value (YAML)")
    for action in (show, set_cut, set_rule):
        store_options(action)
    for action in (set_cut, set_rule):
        action.add_argument("--author", help="who makes the change (default: the login name)")
        action.add_argument("--note", help="why (recorded with the version)")
    thresholds.set_defaults(handler=_thresholds)
