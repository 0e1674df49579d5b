"""Notifications against real receivers: local HTTP servers (PagerDuty-, Slack- and webhook-shaped) and an SMTP
server (aiosmtpd), plus the pipeline end to end. Also the helpers the on-call and maintenance tests share.

Why this module is long: one suite per channel and policy rule against the same real receivers, whose set-up
is shared with the on-call and maintenance suites.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiosmtpd.controller import Controller

from access import accounts
from config import load_config
from core.event import Event
from ops import responses
from ops.notify import (
    Notifier,
    alert_notice,
    deliveries_for,
    delivery_key,
    insert_once,
    load_alert,
    send_by_hand,
    unsent_alerts,
    unsent_critical,
)
from store.hot import HotStore
from store.schema import alerts, audit_log
from store.schema import deliveries as deliveries_table

T0 = datetime(2026, 1, 7, 12, 0, tzinfo=timezone.utc)  # a Wednesday, business hours, rotation week 0
PASSWORD = "a-long-enough-password"


# --- real receivers ---------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with self.server.lock:
            self.server.received.append({"path": self.path, "body": body})
            code = self.server.codes.pop(0) if self.server.codes else 200
        data = b"ok" if code < 300 else b'{"status":"error","message":"scripted failure"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True


class Receiver:
    """A real HTTP server on a free port: records every POST (path, JSON body), answers the scripted codes
    (then 200)."""

    def __init__(self, codes: list[int] | None = None):
        self._server = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._server.lock = threading.Lock()
        self._server.received = []
        self._server.codes = list(codes or [])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def received(self) -> list[dict[str, Any]]:
        return self._server.received

    def answer(self, *codes: int) -> None:
        self._server.codes.extend(codes)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="receivers")
def receivers_fixture():
    made = {name: Receiver() for name in ("pagerduty", "slack", "webhook")}
    yield made
    for receiver in made.values():
        receiver.close()


@pytest.fixture(name="smtp")
def smtp_fixture():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def write_config(
    folder: Path, monkeypatch: pytest.MonkeyPatch, receivers: dict[str, Receiver], smtp_port: int, **overrides: Any
):
    """A config folder whose channels point at the local receivers; secrets go through the environment."""
    monkeypatch.setenv("NW_TEST_PD_KEY", "R0UTINGKEY0123456789abcdef012345")
    monkeypatch.setenv("NW_TEST_SLACK_URL", f"{receivers['slack'].url}/services/T000/B000/s3cr3t")
    monkeypatch.setenv("NW_TEST_HOOK_URL", f"{receivers['webhook'].url}/hook")
    notifications = {
        "version": "test",
        "channels": {
            "pagerduty": {
                "kind": "pagerduty",
                "routing_key_env": "NW_TEST_PD_KEY",
                "url": f"{receivers['pagerduty'].url}/v2/enqueue",
            },
            "slack-ops": {"kind": "slack", "url_env": "NW_TEST_SLACK_URL"},
            "webhook": {"kind": "webhook", "url_env": "NW_TEST_HOOK_URL"},
            "email": {
                "kind": "email",
                "host": "127.0.0.1",
                "port": smtp_port,
                "starttls": False,
                "sender": "nightwatch@example.org",
                "to": ["ops@example.org"],
            },
        },
        "levels": {
            "CRITICAL": {"channels": ["pagerduty", "slack-ops", "email", "webhook"], "throttle": False},
            "HIGH": {"channels": ["slack-ops", "webhook"]},
            "MEDIUM": {"channels": []},
            "LOW": {"channels": []},
        },
        "budget_per_night": 50,
        "digest": {"channels": ["slack-ops"], "every_min": 60},
        "retry": {"max_attempts": 3, "backoff_s": 30, "max_backoff_s": 600},
        "pipeline_timeout_s": 3,
        "timeout_s": 3,
        "poll_s": 1,
    }
    for key, value in overrides.items():
        notifications[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notifications.yaml").write_text(yaml.safe_dump(notifications))
    return load_config(folder)


@pytest.fixture(name="setup")
def setup_fixture(tmp_path, monkeypatch, receivers, smtp, store):
    """(config, store, receivers, smtp inbox, clock): the clock is a list holding the fake now."""
    config = write_config(tmp_path / "config", monkeypatch, receivers, smtp.port)
    monkeypatch.setenv("NIGHTWATCH_CONFIG_DIR", str(tmp_path / "config"))  # what the portal's ack hook reads
    return config, store, receivers, smtp, [T0]


def add_alert(
    store: HotStore,
    n: int,
    level: str = "CRITICAL",
    injected: bool = False,
    created_at: datetime = T0,
    night: str = "2026-01-06",
) -> str:
    """Store an event and its alert, created at `created_at`; returns the alert id."""
    event_class = {"CRITICAL": "critical", "HIGH": "significant", "MEDIUM": "interesting", "LOW": "routine"}[level]
    event = Event(
        event_id=f"gcn:test:{n}",
        source="gcn",
        kind="grb",
        event_time=created_at - timedelta(minutes=1),
        received_time=created_at,
        ra=41.3365,
        dec=9.2947,
        pos_error_deg=2.5,
        raw_format="gcn-json",
        event_class=event_class,
        score=0.95,
        alert_level=level,
        reasons=["rule grb_localised"],
        night=night,
        injected=injected,
    )
    store.add_events([event])
    store.add_alerts([event])
    alert_id = f"alert:{event.event_id}"
    with store.engine.begin() as conn:
        conn.execute(alerts.update().where(alerts.c.alert_id == alert_id).values(created_at=created_at))
    return alert_id


def notifier_for(config: Any, store: HotStore, clock: list[datetime]) -> Notifier:
    return Notifier(store, config, clock=lambda: clock[0])


def add_user(store: HotStore, name: str, role: str) -> None:
    accounts.create_user_as_system(store, "test", name, role, PASSWORD)


# --- the tests --------------------------------------------------------------------------------------------------


def test_critical_alert_reaches_every_channel_in_its_format(setup):
    config, store, receivers, smtp, clock = setup
    alert_id = add_alert(store, 1)
    notifier = notifier_for(config, store, clock)
    results = notifier.notify_alert(alert_id)
    notifier.close()

    assert {row["channel"]: row["status"] for row in results} == {
        "pagerduty": "delivered",
        "slack-ops": "delivered",
        "email": "delivered",
        "webhook": "delivered",
    }
    details = {
        "event_id": "gcn:test:1",
        "source": "gcn",
        "kind": "grb",
        "event_time": "2026-01-07T11:59:00+00:00",
        "ra": 41.3365,
        "dec": 9.2947,
        "pos_error_deg": 2.5,
        "mag": None,
        "band": None,
        "score": 0.95,
        "night": "2026-01-06",
        "reasons": ["rule grb_localised"],
    }
    title = "CRITICAL: gcn grb at RA 41.3365, Dec +9.2947"
    [page] = receivers["pagerduty"].received
    assert page["path"] == "/v2/enqueue"
    assert page["body"] == {
        "routing_key": "R0UTINGKEY0123456789abcdef012345",
        "event_action": "trigger",
        "dedup_key": alert_id,
        "payload": {
            "summary": title,
            "source": "nightwatch/gcn",
            "severity": "critical",
            "timestamp": "2026-01-07T12:00:00+00:00",
            "custom_details": details,
        },
    }
    [slack] = receivers["slack"].received
    assert slack["path"] == "/services/T000/B000/s3cr3t"
    assert slack["body"]["text"] == f"{title}: {title}"
    blocks = slack["body"]["blocks"]
    assert [block["type"] for block in blocks] == ["header", "section", "section", "context"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": title}}
    assert blocks[1] == {"type": "section", "text": {"type": "mrkdwn", "text": title}}
    assert {"type": "mrkdwn", "text": "*source*\ngcn"} in blocks[2]["fields"]
    assert len(blocks[2]["fields"]) == 10  # Slack's limit; mag and band are empty and left out
    assert blocks[3]["elements"] == [{"type": "mrkdwn", "text": f"trigger · {alert_id} · 2026-01-07T12:00:00+00:00"}]
    [hook] = receivers["webhook"].received
    assert hook["path"] == "/hook"
    assert hook["body"] == {
        "alert_id": alert_id,
        "action": "trigger",
        "title": title,
        "summary": title,
        "dedup_key": alert_id,
        "timestamp": "2026-01-07T12:00:00+00:00",
        "level": "CRITICAL",
        "source": "nightwatch/gcn",
        "details": details,
        "recipient": None,
        "link": None,
    }
    [mail] = smtp.messages
    assert mail.mail_from == "nightwatch@example.org"
    assert mail.rcpt_tos == ["ops@example.org"]
    text = mail.content.decode()
    assert f"Subject: [Nightwatch CRITICAL] {title}" in text
    assert "event_id: gcn:test:1" in text

    # Idempotent: the same alert again (a redelivered bundle) sends nothing more.
    again = notifier_for(config, store, clock)
    again.notify_alert(alert_id)
    again.close()
    assert len(receivers["pagerduty"].received) == len(receivers["slack"].received) == len(smtp.messages) == 1
    # The secrets are not in the store.
    with store.engine.connect() as conn:
        dump = json.dumps([dict(row._mapping) for row in conn.execute(sa.text("SELECT * FROM deliveries"))])
    assert "R0UTINGKEY" not in dump and "s3cr3t" not in dump


def test_a_failed_delivery_is_retried_with_exponential_backoff(setup):
    config, store, receivers, _smtp, clock = setup
    receivers["webhook"].answer(500, 503)
    alert_id = add_alert(store, 2, level="HIGH")
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(alert_id)
    [row] = [r for r in deliveries_for(store, alert_id) if r["channel"] == "webhook"]
    assert (row["status"], row["attempt"], row["response_code"]) == ("retrying", 1, 500)
    assert row["next_attempt_at"] == T0 + timedelta(seconds=30)

    clock[0] = T0 + timedelta(seconds=29)  # not yet due
    assert notifier.send_due() == []
    clock[0] = T0 + timedelta(seconds=31)
    [second] = notifier.send_due()
    assert (second["status"], second["attempt"], second["response_code"]) == ("retrying", 2, 503)
    assert second["next_attempt_at"] == clock[0] + timedelta(seconds=60)  # doubled
    clock[0] += timedelta(seconds=61)
    [third] = notifier.send_due()
    notifier.close()

    [row] = [r for r in deliveries_for(store, alert_id) if r["channel"] == "webhook"]
    assert (row["status"], row["attempt"], row["next_attempt_at"]) == ("delivered", 3, None)
    assert [(h["attempt"], h["status"], h["code"]) for h in row["history"]] == [
        (1, "retrying", 500),
        (2, "retrying", 503),
        (3, "delivered", 200),
    ]
    assert len(receivers["webhook"].received) == 3
    assert receivers["webhook"].received[0]["body"] == receivers["webhook"].received[2]["body"]  # the same notice


def test_delivery_gives_up_after_max_attempts_and_a_4xx_at_once(setup, caplog):
    from core import logs, telemetry

    config, store, receivers, _smtp, clock = setup
    receivers["webhook"].answer(500, 500, 500)
    receivers["slack"].answer(404)  # a deleted webhook: retrying cannot help
    alert_id = add_alert(store, 3, level="HIGH")
    failed_before = telemetry.DELIVERIES.labels("webhook", "failed")._value.get()
    retrying_before = telemetry.DELIVERIES.labels("webhook", "retrying")._value.get()
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(alert_id)
    for _ in range(3):
        clock[0] += timedelta(hours=1)
        notifier.send_due()
    notifier.close()
    # Counted per channel and outcome (Prometheus), and one structured log line per failed attempt.
    assert telemetry.DELIVERIES.labels("webhook", "failed")._value.get() - failed_before == 1
    assert telemetry.DELIVERIES.labels("webhook", "retrying")._value.get() - retrying_before == 2
    failures = [getattr(r, logs.FIELDS) for r in caplog.records if getattr(r, logs.FIELDS, {}).get("event")]
    assert {(f["channel"], f["status"]) for f in failures} >= {("webhook", "failed"), ("slack-ops", "failed")}
    assert all(f["event"] == "delivery_failed" and f["alert_id"] == alert_id for f in failures)
    rows = {r["channel"]: r for r in deliveries_for(store, alert_id)}
    assert (rows["slack-ops"]["status"], rows["slack-ops"]["attempt"]) == ("failed", 1)
    assert (rows["webhook"]["status"], rows["webhook"]["attempt"]) == ("failed", 3)  # max_attempts
    assert rows["webhook"]["error"].startswith("HTTP 500")


def test_unreachable_receiver_error_does_not_leak_the_webhook_secret(setup, monkeypatch):
    config, store, _receivers, _smtp, clock = setup
    monkeypatch.setenv("NW_TEST_HOOK_URL", f"http://127.0.0.1:{free_port()}/hooks/T0K3N-value")
    alert_id = add_alert(store, 4, level="HIGH")
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(alert_id)
    notifier.close()
    [row] = [r for r in deliveries_for(store, alert_id) if r["channel"] == "webhook"]
    assert row["status"] == "retrying" and "ConnectionError" in row["error"]
    assert "T0K3N" not in row["error"] and "T0K3N" not in json.dumps(row["history"])


def test_email_with_starttls_required_is_not_sent_in_the_clear(setup, tmp_path, monkeypatch, receivers, smtp):
    config, store, _receivers, _smtp, clock = setup
    channels = config.notifications.model_dump()["channels"]
    channels["email"]["starttls"] = True
    config = write_config(tmp_path / "tls", monkeypatch, receivers, smtp.port, channels=channels)
    alert_id = add_alert(store, 5)
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(alert_id)
    notifier.close()
    [row] = [r for r in deliveries_for(store, alert_id) if r["channel"] == "email"]
    assert row["status"] == "retrying"
    assert "does not offer STARTTLS" in row["error"]
    assert smtp.messages == []


def test_acknowledge_and_resolve_in_the_portal_reach_pagerduty_with_the_same_dedup_key(setup):
    config, store, receivers, _smtp, clock = setup
    add_user(store, "olga", "operator")
    alert_id = add_alert(store, 6)
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(alert_id)
    notifier.close()

    responses.alert_action(store, "olga", alert_id, "acknowledge", "looking at it")
    responses.alert_action(store, "olga", alert_id, "resolve", "follow-up scheduled")
    bodies = [request["body"] for request in receivers["pagerduty"].received]
    assert [body["event_action"] for body in bodies] == ["trigger", "acknowledge", "resolve"]
    key = "R0UTINGKEY0123456789abcdef012345"
    assert bodies[1] == {"routing_key": key, "event_action": "acknowledge", "dedup_key": alert_id}
    assert bodies[2] == {"routing_key": key, "event_action": "resolve", "dedup_key": alert_id}
    # Only the pager is told: Slack and the webhook had one message each.
    assert len(receivers["slack"].received) == len(receivers["webhook"].received) == 1
    statuses = {(r["channel"], r["action"]): r["status"] for r in deliveries_for(store, alert_id)}
    assert statuses[("pagerduty", "acknowledge")] == statuses[("pagerduty", "resolve")] == "delivered"


def test_acknowledge_stops_a_page_still_waiting_for_its_retry(setup):
    config, store, receivers, _smtp, clock = setup
    receivers["pagerduty"].answer(502)
    add_user(store, "olga", "operator")
    alert_id = add_alert(store, 7)
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(alert_id)
    responses.alert_action(store, "olga", alert_id, "acknowledge", "seen on Slack")
    clock[0] += timedelta(hours=1)
    assert notifier.send_due() == []  # the trigger would re-open the incident after the acknowledgement
    notifier.close()
    trigger = [r for r in deliveries_for(store, alert_id) if (r["channel"], r["action"]) == ("pagerduty", "trigger")]
    assert trigger[0]["status"] == "suppressed" and "acknowledged" in trigger[0]["error"]


def test_critical_and_high_are_never_throttled_while_medium_beyond_the_budget_goes_to_the_digest(
    setup, tmp_path, monkeypatch, receivers, smtp
):
    _config, store, _receivers, _smtp, clock = setup
    levels = {
        "CRITICAL": {"channels": ["pagerduty", "slack-ops", "email", "webhook"], "throttle": False},
        "HIGH": {"channels": ["slack-ops", "webhook"]},
        "MEDIUM": {"channels": ["webhook"]},  # a site that sends MEDIUM at once, until the budget is spent
        "LOW": {"channels": []},
    }
    config = write_config(tmp_path / "budget", monkeypatch, receivers, smtp.port, budget_per_night=2, levels=levels)
    notifier = notifier_for(config, store, clock)
    high = [add_alert(store, 10 + n, level="HIGH") for n in range(3)]
    critical = [add_alert(store, 20 + n) for n in range(2)]
    medium = add_alert(store, 30, level="MEDIUM")
    for alert_id in high[:2] + critical + high[2:] + [medium]:
        notifier.notify_alert(alert_id)

    def statuses(alert_id: str) -> set[str]:
        return {row["status"] for row in deliveries_for(store, alert_id)}

    # The budget (the guide's "<50 a night") is a range to watch: the third HIGH is sent at once all the same,
    # since the hourly digest could hold it past its 1-hour response time. Only MEDIUM and LOW are digested.
    assert statuses(high[0]) == statuses(high[1]) == statuses(high[2]) == {"delivered"}
    assert statuses(critical[0]) == statuses(critical[1]) == {"delivered"}  # over the budget, sent all the same
    assert statuses(medium) == {"throttled"}
    assert sum(1 for request in receivers["pagerduty"].received if request["body"]["event_action"] == "trigger") == 2
    slack_before = len(receivers["slack"].received)
    hook_before = len(receivers["webhook"].received)

    notice, results = notifier.send_digest()
    assert [row["status"] for row in results] == ["delivered"]
    digest = receivers["slack"].received[-1]["body"]
    assert len(receivers["slack"].received) == slack_before + 1
    assert len(receivers["webhook"].received) == hook_before  # the digest goes to the digest channels only
    assert (
        digest["blocks"][0]["text"]["text"] == "Nightwatch digest: 1 alerts over the nightly budget, 0 new for review"
    )
    assert {row["digest_id"] for row in deliveries_for(store, medium)} == {notice.key}
    assert notifier.send_digest() == (None, [])  # nothing pending any more
    notifier.close()


def test_high_throttling_is_refused_in_the_configuration(tmp_path, monkeypatch, receivers, smtp):
    from config.settings import ConfigError

    levels = {"CRITICAL": {"channels": [], "throttle": False}, "HIGH": {"channels": ["webhook"], "throttle": True}}
    with pytest.raises(ConfigError, match="levels.HIGH.throttle must be false"):
        write_config(tmp_path / "bad", monkeypatch, receivers, smtp.port, levels=levels)


def test_a_high_alert_left_by_a_crash_is_sent_by_the_notify_loop_within_its_response_time(setup, tmp_path):
    """Issue 15: a crash after storing (outbox pending) or mid-send (a `retrying` row under its lease), on a night
    already past the budget: the notify loop's passes, on a fake clock, send both well inside the hour."""
    config, store, receivers, _smtp, clock = setup
    config = config.model_copy(
        update={"notifications": config.notifications.model_copy(update={"budget_per_night": 0})}
    )
    stored = add_alert(store, 90, level="HIGH", created_at=T0)  # stored, then the process died: never notified
    cut = add_alert(store, 91, level="HIGH", created_at=T0)
    receivers["webhook"].answer(200)
    notifier = notifier_for(config, store, clock)
    # The second one died mid-send: its rows were claimed (`retrying`, leased), nothing reached the receivers.
    notice = alert_notice(load_alert(store, cut), "trigger", None)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM notify_outbox WHERE alert_id = :a"), {"a": cut})
    for channel in ("slack-ops", "webhook"):
        row = {
            "delivery_key": delivery_key(notice, channel),
            "alert_id": cut,
            "channel": channel,
            "action": "trigger",
            "level": "HIGH",
            "night": "2026-01-06",
            "recipient": None,
            "status": "retrying",
            "attempt": 0,
            "error": None,
            "next_attempt_at": T0 + notifier.outbox.lease(),
            "notice": notice.to_json(),
            "history": "[]",
            "created_at": T0,
            "updated_at": T0,
        }
        assert insert_once(store, deliveries_table, row, ["delivery_key"])
    receivers["webhook"].received.clear()

    def loop_pass(minutes: int) -> None:  # what `nightwatch notify run` does every poll_s
        clock[0] = T0 + timedelta(minutes=minutes)
        notifier.notify_pending()
        notifier.send_due()

    loop_pass(1)
    assert {row["status"] for row in deliveries_for(store, stored)} == {"delivered"}  # never throttled
    assert {row["status"] for row in deliveries_for(store, cut)} == {"retrying"}  # its lease still holds
    loop_pass(2)
    sent = {row["status"]: row["updated_at"] for row in deliveries_for(store, cut)}
    notifier.close()
    assert set(sent) == {"delivered"} and sent["delivered"] < T0 + responses.RESPONSE_TARGETS["HIGH"]
    assert sorted(r["body"]["alert_id"] for r in receivers["webhook"].received) == sorted([stored, cut])


