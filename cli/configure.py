"""`nightwatch config show|versions|set|rollback|history|restore`: the configuration in force, changed live.

The same documents as the console's Configuration page (ops/sysconfig.py): each change is validated, role-checked
(Admin and above), audited, stored as a new version that running jobs, `health`, the notifier and on-call pick up
within `streaming.thresholds.refresh_s`, and committed to the configuration's Git history (ops/confighistory.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from cli.common import open_store, store_options
from config.settings import load_config
from ops import confighistory, sysconfig
from store.configs import in_force


def _show(args: argparse.Namespace, _beam: list[str]) -> int:
    base, store = load_config(args.config), open_store(args)
    try:
        config = in_force(base, store)
        sysconfig.record_files(store, config)
        print(
            f"configuration in force: version {config.config_version or 'files'} (files fingerprint {base.fingerprint})"
        )
        kinds = [args.kind] if args.kind else list(sysconfig.REGISTRY)
        for kind in kinds:
            document = sysconfig.current(store, kind, base)
            origin = f"version {document.version} by {document.author}" if document.version else "the files"
            print(f"{kind}: {origin}" + (f" ({document.note})" if document.version else ""))
            if args.kind:
                print(yaml.safe_dump(document.data, sort_keys=False).rstrip())
        return 0
    finally:
        store.close()


def _versions(args: argparse.Namespace, _beam: list[str]) -> int:
    store = open_store(args)
    try:
        rows = sysconfig.history(store, args.kind, limit=args.limit)
    finally:
        store.close()
    for document in rows:
        print(
            f"v{document.version:<5} {document.created_at:%Y-%m-%d %H:%M:%S} UTC  {document.author:<12} {document.note}"
        )
    if not rows:
        print(f"no stored {args.kind} version: the configuration folder's file is in force")
    return 0


def _set(args: argparse.Namespace, _beam: list[str]) -> int:
    base, store = load_config(args.config), open_store(args)
    try:
        try:
            data = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{args.file}: cannot read YAML: {exc}") from None
        document = sysconfig.save(store, args.as_user, args.kind, data, args.reason, base)
    finally:
        store.close()
    print(f"{args.kind} version {document.version} in force (running jobs follow within their refresh interval)")
    return 0


def _rollback(args: argparse.Namespace, _beam: list[str]) -> int:
    base, store = load_config(args.config), open_store(args)
    try:
        document = sysconfig.rollback(store, args.as_user, args.kind, args.version, args.reason, base)
    finally:
        store.close()
    print(f"{args.kind} rolled back to version {args.version}: now in force as version {document.version}")
    return 0


def _history(args: argparse.Namespace, _beam: list[str]) -> int:
    base, store = load_config(args.config), open_store(args)
    try:
        sysconfig.record_files(store, in_force(base, store))
        changes = confighistory.history(store, args.limit)
        where = confighistory.history_dir(store)
    finally:
        store.close()
    if args.json:
        print(json.dumps([change.__dict__ for change in changes], indent=2, default=str))
        return 0
    print(f"configuration history: {where}")
    for change in changes:
        print(f"{change.commit[:12]}  {change.at:%Y-%m-%d %H:%M:%S} UTC  {change.author:<12} {change.message}")
        print(f"{'':14}changed: {', '.join(change.files)}")
    return 0


def _restore(args: argparse.Namespace, _beam: list[str]) -> int:
    base, store = load_config(args.config), open_store(args)
    try:
        full, stored = sysconfig.restore(store, args.as_user, args.commit, args.reason, base)
    finally:
        store.close()
    if not stored:
        print(f"the configuration of {full[:12]} is already in force: nothing stored")
        return 0
    print(f"restored {full[:12]}: " + ", ".join(f"{d.kind} version {d.version}" for d in stored))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser(
        "config",
        help="the configuration in force: show, versions, set, rollback, Git history, restore",
        description="Documents: " + ", ".join(sysconfig.REGISTRY) + ". Changes need the Admin role (--as USER), "
        "are audited, take effect in running jobs within streaming.thresholds.refresh_s, and are committed to the "
        "configuration's Git history.",
    )
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="which version of each document is in force (KIND: the document)")
    show.add_argument("kind", nargs="?", choices=list(sysconfig.REGISTRY))
    show.set_defaults(handler=_show)
    versions = actions.add_parser("versions", help="the stored versions of a document, newest first")
    versions.add_argument("kind", choices=list(sysconfig.REGISTRY))
    versions.add_argument("--limit", type=int, default=50)
    versions.set_defaults(handler=_versions)
    change = actions.add_parser("set", help="store a new version of a document from a YAML file")
    change.add_argument("kind", choices=list(sysconfig.REGISTRY))
    change.add_argument("file", help="the whole document, as YAML (nightwatch config show KIND > FILE to start)")
    back = actions.add_parser("rollback", help="put an earlier stored version back in force")
    back.add_argument("kind", choices=list(sysconfig.REGISTRY))
    back.add_argument("version", type=int)
    history = actions.add_parser("history", help="the Git history of the configuration in force")
    history.add_argument("--limit", type=int, default=30)
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=_history)
    restore = actions.add_parser("restore", help="put the configuration of a Git history commit back in force")
    restore.add_argument("commit", help="a commit id (or at least 4 characters of it) from `config history`")
    for action, handler in ((change, _set), (back, _rollback), (restore, _restore)):
        action.add_argument("--as", dest="as_user", required=True, help="your console user (Admin or above)")
        action.add_argument("--reason", required=True, help="what changes and why (audited, and the commit message)")
        action.set_defaults(handler=handler)
    for action in (show, versions, change, back, history, restore):
        store_options(action)
