"""Commands for notifications, the "Critical Alert Not Sent" runbook and on-call.

`nightwatch notify status|run|digest`, `nightwatch alerts check|send`, `nightwatch oncall now|handoff`
(`nightwatch maintenance` is cli/maintenance.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from access import audit
from cli.common import (
    acting_as,
    identity_options,
    metrics_option,
    open_in_force,
    serve_metrics,
    signed_in,
    store_options,
    system_actor,
    when,
)
from core import telemetry
from core.event import utcnow
from ops import statuspage
from ops.incidents.records import open_incidents
from ops.maintenance import active_window
from ops.notify import (
    FAILED,
    RETRYING,
    THROTTLED,
    Notifier,
    NotifierInForce,
    deliveries_for,
    send_by_hand,
    unsent_alerts,
)
from ops.oncall import describe_on_call, escalate_due, handoff, on_call
from ops.workers import notifier_status, record_beat, worker_id

RUNBOOK = """Runbook: Critical Alert Not Sent
  1. Check alert service status: is `nightwatch notify run` running? (overdue retries above say it is not)
  2. Check alert thresholds: nightwatch thresholds show
  3. Check notification channels: nightwatch notify status
  4. Manually send alert if critical: nightwatch alerts send ALERT_ID --as YOUR_USER
  5. Fix underlying issue (set the channel's environment variable, restart `notify run`, ...)
  6. Post-incident review: nightwatch oncall handoff; the audit log has every send and check"""


# --- notify ---------------------------------------------------------------------------------------------------


def _status(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    try:
        settings = config.notifications
        rows = deliveries_for(store)
        failing = [row for row in rows if row["status"] in (FAILED, RETRYING)]
        pending_digest = {row["alert_id"] for row in rows if row["status"] == THROTTLED and not row["digest_id"]}
        window = active_window(store)
        report = {
            "channels": {
                name: {"kind": spec.kind, "destination": "ok" if spec.destination() else f"none ({spec.missing()})"}
                for name, spec in settings.channels.items()
            },
            "levels": {level: policy.channels for level, policy in settings.levels.items()},
            "deliveries": dict(Counter(row["status"] for row in rows)),
            "failing": failing,
            "pending_digest": len(pending_digest),
            "maintenance": window.describe() if window else None,
        }
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            print("channel          kind        destination")
            for name, info in report["channels"].items():
                print(f"{name:<16} {info['kind']:<11} {info['destination']}")
            for level, channels in report["levels"].items():
                print(f"{level:<9} -> {', '.join(channels) or 'digest only'}")
            print(
                "deliveries       " + (", ".join(f"{k} {v}" for k, v in sorted(report["deliveries"].items())) or "none")
            )
            print(f"pending digest   {len(pending_digest)} alerts over the nightly budget")
            if window:
                print(f"maintenance      active: {window.describe()}")
            for row in failing:
                when = (
                    f", next attempt {row['next_attempt_at']:%Y-%m-%d %H:%M:%S} UTC" if row["next_attempt_at"] else ""
                )
                print(
                    f"FAILING {row['status']:<8} {row['alert_id']} on {row['channel']} ({row['action']}), "
                    f"attempt {row['attempt']}{when}: {row['error']}"
                )
        return 1 if failing else 0
    finally:
        store.close()


def _run(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    # Channels, levels, the budget and the on-call ladder in force, re-read each pass: no restart for a change.
    notifiers = NotifierInForce(store, config)
    stop = threading.Event()
    if not args.once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    # The delivery worker's heartbeat: `alerts check`, `workers` and the console tell a silent notifier from a
    # quiet one (Critical alert not sent, step 1: check alert service status).
    me, began, totals = worker_id("notifier"), utcnow(), Counter()

    def beat(state: str) -> None:
        try:
            record_beat(
                store,
                me,
                "notifier",
                state=state,
                started_at=began,
                processed=totals["sent"],
                errors=totals["failed"],
                throughput_per_s=totals["sent"] / max((utcnow() - began).total_seconds(), 1.0),
                detail={"passes": totals["passes"], "poll_s": config.notifications.poll_s},
            )
        except Exception as exc:  # noqa: BLE001 - a missed beat shows as stale; deliveries go on
            print(f"heartbeat not recorded: {exc}", file=sys.stderr)

    serve_metrics(args)
    try:
        while True:
            notifier = notifiers.get()
            config = notifier.config
            pending = notifier.notify_pending()  # the outbox: alerts stored, never notified (a crash)
            retried = notifier.send_due()
            escalated = escalate_due(store, config, notifier, utcnow())
            digests = notifier.digests_due()
            totals["passes"] += 1
            totals["sent"] += sum(1 for row in [*retried, *digests] if row["status"] == "delivered") + len(escalated)
            totals["failed"] += sum(1 for row in [*retried, *digests] if row["status"] == "failed")
            beat("running")
            telemetry.OUTBOX_PENDING.set(notifier.outbox.pending())
            telemetry.NOTIFY_HEARTBEAT.set(time.time())
            if pending or retried or escalated or digests or args.once:
                delivered = sum(1 for row in retried if row["status"] == "delivered")
                print(
                    f"{utcnow():%Y-%m-%d %H:%M:%S} pending alerts notified {len(pending)}, "
                    f"retries {len(retried)} ({delivered} delivered), "
                    f"escalation steps {len(escalated)}, digest deliveries {len(digests)}",
                    flush=True,
                )
            if args.once or stop.wait(config.notifications.poll_s):
                return 0
    finally:
        if not args.once:
            beat("stopped")
        notifiers.close()
        store.close()


def _digest(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    notifier = Notifier(store, config)
    try:
        actor = acting_as(args, store, "run_operations")
        notice, results = notifier.send_low_digest() if args.low else notifier.send_digest()
        if notice is None:
            print("nothing pending: no alert over the budget, no new review-queue item since the last digest")
            return 0
        audit.record(store, actor, "notify.digest", notice.title, None, {"sent": len(results)}, "cli")
        print(notice.title)
        print(notice.summary)
        if not results:
            print(
                f"no digest channel has a destination ({', '.join(config.notifications.digest.channels)}): "
                "see nightwatch notify status; the alerts stay pending"
            )
            return 1
        for row in results:
            print(f"  {row['channel']}: {row['status']}" + (f" ({row['error']})" if row["error"] else ""))
        return 0 if all(row["status"] == "delivered" for row in results) else 1
    finally:
        notifier.close()
        store.close()


# --- alerts: the Critical Alert Not Sent runbook --------------------------------------------------------------


def _check(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    try:
        actor = acting_as(args, store, "view_alerts") if args.as_user else system_actor()
        unsent = unsent_alerts(store)
        now = utcnow()
        overdue = [
            row
            for row in deliveries_for(store, statuses=(RETRYING,))
            if row["next_attempt_at"]
            and now - row["next_attempt_at"] > timedelta(seconds=3 * config.notifications.poll_s)
        ]
        audit.record(
            store,
            actor,
            "alerts.check",
            "alerts",
            None,
            {
                "unsent_critical": [u.alert.alert_id for u in unsent if u.alert and u.level == "CRITICAL"],
                "unsent_high": [u.alert.alert_id for u in unsent if u.alert and u.level == "HIGH"],
                "events_without_alert": [u.event_id for u in unsent if u.alert is None],
            },
            "cli",
        )
        # Step 1: check alert service status: is the delivery worker (`nightwatch notify run`) alive?
        service, latest = notifier_status(store, now)
        service_line = _service_line(service, latest)
        print(service_line)
        if not unsent:
            print(
                "every critical and significant event has its alert, and every unacknowledged CRITICAL and HIGH "
                "alert a delivered notification"
            )
            return 1 if service == "stale" else 0
        if service != "ok":
            print(f"likely cause: {service_line}")
        without = [u for u in unsent if u.alert is None]
        if without:
            print(
                f"{len(without)} critical/significant event(s) with NO ALERT at all (step 2: check alert thresholds "
                "and the pipeline's dead letters at the alerts stage):"
            )
            for item in without:
                print(f"  {item.level:<8} {item.event_id}  stored {item.at:%Y-%m-%d %H:%M} UTC  [no alert row]")
        undelivered = [u for u in unsent if u.alert is not None]
        if undelivered:
            print(f"{len(undelivered)} CRITICAL/HIGH alert(s) with no delivered notification:")
        for item in undelivered:
            alert = item.alert
            tried = deliveries_for(store, alert.alert_id)
            what = "; ".join(f"{r['channel']} {r['status']} ({r['error'] or '-'})" for r in tried) or "never tried"
            print(
                f"  {alert.level:<8} {alert.alert_id}  {alert.title}  created {alert.created_at:%Y-%m-%d %H:%M} UTC"
                f"  [{what}]"
            )
        if overdue:
            print(f"{len(overdue)} retries are overdue: `nightwatch notify run` does not seem to be running")
        print(
            "channels: "
            + ", ".join(
                f"{name} {'ok' if spec.destination() else f'has no destination ({spec.missing()})'}"
                for name, spec in config.notifications.channels.items()
            )
        )
        print(RUNBOOK)
        # Whom this runbook calls for (config/contacts.yaml, the runbook's `contacts:` in runbooks.yaml).
        spec = config.runbooks.runbooks["critical_alert_not_sent"]
        print("  contacts: " + "; ".join(config.contacts.describe(name) for name in spec.contacts))
        return 1
    finally:
        store.close()


def _service_line(service: str, latest: Any) -> str:
    if service == "ok":
        return f"alert service: the notifier is running (last beat {latest.age_s:.0f} s ago on {latest.host})"
    if service == "never":
        return "alert service: no notifier has ever run against this store: start `nightwatch notify run`"
    if service == "stopped":
        return (
            f"alert service: the notifier was stopped {latest.age_s:.0f} s ago (on {latest.host}): "
            "retries and escalations are not sent; start `nightwatch notify run`"
        )
    return (
        f"alert service: STALE: the notifier's last beat was {latest.age_s:.0f} s ago (on {latest.host}, pid "
        f"{latest.pid}): it is down or hung; restart it (`kubectl rollout restart deployment notifier`)"
    )


def _send(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    try:
        results = send_by_hand(store, config, acting_as(args, store, "send_alerts"), args.alert_id, args.note or "")
        for row in results:
            print(
                f"{row['alert_id']} on {row['channel']}: {row['status']}"
                + (f" ({row['error']})" if row["error"] else "")
            )
        return 0 if any(row["status"] == "delivered" for row in results) else 1
    finally:
        store.close()


# --- on-call ----------------------------------------------------------------------------------------------------


def _now(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    store.close()
    at = when(args.at, "--at")
    who = {role: describe_on_call(entry) for role, entry in on_call(config.oncall, at).items()}
    if args.json:
        print(json.dumps(who, indent=2))
        return 0
    print(f"on call at {at:%a %Y-%m-%d %H:%M} UTC")
    for info in who.values():
        note = "" if info["covered_now"] else "  (business hours only: not covering now)"
        print(f"  {info['title']:<18} {info['name']} ({info['person']}) via {info['contact']}{note}")
    print(f"  next handoff {next(iter(who.values()))['until']}" if who else "")
    return 0


def _handoff(args: argparse.Namespace, _beam: list[str]) -> int:
    config, store = open_in_force(args)
    try:
        if args.publish:
            signed_in(args, store, "respond_incidents")
        report = handoff(store, config, when(args.at, "--at"))
        report["open_incidents"] = open_incidents(store)  # the watcher's ("Review active incidents")
        if args.publish:  # the handoff's "Update status page"
            statuspage.publish(store, args.as_user, args.publish, kind="handoff")
            print(f"status page updated: {args.publish}", file=sys.stderr)
    finally:
        store.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"Handoff at {report['at']}")
    for label, key in (("On call now", "on_call"), ("Next week", "next_on_call")):
        print(f"{label}: " + "; ".join(f"{w['title']} {w['name']}" for w in report[key].values()))
    print(f"\nOpen incidents ({len(report['open_incidents'])}): the health watcher's, not resolved")
    print("".join(f"  {line}\n" for line in report["open_incidents"]), end="")
    print(f"\nActive incidents ({len(report['incidents'])}): unacknowledged CRITICAL and HIGH alerts")
    for alert in report["incidents"]:
        flag = "  OVERDUE" if alert["overdue"] else ""
        print(f"  {alert['level']:<8} {alert['status']:<10} {alert['age_min']:>5} min  {alert['alert_id']}{flag}")
    print(f"\nEscalations in progress ({len(report['escalations'])})")
    for row in report["escalations"]:
        print(f"  {row['alert_id']}: step {row['step']} {row['role']} ({row['person']}) {row['status']} at {row['at']}")
    print(f"\nFailing deliveries ({len(report['failing_deliveries'])})")
    for row in report["failing_deliveries"]:
        print(f"  {row['status']:<8} {row['alert_id']} on {row['channel']} attempt {row['attempt']}: {row['error']}")
    print(f"\nOpen alerts ({len(report['open_alerts'])})")
    for alert in report["open_alerts"][: args.limit]:
        print(f"  {alert['level']:<8} {alert['status']:<12} {alert['title']}")
    if len(report["open_alerts"]) > args.limit:
        print(f"  ... and {len(report['open_alerts']) - args.limit} more (--limit, --json)")
    print("\nMaintenance: " + ("; ".join(report["maintenance"]) or "none scheduled"))
    return 0


# --- the parser ---------------------------------------------------------------------------------------------------


def add_commands(commands: argparse._SubParsersAction) -> None:
    notify = commands.add_parser(
        "notify",
        help="notification channels and deliveries: status, the retry/digest/escalation loop, the digest",
        description="Channels are in config/notifications.yaml; secrets come from the environment variables named "
        "there. `run` sends due retries, digests and escalation steps until stopped (--once: one pass).",
    )
    actions = notify.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="channels, deliveries per status, failing deliveries (exit 1 if any)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)
    loop = actions.add_parser("run", help="send due retries, digests and escalation steps, every poll_s")
    loop.add_argument("--once", action="store_true", help="one pass, then exit")
    metrics_option(loop)
    loop.set_defaults(handler=_run)
    digest = actions.add_parser("digest", help="send the pending digest now (alerts over budget, new MEDIUM items)")
    identity_options(digest, "Operator or above")
    digest.add_argument("--low", action="store_true", help="the LOW (routine) next-business-day digest instead")
    digest.set_defaults(handler=_digest)
    for action in (status, loop, digest):
        store_options(action)

    alerts = commands.add_parser(
        "alerts",
        help="the Critical Alert Not Sent runbook: find critical/significant events with no alert or no delivery",
        description="`check` exits 1 and lists every critical or significant event with no alert row, and every "
        "CRITICAL or HIGH alert nobody acknowledged that no channel delivered; "
        "`send` sends one on its level's channels now (Operator role). Both are audited.",
    )
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="critical/significant events without an alert or a delivered notification (exit 1 if any)"
    )
    identity_options(check, "optional: the check is audited as you, else as the system")
    check.set_defaults(handler=_check)
    send = actions.add_parser("send", help="send an alert by hand: alerts send ALERT_ID --as USER")
    send.add_argument("alert_id")
    identity_options(send, "Operator or above")
    send.add_argument("--note", help="why (recorded in the audit log)")
    send.set_defaults(handler=_send)
    for action in (check, send):
        store_options(action)

    oncall = commands.add_parser("oncall", help="who is on call, and the handoff report")
    actions = oncall.add_subparsers(dest="action", required=True, metavar="ACTION")
    now = actions.add_parser("now", help="who holds each on-call role (config/oncall.yaml)")
    now.add_argument("--at", help="at this time instead (ISO 8601, UTC if no zone)")
    now.add_argument("--json", action="store_true")
    now.set_defaults(handler=_now)
    handover = actions.add_parser(
        "handoff", help="active incidents, escalations, failing deliveries and open alerts, for the next on-call"
    )
    handover.add_argument("--at", help="as of this time (ISO 8601)")
    handover.add_argument("--limit", type=int, default=30, help="open alerts to list (default 30)")
    handover.add_argument("--json", action="store_true")
    handover.add_argument(
        "--publish", metavar="TEXT", help='"Update status page": publish TEXT on the public status page (needs --as)'
    )
    identity_options(handover, "Operator or above, with --publish")
    handover.set_defaults(handler=_handoff)
    for action in (now, handover):
        store_options(action)
