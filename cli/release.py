"""`nightwatch release register|shadow|diff|canary|promote|rollback|list`: new cuts or rules, live, no restart.

Each state change names the console user doing it (`--as`): the role is checked and the change audited
(ops/releases.py). Running jobs follow the hot store within seconds; every event records the version that
decided it. Exit codes: 0 done, 1 a check failed (the injection test, a canary's watch), 2 refused or misused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from cli.common import EXIT_FAILURE, EXIT_OK, open_store, outputs, store_options
from cli.thresholds import OPERATORS, parse_value
from config.base import ConfigError
from config.settings import load_config
from ops import releases
from store.releases import KINDS, ReleaseStore
from store.thresholds import with_cut_value, with_rule_condition


def _candidate(args: argparse.Namespace, store: Any, config: Any) -> Any:
    """The release's document: a whole YAML file, or the version in force with one change."""
    filters, rules = releases.in_force(store, config)
    if args.file:
        model = KINDS[args.kind]
        try:
            return model.model_validate(yaml.safe_load(Path(args.file).read_text(encoding="utf-8")))
        except ValueError as exc:
            raise ConfigError(f"{args.file}: not a valid {args.kind} document: {exc}") from exc
    if args.set_rule:
        if args.kind != "classification":
            raise ValueError("--set-rule changes classification rules: use kind `classification`")
        name, field, op, value = args.set_rule
        if op not in OPERATORS:
            raise ValueError(f"--set-rule: operator {op!r} is not one of {' '.join(OPERATORS)}")
        return with_rule_condition(rules, name, field, op, parse_value(value))
    if args.set_cut:
        if args.kind != "filters":
            raise ValueError("--set-cut changes filter cuts: use kind `filters`")
        source, name, value = args.set_cut
        return with_cut_value(filters, source, name, parse_value(value))
    raise ValueError("give the release's document: --file PATH, --set-rule or --set-cut")


def _print_report(report: dict[str, Any], limit: int) -> None:
    print(f"release {report['release_id']} ({report['label']}) against {report['in_force']}")
    print(f"replayed: {report['replayed_from']}: {report['considered']} events, {report['changed_count']} change")
    print(f"{'class':<12}{'in force':>9}{'release':>9}")
    for name, counts in report["per_class"].items():
        print(f"{name:<12}{counts['before']:>9}{counts['after']:>9}")
    for transition, count in report["transitions"].items():
        print(f"  {transition}: {count}")
    for change in report["changed"][:limit]:
        print(f"  {change['event']} ({change['source']}): {change['before']} -> {change['after']}")
    if report["changed_count"] > limit:
        print(f"  ... and {report['changed_count'] - limit} more (--limit, --json)")
    check = report["injection"]
    recall = "not measured" if check["critical_recall"] is None else f"{check['critical_recall']:.1%}"
    print(
        f"injection set: critical recall {recall} (floor {check['floor']:.0%}): {'PASS' if check['passed'] else 'FAIL'}"
    )
    live = report.get("live")
    if live is not None:
        print(f"live shadow so far: {live['considered']} events decided beside, {live['changed_count']} differ")
        for transition, count in live["transitions"].items():
            print(f"  {transition}: {count}")


def _release(args: argparse.Namespace, _beam_args: list[str]) -> int:
    config = load_config(args.config)
    store = open_store(args)
    try:
        return ACTIONS[args.action](args, store, config)
    finally:
        store.close()


def _register(args: argparse.Namespace, store: Any, config: Any) -> int:
    release_id = releases.register(store, args.as_user, _candidate(args, store, config), args.notes)
    release = ReleaseStore(store).get(release_id)
    print(f"registered release {release_id}: {args.kind} {release.label} by {args.as_user}")
    print(f"next: nightwatch release shadow {release_id} --as {args.as_user}")
    return EXIT_OK


def _shadow(args: argparse.Namespace, store: Any, config: Any) -> int:
    report = releases.shadow(store, args.as_user, args.release_id, config, outputs(args), args.replay_from)
    print(json.dumps(report, indent=2, default=str)) if args.json else _print_report(report, args.limit)
    print(f"release {args.release_id} in shadow: running jobs record its decisions beside theirs", file=sys.stderr)
    return EXIT_OK if report["injection"]["passed"] else EXIT_FAILURE


def _diff(args: argparse.Namespace, store: Any, config: Any) -> int:
    release = ReleaseStore(store).get(args.release_id)
    if release is None:
        raise ValueError(f"no release {args.release_id}; see `nightwatch release list`")
    if release.report is None:
        raise ValueError(f"release {args.release_id} has no shadow report yet: nightwatch release shadow ID --as USER")
    report = {**release.report, "live": releases.live_shadow(store, release)}
    print(json.dumps(report, indent=2, default=str)) if args.json else _print_report(report, args.limit)
    return EXIT_OK


