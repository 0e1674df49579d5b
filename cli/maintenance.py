"""`nightwatch maintenance announce|list|cancel`: the guide's maintenance windows, announced on their channels."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.common import open_in_force, store_options, when
from ops import maintenance
from ops.maintenance import active_window, list_windows
from ops.notify import Notifier, announcement_notice


def _announce(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    try:
        start = when(args.start, "--start")
        end = when(args.end, "--end") if args.end else None
        window = maintenance.announce(store, config.maintenance, args.as_user, args.type, start, end, args.reason)
        print(f"scheduled {window.describe()}")
        _tell(store, config, window, "announce")
        return 0
    except maintenance.MaintenanceError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _tell(store: Any, config: Any, window: Any, action: str) -> None:
    """Announce (or cancel) on the maintenance channels that have a destination."""
    notifier = Notifier(store, config)
    try:
        title = config.maintenance.types[window.kind].title if window.kind in config.maintenance.types else window.kind
        results = notifier.broadcast(announcement_notice(window, title, action), config.maintenance.announce_channels)
    finally:
        notifier.close()
    told = ", ".join(f"{row['channel']} {row['status']}" for row in results)
    print(f"announced on: {told or 'no channel (none has a destination: nightwatch notify status)'}")


def _list(args: argparse.Namespace, _beam: list[str]) -> int:
    _config, store = open_in_force(args)
    try:
        windows = list_windows(store, include_past=args.all)
        active = active_window(store)
    finally:
        store.close()
    for window in windows:
        state = "ACTIVE" if active and window.window_id == active.window_id else window.status
        print(f"{state:<10} {window.describe()} (by {window.announced_by})")
    if not windows:
        print("no maintenance window scheduled")
    return 0


def _cancel(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    try:
        window = maintenance.cancel(store, args.as_user, args.window_id, args.reason)
        print(f"cancelled {window.describe()}")
        _tell(store, config, window, "cancel")
        return 0
    except maintenance.MaintenanceError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def add_commands(commands: argparse._SubParsersAction) -> None:
    windows = commands.add_parser(
        "maintenance",
        help="maintenance windows: announce (checked against the guide's schedule), list, cancel",
        description="Types (config/maintenance.yaml): rolling (any time), brief (Tuesday 10:00-14:00 UTC, 24 h "
        "notice), extended (Saturday 06:00-18:00 UTC, a week's notice). Non-critical pages are silenced meanwhile.",
    )
    actions = windows.add_subparsers(dest="action", required=True, metavar="ACTION")
    announce = actions.add_parser("announce", help="schedule and announce a window")
    announce.add_argument("--type", required=True, help="rolling | brief | extended")
    announce.add_argument("--start", required=True, help="ISO 8601, UTC if no zone")
    announce.add_argument("--end", help="default: the end of the type's hours (or default_duration_min)")
    announce.add_argument("--reason", required=True)
    announce.add_argument("--as", dest="as_user", required=True, help="your console user (Operator or above)")
    announce.set_defaults(handler=_announce)
    listing = actions.add_parser("list", help="windows not yet over (--all: every one)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(handler=_list)
    cancel = actions.add_parser("cancel", help="cancel a scheduled window")
    cancel.add_argument("window_id", type=int)
    cancel.add_argument("--reason", required=True)
    cancel.add_argument("--as", dest="as_user", required=True)
    cancel.set_defaults(handler=_cancel)
    for action in (announce, listing, cancel):
        store_options(action)
