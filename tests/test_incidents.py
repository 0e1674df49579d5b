"""Incidents (issue 16 item 4): the health watcher on a fake clock opens an incident when a feed stops during the
night, pages the on-call (a real local HTTP receiver), escalates at 15/30/60 min, stops when someone
acknowledges, and resolves when health recovers; people act through one role-checked, audited code path."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from access import accounts
from access.roles import AccessError, PermissionDenied
from config import load_config
from config.base import CONFIG_DIR
from ops import incidents
from ops.notify import Notifier
from ops.oncall import on_call
from store.schema import audit_log
from tests.conftest import window_rows

T0 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # 01:00 at Cerro Pachon: the surveys should be sending
PASSWORD = "a-long-enough-password"
PORTS = range(19510, 19540)  # this suite's share of the project's test ports


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with self.server.lock:
            self.server.received.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lock: threading.Lock
    received: list[dict[str, Any]]


@pytest.fixture
def receiver():
    """A real HTTP server on one of this suite's ports: the on-call's webhook."""
    for port in PORTS:
        try:
            server = _Server(("127.0.0.1", port), _Handler)
            break
        except OSError:
            continue
    else:
        pytest.skip("no free port in 19510-19539")
    server.lock, server.received = threading.Lock(), []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def night_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: _Server):
    """The shipped configuration, with every on-call person reached on the webhook channel (the receiver), and the
    engineering lead covering nights too (shipped: business hours only, a step skipped at night)."""
    monkeypatch.setenv("NIGHTWATCH_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{receiver.server_address[1]}/page")
    for name in ("NIGHTWATCH_PAGERDUTY_ROUTING_KEY", "NIGHTWATCH_SLACK_WEBHOOK_URL", "NIGHTWATCH_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    oncall = yaml.safe_load((CONFIG_DIR / "oncall.yaml").read_text())
    for person_id, person in oncall["people"].items():
        person.update(channel="webhook", to=f"{person_id}@facility.org")
    oncall["roles"]["engineering_lead"]["coverage"] = "24/7"
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "oncall.yaml").write_text(yaml.safe_dump(oncall))
    return load_config(folder)


def stopped_feed(store) -> None:
    """Every source sending normally until T0, then nothing."""
    store.upsert_metrics(window_rows(T0, gcn={"received": 1, "stored": 1, "rate_per_min": 1.0}))


def responder(store, name: str = "ops1", role: str = "operator") -> str:
    accounts.create_user_as_system(store, "test", name, role, PASSWORD)
    return name


def watch(store, config, now: datetime) -> incidents.watcher.Pass:
    notifier = Notifier(store, config, clock=lambda: now)
    try:
        return incidents.watch_once(store, config, notifier, now)
    finally:
        notifier.close()


def pages(receiver: _Server) -> list[tuple[str, str | None]]:
    return [(body["action"], body.get("recipient")) for body in receiver.received]


def test_a_stopped_feed_at_night_opens_pages_escalates_and_resolves(store, night_config, receiver):
    stopped_feed(store)
    opened_at = T0 + timedelta(minutes=20)
    first = watch(store, night_config, opened_at)
    assert first.severity == "SEV-1" and first.incident is not None
    incident = first.incident
    assert incident.status == "open" and incident.severity == "SEV-1" and "ztf expects" in incident.reason
    # The guide's SEV-1 procedure, 7 steps, to tick.
    assert [item["text"] for item in incident.checklist][:2] == [
        "Acknowledge alert",
        "Assess scope (which components affected?)",
    ]
    assert len(incident.checklist) == 7 and incident.checklist[-1]["text"] == "Document incident"
    # Paged at once: the opening page on the configured channels and the primary on-call, through real HTTP.
    who = {role: entry.person_id for role, entry in on_call(night_config.oncall, opened_at).items()}
    assert pages(receiver) == [("trigger", None), ("escalate-0", f"{who['primary']}@facility.org")]
    assert receiver.received[0]["alert_id"] == incident.key and "SEV-1" in receiver.received[0]["title"]

    # A pass in between changes nothing; the ladder climbs at 15, 30 and 60 minutes.
    watch(store, night_config, opened_at + timedelta(minutes=10))
    assert len(receiver.received) == 2
    for step, (minutes, role) in enumerate(((15, "secondary"), (30, "engineering_lead"), (60, "director")), 1):
        watch(store, night_config, opened_at + timedelta(minutes=minutes))
        assert pages(receiver)[-1] == (f"escalate-{step}", f"{who[role]}@facility.org")
    assert len(receiver.received) == 5
    incident = incidents.get_incident(store, incident.incident_id)
    assert [page["after_min"] for page in incident.pages] == [0, 15, 30, 60]
    assert all(page["status"] == "paged" for page in incident.pages)
    kinds = [line["kind"] for line in incident.timeline]
    assert kinds == ["opened", "paged", "paged", "escalated", "escalated", "escalated"]

    # Someone acknowledges: the ladder stops, the pager hears it, step 1 of the procedure is ticked.
    name = responder(store)
    incidents.acknowledge(store, name, incident.incident_id, "looking at the job", config=night_config)
    assert pages(receiver)[-1][0] == "acknowledge"
    incident = incidents.get_incident(store, incident.incident_id)
    assert incident.status == "acknowledged" and incident.checklist[0]["done_by"] == name
    incidents.tick(store, name, incident.incident_id, 2, "ZTF and Rubin both silent")
    incidents.add_note(store, name, incident.incident_id, "the streaming job had crashed: restarting it")

    # Health recovers: the feed flows again; after resolve_after_min (5) the watcher resolves it.
    back = opened_at + timedelta(minutes=90)
    store.upsert_metrics(window_rows(back))
    assert watch(store, night_config, back).incident.status == "resolved"
    resolved = incidents.get_incident(store, incident.incident_id)
    assert resolved.resolved_by == incidents.WATCHER and "health recovered" in resolved.timeline[-1]["text"]
    assert pages(receiver)[-1][0] == "resolve"
    assert [line["kind"] for line in resolved.timeline][-4:] == ["acknowledged", "tick", "note", "resolved"]
    # The post-incident review, and every change audited (the watcher's and the person's).
    incidents.review(store, name, incident.incident_id, "SEV-1 for 70 min at night", "job crashed: out of memory")
    assert incidents.get_incident(store, incident.incident_id).review["root_cause"] == "job crashed: out of memory"
    with store.engine.connect() as conn:
        audited = conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action).where(audit_log.c.target == incident.key)
        )
        actions = [tuple(row) for row in audited]
    assert actions == [
        (incidents.WATCHER, "incident.open"),
        (name, "incident.acknowledged"),
        (name, "incident.tick"),
        (name, "incident.note"),
        (incidents.WATCHER, "incident.resolve"),
        (name, "incident.review"),
    ]


def test_acknowledging_stops_the_ladder(store, night_config, receiver):
    stopped_feed(store)
    opened_at = T0 + timedelta(minutes=20)
    incident = watch(store, night_config, opened_at).incident
    incidents.acknowledge(store, responder(store), incident.incident_id, "on it", config=night_config)
    for minutes in (15, 30, 60):
        watch(store, night_config, opened_at + timedelta(minutes=minutes))
    assert [action for action, _ in pages(receiver)] == ["trigger", "escalate-0", "acknowledge"]
    assert [page["step"] for page in incidents.get_incident(store, incident.incident_id).pages] == [0]


def test_one_incident_at_a_time_and_a_worse_level_raises_it(store, night_config, receiver):
    stopped_feed(store)
    first = watch(store, night_config, T0 + timedelta(minutes=20)).incident
    again = watch(store, night_config, T0 + timedelta(minutes=21)).incident
    assert again.incident_id == first.incident_id and len(incidents.list_incidents(store)) == 1
    assert incidents.watcher.worse("SEV-1", "SEV-2") and not incidents.watcher.worse("SEV-3", "SEV-2")


def test_sev3_opens_an_incident_only_on_request(store, night_config, receiver):
    # The surveys flow at half their expected rate: event rate out of range, SEV-3.
    half = {source: {"received": 350 if source == "ztf" else 3500} for source in ("ztf", "rubin")}
    store.upsert_metrics(window_rows(T0, **half))
    assert watch(store, night_config, T0).severity == "SEV-3"
    assert watch(store, night_config, T0).incident is None
    raised = incidents.watch_once(
        store, night_config, Notifier(store, night_config), T0, levels=["SEV-1", "SEV-2", "SEV-3"]
    )
    assert raised.incident is not None and raised.incident.severity == "SEV-3"
    assert raised.incident.checklist  # the runbook health named (the event rate's)


def test_actions_are_role_checked_and_need_notes(store, night_config, receiver):
    stopped_feed(store)
    incident = watch(store, night_config, T0 + timedelta(minutes=20)).incident
    observer = responder(store, "watcher1", "observer")
    with pytest.raises(PermissionDenied, match="Operator"):
        incidents.acknowledge(store, observer, incident.incident_id, "me", config=night_config)
    operator = responder(store)
    with pytest.raises(AccessError, match="needs a note"):
        incidents.acknowledge(store, operator, incident.incident_id, "  ", config=night_config)
    with pytest.raises(AccessError, match="no step 9"):
        incidents.tick(store, operator, incident.incident_id, 9)
    with pytest.raises(AccessError, match="once it is resolved"):
        incidents.review(store, operator, incident.incident_id, "s", "cause")
    incidents.resolve(store, operator, incident.incident_id, "fixed by restarting", config=night_config)
    with pytest.raises(AccessError, match="already resolved"):
        incidents.resolve(store, operator, incident.incident_id, "again", config=night_config)
    assert incidents.active_incident(store) is None


def test_the_cli_watches_on_a_fake_clock_and_responders_act(store, night_config, receiver, tmp_path, capsys):
    from cli.main import main

    stopped_feed(store)
    name = responder(store)
    where = ["--output", str(tmp_path), "--config", str(tmp_path / "config")]
    opened_at = T0 + timedelta(minutes=20)
    assert main(["watch", *where, "--at", opened_at.isoformat()]) == 0
    assert "SEV-1  INC-1 open" in capsys.readouterr().out
    assert main(["watch", *where, "--at", (opened_at + timedelta(minutes=15)).isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["did"][0].startswith("step 1 (15 min: page backup on-call)")
    assert main(["incidents", "ack", "1", "--as", name, "--note", "on it", *where]) == 0
    assert main(["incidents", "tick", "1", "2", "--as", name, *where]) == 0
    assert main(["incidents", "note", "1", "restarting the job", "--as", name, *where]) == 0
    assert main(["incidents", "show", "1", *where]) == 0
    shown = capsys.readouterr().out
    assert "[x] (ops1" in shown and "1. Acknowledge alert" in shown and "restarting the job" in shown
    assert "step 1 (+15 min) secondary" in shown
    assert main(["incidents", "list", "--active", *where]) == 0
    assert "INC-1" in capsys.readouterr().out
    # Without a role that may respond: refused, one line, nothing changed.
    responder(store, "viewer", "observer")
    assert main(["incidents", "resolve", "1", "--as", "viewer", "--note", "x", *where]) == 2
    assert "needs the Operator role" in capsys.readouterr().err


def test_the_console_page_ticks_acknowledges_and_is_read_only_for_observers(store, tmp_path, monkeypatch):
    from tests.test_access import with_people
    from tests.test_dashboard import goto, login, texts

    monkeypatch.setenv("NIGHTWATCH_OUTPUT", str(tmp_path))
    monkeypatch.delenv("NIGHTWATCH_DB_URL", raising=False)
    with_people(store)
    stopped_feed(store)
    config = load_config()
    incident = watch(store, config, T0 + timedelta(minutes=20)).incident

    at = goto(login("obs"), "Incidents")
    assert "INC-1 SEV-1" in texts(at) and "needs the Operator role" in texts(at)
    assert at.checkbox(key=f"incident_step:{incident.incident_id}:2:0").disabled

    at = goto(login("ops"), "Incidents")
    at.checkbox(key=f"incident_step:{incident.incident_id}:2:0").check().run()
    assert not at.exception, at.exception
    at.text_area(key=f"incident_note:{incident.incident_id}").input("looking at it")
    at.button(key=f"incident_ack:{incident.incident_id}").click().run()
    assert not at.exception, at.exception
    done = incidents.get_incident(store, incident.incident_id)
    assert done.status == "acknowledged" and done.acknowledged_by == "ops"
    assert [item["done_by"] for item in done.checklist[:2]] == ["ops", "ops"]