def _canary(args: argparse.Namespace, store: Any, config: Any) -> int:
    check = releases.canary(store, args.as_user, args.release_id, config, args.share)
    release = ReleaseStore(store).get(args.release_id)
    print(f"release {args.release_id} in canary on {release.share:.0%} of events; {check.line()}")
    if args.watch is None:
        return EXIT_OK
    result = releases.watch_canary(
        store, args.release_id, config, args.watch or None, progress=lambda c: print(c.line(), flush=True)
    )
    if not result.passed:
        print(f"canary ended automatically: {'; '.join(result.problems)}")
        return EXIT_FAILURE
    print(f"canary watched: checks passed; promote with: nightwatch release promote {args.release_id} --as USER")
    return EXIT_OK


def _promote(args: argparse.Namespace, store: Any, config: Any) -> int:
    version = releases.promote(store, args.as_user, args.release_id, config, args.note or "")
    release = ReleaseStore(store).get(args.release_id)
    print(f"release {args.release_id} in force ({release.label}, thresholds version {version}); running jobs follow")
    return EXIT_OK


def _rollback(args: argparse.Namespace, store: Any, config: Any) -> int:
    now = releases.rollback(store, args.as_user, args.release_id, config, args.note or "")
    print(f"release {args.release_id} rolled back; deciding now: {now}")
    return EXIT_OK


def _list(args: argparse.Namespace, store: Any, config: Any) -> int:
    rows = [releases.describe(r) for r in ReleaseStore(store).list(args.kind)]
    filters, rules = releases.in_force(store, config)
    if args.json:
        print(json.dumps({"in_force": {"filters": filters.version, "classification": rules.version}, "releases": rows}))
        return EXIT_OK
    print(f"in force: filters {filters.version}, classification {rules.version}")
    for row in rows:
        status = row["status"] + (f" on {row['share']:.0%}" if row["share"] else "")
        print(
            f"  {row['release_id']:>4} {row['kind']:<15}{status:<16}{row['label']} "
            f"by {row['author']} at {row['created_at'][:19]}: {row['notes']}"
        )
    return EXIT_OK


ACTIONS = {
    "register": _register,
    "shadow": _shadow,
    "diff": _diff,
    "canary": _canary,
    "promote": _promote,
    "rollback": _rollback,
    "list": _list,
}


def add_commands(commands: argparse._SubParsersAction) -> None:
    release = commands.add_parser(
        "release",
        help="release new cuts or rules live: register, shadow, diff, canary, promote, rollback, list",
        description="Releases of the filter cuts or classification rules, with no downtime: running jobs follow "
        "within seconds and every event records the version that decided it.",
    )
    actions = release.add_subparsers(dest="action", required=True, metavar="ACTION")
    register = actions.add_parser("register", help="keep a new version (a YAML file, or the one in force changed)")
    register.add_argument("kind", choices=list(KINDS))
    source = register.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="a whole filters.yaml or classification.yaml")
    source.add_argument(
        "--set-rule", nargs=4, metavar=("RULE", "FIELD", "OP", "VALUE"), help="the rules in force, one condition set"
    )
    source.add_argument("--set-cut", nargs=3, metavar=("SOURCE", "CUT", "VALUE"), help="the cuts in force, one changed")
    register.add_argument("--notes", required=True, help="what changes and why (kept with the release)")
    shadow = actions.add_parser("shadow", help="put it in shadow and replay recent nights: the decision diff")
    shadow.add_argument("--from", dest="replay_from", choices=["archive", "hot"], default="archive")
    diff = actions.add_parser("diff", help="the shadow report again, with what running jobs recorded since")
    canary = actions.add_parser("canary", help="let it decide a share of events (refused if the injection test fails)")
    canary.add_argument("--share", type=float, help="share of events (default: releases.yaml canary_share)")
    canary.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=0.0,
        metavar="SECONDS",
        help="watch the recall and alert-volume checks (default releases.yaml watch_s); a failure ends the canary",
    )
    promote = actions.add_parser("promote", help="put it in force for every event (refused if recall < 99%%)")
    rollback = actions.add_parser("rollback", help="end its trial, or put back the version in force before it")
    listing = actions.add_parser("list", help="every release and the versions in force")
    listing.add_argument("--kind", choices=list(KINDS))
    for action in (shadow, diff, canary, promote, rollback):
        action.add_argument("release_id", type=int)
    for action in (shadow, diff):
        action.add_argument("--limit", type=int, default=20, help="changed events to print (default 20)")
    for action in (shadow, diff, listing):
        action.add_argument("--json", action="store_true")
    for action in (register, shadow, canary, promote, rollback):
        action.add_argument("--as", dest="as_user", required=True, help="your console user (role checked, audited)")
    for action in (promote, rollback):
        action.add_argument("--note", help="why (recorded in the audit log)")
    for action in (register, shadow, diff, canary, promote, rollback, listing):
        store_options(action)
    release.set_defaults(handler=_release)
