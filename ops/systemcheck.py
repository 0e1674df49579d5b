"""The full system test's checks that need no Beam (`nightwatch system-test` runs them with the others): backup
and restore, the retention dry run, every notification channel to a local test receiver, the escalation ladder
on a fake clock, and the health of the API and the console over HTTP. Each returns an `Outcome` with evidence.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from config.settings import NightwatchConfig
from core.event import Event, utcnow
from ops.backup import backup, fingerprints, restore
from ops.notify.channels import Sender
from ops.notify.notice import Notice
from ops.notify.notifier import Notifier
from ops.oncall import escalate_due
from ops.procedure import Outcome
from ops.retention import apply_retention
from store.hot import HotStore
from store.layout import Outputs
from store.schema import alerts, events

# A Wednesday noon UTC: business hours, so every rung of the ladder (the lead included) is covered.
LADDER_T0 = datetime(2026, 1, 7, 12, 0, tzinfo=timezone.utc)


# --- backup and restore ---------------------------------------------------------------------------------------


def backup_and_restore(store: HotStore, scratch: Path) -> Outcome:
    """Back the store up, restore the backup into a scratch store of the same kind, compare every table."""
    path = backup(store, scratch / "backups")
    if store.engine.dialect.name == "sqlite":
        mismatches = restore(f"sqlite:///{scratch / 'restored.db'}", path)
    else:
        mismatches = _restore_postgres(store, path)
    tables = json.loads(Path(f"{path}.json").read_text())["tables"]
    if mismatches:
        return Outcome(False, f"restored store differs from the backup in {', '.join(sorted(mismatches))}")
    rows = sum(table.get("rows", 0) for table in tables.values() if isinstance(table, dict))
    return Outcome(True, f"backup {path.name}: {len(tables)} tables ({rows} rows) restored and matching the manifest")


def _restore_postgres(store: HotStore, path: Path) -> dict[str, list[str]]:
    """Into a scratch database on the same server, dropped afterwards: production is never overwritten."""
    url = store.engine.url
    scratch = f"{url.database}_systest_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
        return restore(url.set(database=scratch).render_as_string(hide_password=False), path)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


# --- retention -------------------------------------------------------------------------------------------------


def retention_dry_run(store: HotStore, outputs: Outputs, config: NightwatchConfig, now: datetime) -> Outcome:
    """The retention table applied as a dry run: what it would delete, and proof that it deleted nothing."""
    before = fingerprints(store)
    report = apply_retention(store, outputs.warm_root, outputs.archive_root, config.retention, now, dry_run=True)
    if fingerprints(store) != before:
        return Outcome(False, "the dry run changed the hot store")
    return Outcome(True, report.table().replace("\n", "; "), {"files_to_rewrite": report.files_rewritten})


# --- notification channels to local test receivers -------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *_args: Any) -> None:  # a test receiver prints nothing
        pass

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append({"path": self.path, "body": json.loads(body or b"null")})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class Receivers:
    """A local HTTP receiver (PagerDuty, Slack, webhooks post to it) and, with aiosmtpd, a local SMTP server."""

    def __init__(self) -> None:
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.http.received = []  # type: ignore[attr-defined]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.smtp_messages: list[Any] = []
        self.smtp_port: int | None = None
        self._smtp: Any = None
        try:
            from aiosmtpd.controller import Controller
        except ImportError:  # the dev extra: without it e-mail channels are reported, not checked
            return
        receivers = self

        class Inbox:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                receivers.smtp_messages.append(envelope)
                return "250 accepted"

        with socket.socket() as probe:  # aiosmtpd checks its port by connecting to it: it needs a real one
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._smtp = Controller(Inbox(), hostname="127.0.0.1", port=port)
        self._smtp.start()
        self.smtp_port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    @property
    def received(self) -> list[dict[str, Any]]:
        return self.http.received  # type: ignore[attr-defined]

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        if self._smtp is not None:
            self._smtp.stop()


@contextmanager
def local_receivers() -> Iterator[Receivers]:
    receivers = Receivers()
    try:
        yield receivers
    finally:
        receivers.close()


@contextmanager
def pointed_at(config: NightwatchConfig, receivers: Receivers) -> Iterator[NightwatchConfig]:
    """The configuration with every channel sending to the test receivers. Secrets come from the environment
    (`*_env`): test values are set there meanwhile and the previous ones put back afterwards."""
    channels, env = {}, {}
    for name, spec in config.notifications.channels.items():
        variable = "NIGHTWATCH_SYSTEM_TEST_" + "".join(ch if ch.isalnum() else "_" for ch in name.upper())
        if spec.kind == "email":
            update: dict[str, Any] = {"host": "127.0.0.1", "host_env": None, "port": receivers.smtp_port or 1}
            update |= {"starttls": False, "username_env": None, "password_env": None}
        elif spec.kind == "pagerduty":
            update = {"url": f"{receivers.url}/{name}", "url_env": None, "routing_key_env": f"{variable}_KEY"}
            env[f"{variable}_KEY"] = "system-test-routing-key"
        else:
            update = {"url_env": variable}
            env[variable] = f"{receivers.url}/{name}"
        channels[name] = spec.model_copy(update=update)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        notifications = config.notifications.model_copy(update={"channels": channels})
        yield config.model_copy(update={"notifications": notifications})
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def channels_check(config: NightwatchConfig, receivers: Receivers) -> Outcome:
    """One test notice on every channel, to the test receivers; each must arrive."""
    with pointed_at(config, receivers) as test_config:
        return _send_each(test_config, receivers)


def _send_each(test_config: NightwatchConfig, receivers: Receivers) -> Outcome:
    sender = Sender(test_config.notifications.channels, timeout_s=10)
    results, failed = [], []
    try:
        for name, spec in test_config.notifications.channels.items():
            if spec.kind == "email" and receivers.smtp_port is None:
                results.append(f"{name}: not checked (no SMTP test receiver: install aiosmtpd)")
                continue
            notice = Notice(
                key=f"system-test:{name}",
                action="manual-system-test",
                title="Nightwatch system test",
                summary=f"test notice on channel {name}",
                dedup_key=f"system-test:{uuid.uuid4().hex[:8]}",
                timestamp=utcnow().isoformat(),
                level="LOW",
            )
            before = len(receivers.received) + len(receivers.smtp_messages)
            outcome = sender.send(name, notice)
            arrived = len(receivers.received) + len(receivers.smtp_messages) - before
            if outcome.ok and arrived == 1:
                results.append(f"{name} ({spec.kind}): delivered and received")
            else:
                failed.append(name)
                results.append(f"{name} ({spec.kind}): {outcome.error or f'{arrived} received'}")
    finally:
        sender.close()
    return Outcome(not failed, "; ".join(results))


# --- the escalation ladder on a fake clock ----------------------------------------------------------------------


def escalation_check(config: NightwatchConfig, receivers: Receivers, scratch: Path) -> Outcome:
    """An unacknowledged CRITICAL alert in a scratch store, walked up the ladder minute by minute on a fake
    clock: every rung must be reached at its time, once, and its page must reach the receivers."""
    ladder = config.oncall.escalation
    store = HotStore(f"sqlite:///{scratch / 'ladder.db'}")
    store.ensure_schema()
    clock = [LADDER_T0]
    reached: list[tuple[int, int, str, str]] = []
    with pointed_at(config, receivers) as test_config:
        notifier = Notifier(store, test_config, clock=lambda: clock[0])
        try:
            alert_id = _critical_alert(store, LADDER_T0)
            for minute in range(0, max(step.after_min for step in ladder.steps) + 1):
                clock[0] = LADDER_T0 + timedelta(minutes=minute)
                for row in escalate_due(store, test_config, notifier, clock[0]):
                    reached.append((minute, row["step"], row["role"], row["status"]))
        finally:
            notifier.close()
            store.close()
    expected = [(step.after_min, index, step.role) for index, step in enumerate(ladder.steps)]
    got = [(minute, step, role) for minute, step, role, _status in reached]
    statuses = [status for *_rest, status in reached]
    described = ", ".join(f"{minute} min {role} {status}" for minute, _step, role, status in reached)
    if got != expected:
        return Outcome(False, f"ladder walked {got}, expected {expected}")
    if "failed" in statuses:
        return Outcome(False, f"a rung's page failed: {described}")
    return Outcome(True, f"alert {alert_id}: {described}")


def _critical_alert(store: HotStore, at: datetime) -> str:
    event = Event(
        event_id="gcn:system-test:ladder",
        source="gcn",
        kind="grb",
        event_time=at - timedelta(minutes=1),
        received_time=at,
        ra=41.3,
        dec=9.3,
        pos_error_deg=2.0,
        raw_format="gcn-json",
        event_class="critical",
        score=0.95,
        alert_level="CRITICAL",
        reasons=["system test"],
        night="2026-01-06",
    )
    store.add_events([event])
    store.add_alerts([event])
    alert_id = f"alert:{event.event_id}"
    with store.engine.begin() as conn:
        conn.execute(alerts.update().where(alerts.c.alert_id == alert_id).values(created_at=at))
    return alert_id


# --- API and console health ------------------------------------------------------------------------------------


def http_health(url: str, timeout_s: float = 5.0) -> Outcome:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - a configured http(s) URL
            body = answer.read(200).decode(errors="replace").strip()
            return Outcome(answer.status == 200, f"GET {url}: HTTP {answer.status} {body[:80]}")
    except OSError as exc:
        return Outcome(False, f"GET {url}: {exc}")


def scratch_folder(root: Path) -> Path:
    folder = root / f"system-test-{utcnow():%Y%m%dT%H%M%S}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def count_events(store: HotStore, **where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(events)
    for name, value in where.items():
        query = query.where(events.c[name] == value)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
