"""Incidents through the external API (issue 18 item 11): the same listing and actions as the console and the
CLI, over real HTTP; observers read, operators respond, every change audited as the key's owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from access import accounts, apikeys
from config import load_config
from ops import incidents
from store.schema import audit_log
from tests.live_api import serving
from tests.test_incidents import T0, stopped_feed, watch

PASSWORD = "a-long-enough-password"


@pytest.fixture
def api(store):
    stopped_feed(store)
    watch(store, load_config(), T0 + timedelta(minutes=20))
    keys = {}
    for name, role in (("olga", "observer"), ("otto", "operator")):
        accounts.create_user_as_system(store, "test", name, role, PASSWORD)
        keys[role] = apikeys.create_key(store, "system:test", name, role)[0]
    with serving(str(store.engine.url)) as base:

        def call(method: str, path: str, role: str = "observer", **kwargs) -> requests.Response:
            headers = {"Authorization": f"Bearer {keys[role]}"}
            return requests.request(method, base + "/v1" + path, headers=headers, timeout=30, **kwargs)

        yield call


def test_observers_read_incidents(api):
    listing = api("GET", "/incidents")
    assert listing.status_code == 200, listing.text
    [row] = listing.json()["data"]
    assert row["name"] == "INC-1" and row["severity"] == "SEV-1" and row["status"] == "open"
    assert row["latest"]["kind"] in ("paged", "escalated")
    assert api("GET", "/incidents", params={"status": "resolved"}).json()["data"] == []
    one = api("GET", "/incidents/1").json()
    assert len(one["checklist"]) == 7 and one["timeline"][0]["kind"] == "opened" and one["pages"][0]["step"] == 0
    assert api("GET", "/incidents/99").status_code == 404
    assert api("GET", "/incidents", params={"stauts": "open"}).status_code == 422  # a misspelt filter
    refused = api("POST", "/incidents/1/acknowledge", json={"note": "me"})
    assert refused.status_code == 403 and "Operator" in refused.json()["error"]["message"]


def test_operators_respond_as_in_the_console(api, store):
    acked = api("POST", "/incidents/1/acknowledge", "operator", json={"note": "on it"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_by"] == "otto"
    assert api("POST", "/incidents/1/acknowledge", "operator", json={"note": "again"}).status_code == 409
    assert api("POST", "/incidents/1/acknowledge", "operator", json={"note": " "}).status_code == 422
    noted = api("POST", "/incidents/1/notes", "operator", json={"text": "job restarted"})
    assert noted.json()["timeline"][-1]["text"] == "job restarted"
    ticked = api("POST", "/incidents/1/checklist/2", "operator", json={})
    assert ticked.json()["checklist"][1]["done_by"] == "otto"
    assert api("POST", "/incidents/1/checklist/42", "operator", json={}).status_code == 409
    resolved = api("POST", "/incidents/1/resolve", "operator", json={"note": "recovered"})
    assert resolved.json()["status"] == "resolved" and incidents.active_incident(store) is None
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action).where(audit_log.c.target == "incident:1")
        ).all()
    assert [tuple(row) for row in rows][1:] == [
        ("otto", "incident.acknowledged"),
        ("otto", "incident.note"),
        ("otto", "incident.tick"),
        ("otto", "incident.resolved"),
    ]