def test_injected_alerts_never_page_anyone(setup):
    config, store, receivers, smtp, clock = setup
    critical = add_alert(store, 30, injected=True)
    high = add_alert(store, 31, level="HIGH", injected=True)
    notifier = notifier_for(config, store, clock)
    notifier.notify_alert(critical)
    notifier.notify_alert(high)
    notifier.close()
    assert all(not receiver.received for receiver in receivers.values())
    assert smtp.messages == []
    rows = deliveries_for(store, critical) + deliveries_for(store, high)
    assert len(rows) == 6 and {row["status"] for row in rows} == {"suppressed"}
    assert all("injected" in row["error"] for row in rows)
    add_user(store, "olga", "operator")
    with pytest.raises(ValueError, match="injected"):
        send_by_hand(store, config, "olga", critical)


def test_shipped_configuration_sends_nothing_without_its_environment(store, monkeypatch):
    for name in ("NIGHTWATCH_PAGERDUTY_ROUTING_KEY", "NIGHTWATCH_SLACK_WEBHOOK_URL", "NIGHTWATCH_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NIGHTWATCH_SMTP_HOST", raising=False)
    config = load_config()
    assert all(spec.destination() is None for spec in config.notifications.channels.values())
    alert_id = add_alert(store, 40)
    notifier = Notifier(store, config)
    assert notifier.notify_alert(alert_id) == []
    notifier.close()
    assert [alert.alert_id for alert in unsent_critical(store)] == [alert_id]


