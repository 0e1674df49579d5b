"""The public status page (issue 16 item 6): served by the API without a key, each component's state, the open
incidents with their latest update, notices from the handoff; and nothing a visitor should not see."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
import yaml

from access import accounts
from access.roles import AccessError, PermissionDenied
from config import load_config
from config.base import CONFIG_DIR
from ops import incidents, statuspage
from tests.live_api import serving
from tests.test_day_night import DAY
from tests.test_incidents import T0, stopped_feed, watch

PASSWORD = "a-long-enough-password"
CONFIG = load_config()
SECRET_HOOK = "http://127.0.0.1:19599/services/T000/B000/s3cr3t-hook"


@pytest.fixture
def incident(store, monkeypatch):
    monkeypatch.setenv("NIGHTWATCH_ALERT_WEBHOOK_URL", SECRET_HOOK)  # a secret the page must never show
    stopped_feed(store)
    found = watch(store, CONFIG, T0 + timedelta(minutes=20)).incident
    accounts.create_user_as_system(store, "test", "olivia.responder", "operator", PASSWORD)
    accounts.create_user_as_system(store, "test", "oscar", "observer", PASSWORD)
    return found


def test_components_and_incidents_in_public_words(store, incident):
    page = statuspage.status(store, CONFIG, T0 + timedelta(minutes=21))
    states = {part["name"]: part["state"] for part in page["components"]}
    assert states["ZTF (Telescope A)"] == "outage" and states["Event processing"] == "outage"
    assert page["overall"] == "Major outage"
    [shown] = page["incidents"]
    assert shown["name"] == "INC-1" and shown["title"] == statuspage.PUBLIC_TITLES["SEV-1"]
    assert shown["latest_update"]["text"] == statuspage.INVESTIGATING
    # By day the surveys' silence is no outage: they are "not observing".
    day = statuspage.status(store, CONFIG, DAY)
    assert {part["name"]: part["state"] for part in day["components"]}["ZTF (Telescope A)"] == "not observing"


def test_publishing_is_role_checked_and_audited(store, incident):
    with pytest.raises(PermissionDenied):
        statuspage.publish(store, "oscar", "all good")
    with pytest.raises(AccessError, match="needs its text"):
        statuspage.publish(store, "olivia.responder", "  ")
    statuspage.publish(store, "olivia.responder", "Night shift handed over; ZTF intake being restored.")
    assert statuspage.status(store, CONFIG, T0)["notices"][-1]["text"].startswith("Night shift handed over")


def test_served_without_a_key_and_leaking_nothing(store, incident, tmp_path):
    responder = "olivia.responder"
    incidents.acknowledge(store, responder, incident.incident_id, "internal: paging r.silva, job OOM on host nw-7")
    incidents.add_note(store, responder, incident.incident_id, "internal: db at 10.2.3.4 is slow")
    incidents.add_note(store, responder, incident.incident_id, "Alert processing is recovering.", public=True)
    statuspage.publish(store, responder, "Handoff: the night team is on it.", kind="handoff")
    with serving(str(store.engine.url), status_ttl_s=0) as base:
        data = requests.get(base + "/status.json", timeout=30)
        html = requests.get(base + "/status", timeout=30)
        assert requests.get(base + "/status.json?debug=1", timeout=30).status_code == 422
        assert requests.get(base + "/v1/incidents", timeout=30).status_code == 401  # the details need a key
    assert data.status_code == 200 and html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    page = data.json()
    [shown] = page["incidents"]
    assert shown["latest_update"]["text"] == "Alert processing is recovering."
    assert [update["text"] for update in shown["updates"]][:2] == [statuspage.INVESTIGATING, statuspage.IDENTIFIED]
    assert page["notices"][-1]["text"] == "Handoff: the night team is on it."
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", page["generated_at"])
    assert "INC-1" in html.text and "Alert processing is recovering." in html.text and "Handoff: the night" in html.text
    # Nothing internal: no people, addresses, accounts, notes kept internal, findings, hosts, secrets, store.
    oncall = yaml.safe_load((CONFIG_DIR / "oncall.yaml").read_text())
    people = [*oncall["people"], *(person["name"] for person in oncall["people"].values())]
    forbidden = [
        *people,
        "@",
        "olivia",
        responder,
        "internal:",
        "10.2.3.4",
        "expects",
        "/min",
        "nothing processed",
        incident.reason[:40],
        SECRET_HOOK,
        "s3cr3t",
        "sqlite",
        str(tmp_path),
        "system:watcher",
        "Traceback",
    ]
    for body in (data.text, html.text):
        for word in forbidden:
            assert word not in body, word
    assert not {"author", "reason", "actor", "pages", "checklist"} & _keys(page)


def test_an_update_is_escaped_in_the_html(store, incident):
    statuspage.publish(store, "olivia.responder", "<script>alert(1)</script> fixed")
    with serving(str(store.engine.url), status_ttl_s=0) as base:
        html = requests.get(base + "/status", timeout=30).text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_the_handoff_publishes_and_the_cli_shows_the_page(store, incident, tmp_path, capsys):
    from cli.main import main

    where = ["--output", str(tmp_path)]
    assert (
        main(["oncall", "handoff", *where, "--publish", "Shift handed over, INC-1 in hand", "--as", "olivia.responder"])
        == 0
    )
    assert "INC-1 SEV-1 open" in capsys.readouterr().out  # the handoff reviews the open incidents
    assert main(["oncall", "handoff", *where, "--publish", "x"]) == 2  # publishing needs someone
    assert main(["status", "show", *where]) == 0
    shown = capsys.readouterr().out
    assert "notice" in shown and "Shift handed over, INC-1 in hand" in shown and "INC-1 SEV-1" in shown
    assert main(["incidents", "note", "1", "Recovering now", "--public", "--as", "olivia.responder", *where]) == 0
    assert statuspage.status(store, CONFIG)["incidents"][0]["latest_update"]["text"] == "Recovering now"


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()