def test_secrets_cannot_be_written_in_the_yaml(tmp_path):
    from config.settings import ConfigError

    folder = tmp_path / "bad"
    folder.mkdir()
    document = {
        "version": "x",
        "channels": {"slack-ops": {"kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}},
        "levels": {"CRITICAL": {"channels": ["slack-ops"], "throttle": False}},
    }
    (folder / "notifications.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="secret"):
        load_config(folder)
    document["channels"]["slack-ops"] = {"kind": "slack", "url_env": "SLACK"}
    document["levels"]["CRITICAL"]["throttle"] = True
    (folder / "notifications.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="never throttled"):
        load_config(folder)


def test_alerts_check_finds_the_unsent_critical_and_alerts_send_fixes_it(setup, tmp_path, capsys, monkeypatch):
    from cli.main import main

    _config, store, receivers, _smtp, _clock = setup
    add_user(store, "olga", "operator")
    add_user(store, "otto", "observer")
    # The night it went wrong: every HTTP receiver answers 503 and the SMTP server is not listening.
    broken = write_config(tmp_path / "broken", monkeypatch, receivers, free_port())
    for receiver in receivers.values():
        receiver.answer(503)
    alert_id = add_alert(store, 50)
    notifier = Notifier(store, broken)
    assert {row["status"] for row in notifier.notify_alert(alert_id)} == {"retrying"}
    notifier.close()
    where = ["--db-url", store.url, "--config", str(tmp_path / "config")]

    assert main(["alerts", "check", *where]) == 1
    out = capsys.readouterr().out
    assert alert_id in out and "Runbook: Critical Alert Not Sent" in out
    assert "nightwatch alerts send ALERT_ID" in out

    assert main(["alerts", "send", alert_id, "--as", "otto", *where]) == 2  # an Observer may not send
    assert "needs the Operator role" in capsys.readouterr().err

    assert main(["alerts", "send", alert_id, "--as", "olga", "--note", "pager was down", *where]) == 0
    out = capsys.readouterr().out
    assert f"{alert_id} on pagerduty: delivered" in out
    manual = [r for r in deliveries_for(store, alert_id) if r["action"].startswith("manual-")]
    assert {r["channel"] for r in manual} == {"pagerduty", "slack-ops", "email", "webhook"}
    assert receivers["pagerduty"].received[-1]["body"]["dedup_key"] == alert_id

    assert main(["alerts", "check", *where]) == 0
    with store.engine.connect() as conn:
        audited = conn.execute(sa.select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)).all()
    assert ("olga", "alert.send", alert_id) in [tuple(row) for row in audited]
    assert sum(1 for row in audited if row.action == "alerts.check") == 2


def test_pipeline_run_sends_its_new_alerts_to_a_local_webhook(tmp_path, monkeypatch, receivers, smtp):
    from pipeline.batch import run

    write_config(tmp_path / "config", monkeypatch, receivers, smtp.port)
    summary = run(["--simulate=150", f"--output={tmp_path / 'out'}", f"--config_dir={tmp_path / 'config'}"])
    assert summary.ok
    store = HotStore(f"sqlite:///{tmp_path / 'out' / 'nightwatch.db'}")
    with store.engine.connect() as conn:
        stored = {row.alert_id: row.level for row in conn.execute(sa.select(alerts.c.alert_id, alerts.c.level))}
    assert stored, "the simulated run should raise alerts"
    hooked = {request["body"]["alert_id"]: request["body"]["level"] for request in receivers["webhook"].received}
    assert hooked == stored  # every new CRITICAL and HIGH alert, once each, at its level
    paged = [request["body"]["dedup_key"] for request in receivers["pagerduty"].received]
    assert sorted(paged) == sorted(a for a, level in stored.items() if level == "CRITICAL")
    assert {row["status"] for row in deliveries_for(store)} == {"delivered"}
    assert load_alert(store, next(iter(stored))) is not None
    store.close()


def test_notify_run_sends_the_hourly_digest_and_the_low_digest_on_business_days(setup):
    config, store, receivers, _smtp, clock = setup
    routine = Event(
        event_id="ztf:routine:1",
        source="ztf",
        kind="optical_transient",
        event_time=T0 - timedelta(hours=3),
        received_time=T0 - timedelta(hours=3),
        raw_format="ztf-avro",
        event_class="routine",
        alert_level="LOW",
    )
    interesting = routine.model_copy(
        update={"event_id": "ztf:interesting:1", "event_class": "interesting", "alert_level": "MEDIUM"}
    )
    store.add_events([routine, interesting])
    store.add_reviews([interesting])
    stored = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)  # the store stamps the wall clock; tests use a fake one
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE review_queue SET created_at = :t"), {"t": stored})
        conn.execute(sa.text("UPDATE events SET stored_at = :t"), {"t": stored})
    saturday = datetime(2026, 1, 10, 14, 0, tzinfo=timezone.utc)  # 11:00 in Chile, not a business day
    clock[0] = saturday
    notifier = notifier_for(config, store, clock)
    sent = notifier.digests_due()
    assert [row["alert_id"] for row in sent] == ["digest:20260110T140000Z"]  # the MEDIUM item; no LOW on Saturday
    assert "1 new for review" in receivers["slack"].received[-1]["body"]["text"]
    assert notifier.digests_due() == []  # the next one an hour later at the earliest, and nothing new
    clock[0] = datetime(2026, 1, 12, 13, 0, tzinfo=timezone.utc)  # Monday 10:00 in Chile, after 09:00
    [low] = notifier.digests_due()
    assert low["alert_id"] == "digest-low:2026-01-12"
    assert "ztf 1" in receivers["slack"].received[-1]["body"]["blocks"][1]["text"]["text"]
    assert notifier.digests_due() == []  # once a day
    notifier.close()


def test_alerts_check_finds_a_critical_event_with_no_alert_and_an_undelivered_high(setup, tmp_path, capsys):
    """The runbook's very symptom, "critical event detected but no alert": the event is stored, its alert row is
    not (a failed alert write, a routing bug). And a HIGH alert no channel delivered. Both make the check fail."""
    from cli.main import main

    _config, store, _receivers, _smtp, _clock = setup
    delivered = add_alert(store, 95)
    notifier = Notifier(store, load_config(tmp_path / "config"))
    notifier.notify_alert(delivered)
    notifier.close()
    lost = add_alert(store, 96)
    with store.engine.begin() as conn:  # the alert write that never happened
        conn.execute(sa.text("DELETE FROM notify_outbox WHERE alert_id = :a"), {"a": lost})
        conn.execute(alerts.delete().where(alerts.c.alert_id == lost))
    high = add_alert(store, 97, level="HIGH")  # stored, never sent
    injected = add_alert(store, 98, level="HIGH", injected=True)  # the injection test's: never paged, never flagged
    where = ["--db-url", store.url, "--config", str(tmp_path / "config")]

    found = {(item.event_id, item.level, item.problem) for item in unsent_alerts(store)}
    assert found == {("gcn:test:96", "CRITICAL", "no alert"), ("gcn:test:97", "HIGH", "not delivered")}
    assert main(["alerts", "check", *where]) == 1
    out = capsys.readouterr().out
    assert "1 critical/significant event(s) with NO ALERT" in out and "CRITICAL gcn:test:96" in out
    assert f"HIGH     {high}" in out and injected not in out and delivered not in out
    with store.engine.connect() as conn:
        details = conn.execute(sa.select(audit_log.c.after).where(audit_log.c.action == "alerts.check")).scalar_one()
    assert "gcn:test:96" in details and high in details
