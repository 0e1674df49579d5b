"""The external API over real HTTP: `nightwatch api` serving a store filled by a real pipeline run.

One server (a subprocess, as an operator starts it) is shared by the module; keys are made with the real
`nightwatch api-keys` command and access.apikeys. Checks compare what the API answers with what the store
and the warm tier hold, read independently.

Why this module is long: every endpoint is checked against one shared server (a subprocess filled by a real
run), which is started once per module; splitting it would start that server again per file.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import fastavro
import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
import schemathesis
import sqlalchemy as sa
from astropy import units as u
from astropy.coordinates import SkyCoord
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from access import accounts, apikeys
from core.event import Event, utcnow
from store.hot import HotStore
from store.schema import alerts, audit_log, events, review_queue
from store.tiers import read_warm

REPO = Path(__file__).resolve().parents[1]
NIGHTWATCH = [sys.executable, "-m", "cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    # Key changes act as the Super Admin `admin` (--as admin), whose password a script gives in the environment.
    env = {**os.environ, "NIGHTWATCH_PASSWORD": "a-long-enough-password"}
    done = subprocess.run([*NIGHTWATCH, *args], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert done.returncode == 0, done.stderr
    return done


class Api:
    """The running server, the store under it, and the keys the tests use."""

    def __init__(self, base: str, output: Path, store: HotStore, keys: dict[str, str]):
        self.base, self.output, self.store, self.keys = base, output, store, keys

    def get(self, path: str, key: str | None = "observer", **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return requests.get(self.base + path, headers=headers | kwargs.pop("headers", {}), timeout=30, **kwargs)

    def post(self, path: str, body: dict, key: str = "operator") -> requests.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"}
        return requests.post(self.base + path, json=body, headers=headers, timeout=30)

    def all_pages(self, path: str, key: str = "observer") -> list[dict]:
        rows, url = [], self.base + path
        while url:
            answer = requests.get(url, headers={"Authorization": f"Bearer {self.keys[key]}"}, timeout=30)
            assert answer.status_code == 200, answer.text
            rows += answer.json()["data"]
            url = answer.json()["next"]
        return rows


def start_api(output: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`nightwatch api` over `output` on a free port, as an operator starts it; returns once /v1/health answers."""
    port = free_port()
    server = subprocess.Popen(
        [*NIGHTWATCH, "api", "--port", str(port), "--output", str(output), *flags],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/v1/health", timeout=2).status_code == 200:
                return server, base
        except requests.ConnectionError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.stdout else ""
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Api:
    from pipeline.batch import run

    output = tmp_path_factory.mktemp("api")
    summary = run(["--simulate=150", f"--output={output}", "--run_id=api-run"])
    assert summary.ok
    store = HotStore(f"sqlite:///{output / 'nightwatch.db'}")
    store.ensure_schema()
    accounts.bootstrap(store, "admin", "a-long-enough-password")
    accounts.create_user_as_system(store, "test", "olga", "observer", "a-long-enough-password")
    accounts.create_user_as_system(store, "test", "otto", "operator", "a-long-enough-password")
    # The observer's key through the real command: the token is printed once, on the line after the notice.
    created = cli(
        "api-keys", "create", "--user", "olga", "--role", "observer", "--output", str(output), "--as", "admin"
    )
    keys = {"observer": created.stdout.splitlines()[1].strip()}
    keys["operator"], _ = apikeys.create_key(store, "test", "otto", "operator")
    keys["fuzz"], _ = apikeys.create_key(store, "test", "otto", "operator", "fuzzing", rate_per_min=100000, burst=5000)
    server, base = start_api(output, "--rate-limit", "6000", "--burst", "2000")
    yield Api(base, output, store, keys)
    server.terminate()
    server.wait(timeout=20)
    store.close()


def stored(api: Api) -> dict[str, dict]:
    """Every event the API should know, read straight from the hot store and the warm tier."""
    everything = {row["event_id"]: row for row in read_warm(str(api.output / "warm")).to_pylist()}
    with api.store.engine.connect() as conn:
        for event_id, payload in conn.execute(sa.select(events.c.event_id, events.c.payload)):
            everything[event_id] = json.loads(payload)
    return everything


def assert_error(answer: requests.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


# --- authentication and roles ----------------------------------------------------------------------------------


def test_health_needs_no_key_but_everything_else_does(api):
    assert api.get("/v1/health", key=None).json()["status"] == "ok"
    for path in ("/v1/events", "/v1/alerts", "/v1/review-queue", "/v1/metrics", "/v1/events/cone?ra=1&dec=1&radius=1"):
        answer = api.get(path, key=None)
        assert_error(answer, 401, "unauthorized")
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    bad = requests.get(api.base + "/v1/events", headers={"Authorization": "Bearer nw_not-a-key"}, timeout=10)
    assert "unknown API key" in assert_error(bad, 401, "unauthorized")["message"]
    basic = requests.get(api.base + "/v1/events", headers={"Authorization": "Basic b2xnYTpwdw=="}, timeout=10)
    assert_error(basic, 401, "unauthorized")


def test_a_revoked_key_is_refused_on_the_next_request_and_the_change_is_audited(api):
    token, key = apikeys.create_key(api.store, "test", "olga", "observer", "to revoke")
    api.keys["doomed"] = token
    assert api.get("/v1/alerts", key="doomed").status_code == 200
    cli("api-keys", "revoke", key.key_id, "--reason", "leaked", "--output", str(api.output), "--as", "admin")
    error = assert_error(api.get("/v1/alerts", key="doomed"), 401, "unauthorized")
    assert "revoked" in error["message"] and error["details"] == {"key_id": key.key_id}
    again = cli("api-keys", "revoke", key.key_id, "--output", str(api.output), "--as", "admin", check=False)
    assert again.returncode == 2 and "already revoked" in again.stderr
    listing = cli("api-keys", "list", "--output", str(api.output)).stdout
    assert f"{key.key_id}" in listing and "revoked" in listing.split(key.key_id)[1].splitlines()[0]
    assert not any(token in line for line in listing.splitlines())  # the token is never shown again
    with api.store.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action).where(audit_log.c.target == key.key_id)).scalars().all()
    assert actions == ["api_key.create", "api_key.revoke"]
    # The store holds the hash only.
    with api.store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM api_keys WHERE token_sha256 = :t"), {"t": token}).scalar() == 0
        )


def test_a_key_follows_its_owner_revoked_user_and_lowered_role(api):
    accounts.create_user_as_system(api.store, "test", "petra", "operator", "a-long-enough-password")
    api.keys["petra"], _ = apikeys.create_key(api.store, "test", "petra", "operator")
    accounts.set_role(api.store, "admin", "petra", "observer", "moved to science")
    alert_id = api.get("/v1/alerts?limit=1").json()["data"][0]["alert_id"]
    # "Automatic on role change": the key made under the old role stops working at once, reads included.
    refused = api.post(f"/v1/alerts/{quote(alert_id, safe='')}/acknowledge", {"note": "mine"}, key="petra")
    assert "revoked" in assert_error(refused, 401, "unauthorized")["message"]
    assert "revoked" in assert_error(api.get("/v1/alerts", key="petra"), 401, "unauthorized")["message"]
    api.keys["petra"], _ = apikeys.create_key(api.store, "test", "petra", "observer")  # a key of her new role
    assert api.get("/v1/alerts", key="petra").status_code == 200
    refused = api.post(f"/v1/alerts/{quote(alert_id, safe='')}/acknowledge", {"note": "mine"}, key="petra")
    assert_error(refused, 403, "forbidden")
    accounts.revoke(api.store, "admin", "petra", "left the project")
    assert "revoked" in assert_error(api.get("/v1/alerts", key="petra"), 401, "unauthorized")["message"]


def test_key_creation_refuses_unknown_users_and_roles_above_the_owner(api):
    unknown = cli(
        "api-keys",
        "create",
        "--user",
        "nobody",
        "--role",
        "observer",
        "--output",
        str(api.output),
        "--as",
        "admin",
        check=False,
    )
    assert unknown.returncode == 2 and "no user 'nobody'" in unknown.stderr
    above = cli(
        "api-keys",
        "create",
        "--user",
        "olga",
        "--role",
        "operator",
        "--output",
        str(api.output),
        "--as",
        "admin",
        check=False,
    )
    assert above.returncode == 2 and "cannot hold more than its owner" in above.stderr


# --- events ----------------------------------------------------------------------------------------------------


def test_paging_through_events_returns_every_stored_event_once_in_order(api):
    expected = stored(api)
    rows = api.all_pages("/v1/events?limit=37")
    ids = [row["event_id"] for row in rows]
    assert len(ids) == len(set(ids)) == len(expected) > 100
    assert set(ids) == set(expected)
    keys = [(row["event_time"], row["event_id"]) for row in rows]
    assert keys == sorted(keys)
    assert {row["tier"] for row in rows} == {"hot"}  # every event is in both tiers: the hot copy wins


def test_event_filters_agree_with_the_store(api):
    expected = list(stored(api).values())
    for query, keep in (
        ("class=significant", lambda e: e["event_class"] == "significant"),
        ("source=gcn", lambda e: e["source"] == "gcn"),
        ("source=ztf&class=rejected", lambda e: e["source"] == "ztf" and e["event_class"] == "rejected"),
        ("kind=grb", lambda e: e["kind"] == "grb"),
        ("min_score=0.6", lambda e: (e["score"] or 0) >= 0.6),
    ):
        got = {row["event_id"] for row in api.all_pages(f"/v1/events?limit=500&{query}")}
        want = {e["event_id"] for e in expected if keep(e)}
        assert got == want and want, query
    times = sorted(datetime.fromisoformat(str(e["event_time"]).replace("Z", "+00:00")) for e in expected)
    since, until = times[10], times[40]
    window = api.all_pages(f"/v1/events?since={quote(since.isoformat())}&until={quote(until.isoformat())}")
    assert len(window) == sum(1 for t in times if since <= t < until) == 30
    some = next(e for e in expected if e["object_id"])
    by_object = api.all_pages(f"/v1/objects/{quote(some['object_id'], safe='')}/events")
    assert {row["object_id"] for row in by_object} == {some["object_id"]}
    assert len(by_object) == sum(1 for e in expected if e["object_id"] == some["object_id"])
    assert api.all_pages(f"/v1/events?object_id={quote(some['object_id'])}") == by_object


def test_event_by_id_and_its_lineage(api):
    expected = stored(api)
    # GCN VOEvent ids hold '/', '#' and ':': percent-encoded, they are one path segment.
    awkward = next(event_id for event_id in expected if "/" in event_id and "#" in event_id)
    answer = api.get(f"/v1/events/{quote(awkward, safe='')}")
    assert answer.status_code == 200 and answer.json()["event_id"] == awkward
    alert = api.get("/v1/alerts?limit=1").json()["data"][0]
    event = api.get(f"/v1/events/{quote(alert['event_id'], safe='')}").json()
    payload = expected[alert["event_id"]]
    assert event["lineage"] == payload["lineage"] and event["enrichments"] == payload["enrichments"]
    assert event["enrichments"], "the built-in agents enrich alerts"
    lineage = api.get(f"/v1/events/{quote(alert['event_id'], safe='')}/lineage").json()
    assert lineage["rules_version"] == payload["lineage"]["rules_version"]
    assert lineage["filter_version"] == payload["lineage"]["filter_version"]
    assert lineage["decided_by"] == payload["lineage"]["decided_by"]
    assert lineage["matched_rules"] == payload["matched_rules"] and lineage["reasons"] == payload["reasons"]
    assert lineage["enrichments"] == payload["enrichments"]
    assert lineage["alert"]["alert_id"] == alert["alert_id"] and lineage["review"] is None
    queued = api.get("/v1/review-queue?limit=1").json()["data"][0]
    assert api.get(f"/v1/events/{quote(queued['event_id'], safe='')}/lineage").json()["review"]["status"] == "pending"
    assert_error(api.get("/v1/events/ztf%3Anope"), 404, "not_found")
    assert_error(api.get("/v1/events/ztf%3Anope/lineage"), 404, "not_found")


def test_an_event_only_in_the_warm_tier_is_still_served(api):
    """Retention removes routine events from the hot store after 7 days; the warm tier keeps them a year."""
    with api.store.engine.begin() as conn:
        event_id = (
            conn.execute(
                sa.select(events.c.event_id).where(events.c.event_class == "routine").order_by(events.c.event_id)
            )
            .scalars()
            .first()
        )
        row = conn.execute(sa.select(events).where(events.c.event_id == event_id)).first()
        conn.execute(events.delete().where(events.c.event_id == event_id))
    try:
        one = api.get(f"/v1/events/{quote(event_id, safe='')}").json()
        assert one["tier"] == "warm" and one["event_id"] == event_id
        assert one["lineage"] == json.loads(row.payload)["lineage"]
        assert event_id in {e["event_id"] for e in api.all_pages("/v1/events?limit=500&class=routine")}
        assert event_id not in {e["event_id"] for e in api.all_pages("/v1/events?limit=500&class=routine&tier=hot")}
        warm_only = api.all_pages("/v1/events?limit=500&tier=warm")
        assert {e["tier"] for e in warm_only} == {"warm"} and len(warm_only) == len(stored(api))
        cone = api.get(f"/v1/events/cone?ra={row.ra}&dec={row.dec}&radius=0.001").json()["data"]
        assert [(hit["event_id"], hit["tier"]) for hit in cone] == [(event_id, "warm")]
    finally:
        with api.store.engine.begin() as conn:
            conn.execute(events.insert().values(**row._mapping))


def brute_force(everything: dict[str, dict], ra: float, dec: float, radius: float) -> dict[str, float]:
    placed = [e for e in everything.values() if e["ra"] is not None and e["dec"] is not None]
    coords = SkyCoord([e["ra"] for e in placed] * u.deg, [e["dec"] for e in placed] * u.deg)
    separations = coords.separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
    return {e["event_id"]: s for e, s in zip(placed, separations, strict=True) if s <= radius}


def test_cone_search_matches_a_brute_force_search_over_every_stored_event(api):
    everything = stored(api)
    rng = np.random.default_rng(8)
    on_source = [(e["ra"], e["dec"]) for e in list(everything.values())[:: max(1, len(everything) // 8)] if e["ra"]]
    centres = [
        *on_source,
        *zip(rng.uniform(0, 360, 8), np.degrees(np.arcsin(rng.uniform(-1, 1, 8))), strict=True),
        (359.95, 0.0),  # RA wrap-around, both sides
        (0.02, -20.0),
        (120.0, 89.9),  # the poles
        (300.0, -89.5),
        (10.0, 60.0),  # a box wider than the cone at high declination
    ]
    found = 0
    for ra, dec in centres:
        for radius in (0.05, 2.0, 15.0, 60.0, 180.0):
            want = brute_force(everything, ra, dec, radius)
            answer = api.get(f"/v1/events/cone?ra={ra}&dec={dec}&radius={radius}&limit=1000")
            assert answer.status_code == 200, answer.text
            hits = answer.json()["data"]
            assert {h["event_id"] for h in hits} == set(want), (ra, dec, radius)
            for hit in hits:
                assert hit["separation_deg"] == pytest.approx(want[hit["event_id"]], abs=1e-9)
            assert [h["separation_deg"] for h in hits] == sorted(h["separation_deg"] for h in hits)
            found += len(hits)
    placed = sum(1 for e in everything.values() if e["ra"] is not None)
    assert found > placed  # the radius-180 cones alone return every placed event
    # Paging through a cone gives the same hits, nearest first.
    paged = api.all_pages("/v1/events/cone?ra=180&dec=0&radius=100&limit=7")
    want = brute_force(everything, 180, 0, 100)
    assert [h["event_id"] for h in paged] == sorted(want, key=lambda event_id: (want[event_id], event_id))


def test_bad_parameters_are_422_with_the_error_shape(api):
    for path, location in (
        ("/v1/events/cone?ra=400&dec=0&radius=1", "query.ra"),
        ("/v1/events/cone?ra=10&dec=-91&radius=1", "query.dec"),
        ("/v1/events/cone?ra=10&dec=0&radius=0", "query.radius"),
        ("/v1/events/cone?ra=nan&dec=0&radius=1", "query.ra"),
        ("/v1/events/cone?dec=0&radius=1", "query.ra"),
        ("/v1/events?limit=0", "query.limit"),
        ("/v1/events?limit=5000", "query.limit"),
        ("/v1/events?class=boring", "query.class"),
        ("/v1/events?since=yesterday", "query.since"),
        ("/v1/events?format=csv", "query.format"),
        ("/v1/alerts?level=LOW", "query.level"),
        ("/v1/events?cursor=not-ours", "query.cursor"),
        ("/v1/events?clas=critical", "query.clas"),  # a misspelt filter is refused, not ignored
    ):
        error = assert_error(api.get(path), 422, "invalid_request")
        assert error["details"][0]["location"] == location, (path, error)
    alerts_cursor = api.get("/v1/alerts?limit=1").json()["next_cursor"]
    error = assert_error(api.get(f"/v1/events?cursor={alerts_cursor}"), 422, "invalid_request")
    assert "next" in error["message"]
    assert_error(api.get("/v1/nothing-here"), 404, "not_found")
    wrong_method = requests.delete(api.base + "/v1/events", timeout=10)
    assert_error(wrong_method, 405, "method_not_allowed")


def crafted_cursor(*values) -> str:
    import base64

    raw = json.dumps(list(values), separators=(",", ":")).encode()  # ensure_ascii: "\\udfff", "\\u0000"
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED = {
    "year 1 at +05:00": lambda name: crafted_cursor(name, "0001-01-01T00:00:00+05:00", "x"),
    "year 9999 at -05:00": lambda name: crafted_cursor(name, "9999-12-31T23:59:59-05:00", "x"),
    "a 400-digit number": lambda name: crafted_cursor(name, 10**400, "x"),
    "a lone surrogate": lambda name: crafted_cursor(name, "2025-09-06T02:00:00+00:00", "\udfff"),
    "a NUL": lambda name: crafted_cursor(name, "2025-09-06T02:00:00+00:00", "a\x00b"),
    "a huge cursor": lambda name: crafted_cursor(name, "2025-09-06T02:00:00+00:00", "x" * 5000),
}
CONE_CRAFTED = {
    "a 400-digit number": crafted_cursor("cone", 10**400, "x"),
    "a lone surrogate": crafted_cursor("cone", 1.5, "\udfff"),
    "a NUL": crafted_cursor("cone", 1.5, "\x00"),
    "a boolean": crafted_cursor("cone", True, "x"),
}


@pytest.mark.parametrize("crafted", sorted(CRAFTED))
def test_crafted_cursors_are_422_never_500(api, crafted):
    """Issue 15 item 6: crafted cursors on every listing, the cone search and Last-Event-ID."""
    for path, listing in (("/v1/events", "events"), ("/v1/alerts", "alerts"), ("/v1/review-queue", "review")):
        error = assert_error(api.get(path, params={"cursor": CRAFTED[crafted](listing)}), 422, "invalid_request")
        assert error["details"][0]["location"] == "query.cursor", (path, error)
    if crafted in CONE_CRAFTED:
        cone = api.get("/v1/events/cone?ra=10&dec=0&radius=5", params={"cursor": CONE_CRAFTED[crafted]})
        assert_error(cone, 422, "invalid_request")
    if len(CRAFTED[crafted]("alerts")) <= 2048:  # the header's own length limit answers 422 first otherwise
        headers = {"Last-Event-ID": CRAFTED[crafted]("alerts")}
        with api.get("/v1/alerts/stream", headers=headers, stream=True) as feed:
            assert_error(feed, 422, "invalid_request")


def test_crafted_cursor_values_are_refused_before_any_query(postgres_url):
    """The checks hold whatever the store: on PostgreSQL (where a NUL fails the query) nothing reaches SQL."""
    from api import queries
    from api.cursors import decode_cursor
    from api.errors import ApiError

    for crafted in CRAFTED.values():
        with pytest.raises(ApiError) as refused:
            decode_cursor("events", crafted("events"), queries.EVENT_KEY)
        assert refused.value.status == 422
    store = HotStore(postgres_url)
    store.ensure_schema()
    good = decode_cursor("events", crafted_cursor("events", "2025-09-06T02:00:00+00:00", "ztf:1"), queries.EVENT_KEY)
    assert queries.hot_events(store, queries.EventFilter(), good, 5) == []
    store.close()


# --- alerts, acknowledging, review queue, metrics -------------------------------------------------------------


def test_alerts_list_and_filters_agree_with_the_store(api):
    with api.store.engine.connect() as conn:
        rows = {r.alert_id: r for r in conn.execute(sa.select(alerts))}
    listed = api.all_pages("/v1/alerts?limit=5")
    assert {a["alert_id"] for a in listed} == set(rows) and len(listed) == len(rows) > 5
    for alert in listed:
        assert alert["status"] == rows[alert["alert_id"]].status and alert["dedup_key"] == alert["alert_id"]
        due = datetime.fromisoformat(alert["respond_by"]) - datetime.fromisoformat(alert["created_at"])
        assert due == {"CRITICAL": timedelta(minutes=15), "HIGH": timedelta(hours=1)}[alert["level"]]
        assert alert["source"] and alert["event_time"]
    critical = api.all_pages("/v1/alerts?level=HIGH")
    assert {a["alert_id"] for a in critical} == {i for i, r in rows.items() if r.level == "HIGH"}


def test_an_operator_key_acknowledges_through_the_consoles_audited_path(api):
    alert_id = api.get("/v1/alerts?status=open&level=HIGH&limit=1").json()["data"][0]["alert_id"]
    path = f"/v1/alerts/{quote(alert_id, safe='')}/acknowledge"
    assert_error(api.post(path, {"note": "seen"}, key="observer"), 403, "forbidden")
    assert_error(api.post(path, {"note": "   "}), 422, "invalid_request")
    assert_error(api.post(path, {}), 422, "invalid_request")
    done = api.post(path, {"note": "paged the science lead"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "acknowledged"
    assert [(h["action"], h["actor"], h["note"]) for h in body["history"]] == [
        ("acknowledge", "otto", "paged the science lead")
    ]
    with api.store.engine.connect() as conn:
        audited = conn.execute(sa.select(audit_log).where(audit_log.c.target == alert_id)).all()
    assert [(a.actor, a.action) for a in audited] == [("otto", "alert.acknowledge")]
    again = assert_error(api.post(path, {"note": "again"}), 409, "conflict")
    assert "acknowledged" in again["message"]
    assert api.get(f"/v1/alerts/{quote(alert_id, safe='')}").json()["status"] == "acknowledged"
    assert_error(api.post("/v1/alerts/alert%3Anope/acknowledge", {"note": "x"}), 404, "not_found")
    assert_error(api.get("/v1/alerts/alert%3Anope"), 404, "not_found")


def test_escalate_and_resolve_as_in_the_console_and_counts_agree_with_it(api):
    from ops.levels import level_counts

    alert_id = api.get("/v1/alerts?status=open&level=HIGH&limit=1").json()["data"][0]["alert_id"]
    base = f"/v1/alerts/{quote(alert_id, safe='')}"
    assert_error(api.post(f"{base}/escalate", {"note": "x"}, key="observer"), 403, "forbidden")
    escalated = api.post(f"{base}/escalate", {"note": "needs the science lead"})
    assert escalated.status_code == 200, escalated.text and escalated.json()["status"] == "escalated"
    resolved = api.post(f"{base}/resolve", {"note": "follow-up scheduled"})  # answered 405 before
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert [h["action"] for h in resolved.json()["history"]][-2:] == ["escalate", "resolve"]
    assert all(h["at"].endswith("Z") for h in resolved.json()["history"])  # the alert history's times too
    with api.store.engine.connect() as conn:
        audited = conn.execute(sa.select(audit_log.c.action).where(audit_log.c.target == alert_id)).scalars().all()
    assert audited[-2:] == ["alert.escalate", "alert.resolve"]
    assert "resolved" in assert_error(api.post(f"{base}/escalate", {"note": "again"}), 409, "conflict")["message"]
    # One count of each level: the API's counts are the console's (ops.levels).
    counts = {row["level"]: row for row in api.get("/v1/alerts/counts").json()["levels"]}
    expected = level_counts(api.store)
    assert {level: (row["waiting"], row["total"]) for level, row in counts.items()} == {
        level: (count.waiting, count.total) for level, count in expected.items()
    }
    assert counts["MEDIUM"]["waiting"] > 0  # the review queue, not "MEDIUM 0"
    # Downloads carry respond_by, as the JSON listing does.
    table = pq.read_table(iter_bytes(api.get("/v1/alerts?format=parquet").content)).to_pylist()
    assert table and all(row["respond_by"] > row["created_at"] for row in table)


def test_review_queue_and_metrics(api):
    with api.store.engine.connect() as conn:
        queued = set(conn.execute(sa.select(review_queue.c.event_id)).scalars())
    assert {r["event_id"] for r in api.all_pages("/v1/review-queue?limit=4")} == queued and queued
    assert api.all_pages("/v1/review-queue?status=promoted") == []
    agents = api.all_pages("/v1/agent-metrics?limit=1")
    assert agents and sum(w["calls"] for w in agents if w["agent"] == "crossmatch") > 0
    assert {w["agent"] for w in api.all_pages("/v1/agent-metrics?agent=history")} == {"history"}
    start = datetime(2025, 9, 6, 2, 0, tzinfo=timezone.utc)
    windows = [
        {
            "source": source,
            "window_start": start + timedelta(minutes=i),
            "run_id": "api-metrics",
            "window_end": start + timedelta(minutes=i + 1),
            "night": "2025-09-05",
            "received": 10 * i,
            "stored": 10 * i,
            "dead_letters": 0,
            "alerts": i % 2,
            "late": 0,
            "rate_per_min": 10.0 * i,
            "updated_at": utcnow(),
        }
        for i in range(3)
        for source in ("ztf", "rubin")
    ]
    api.store.upsert_metrics(windows)
    got = api.all_pages("/v1/metrics?limit=4&run_id=api-metrics")
    assert len(got) == 6 and [w["received"] for w in got] == [0, 0, 10, 10, 20, 20]
    assert len(api.all_pages(f"/v1/metrics?source=ztf&since={quote((start + timedelta(minutes=1)).isoformat())}")) == 2


# --- downloads -------------------------------------------------------------------------------------------------


def test_downloads_stream_parquet_and_avro_that_read_back(api, tmp_path):
    everything = stored(api)
    answer = api.get("/v1/events?format=parquet")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.apache.parquet"
    assert answer.headers.get("transfer-encoding") == "chunked"
    (tmp_path / "events.parquet").write_bytes(answer.content)
    table = pq.read_table(tmp_path / "events.parquet")
    assert sorted(table["event_id"].to_pylist()) == sorted(everything)
    rows = {row["event_id"]: row for row in table.to_pylist()}
    some = next(e for e in everything.values() if e.get("enrichments"))
    assert json.loads(rows[some["event_id"]]["enrichments_json"]) == some["enrichments"]

    critical = api.get("/v1/events?format=avro&class=significant")
    assert critical.headers["content-type"] == "application/avro"
    records = list(fastavro.reader(iter_bytes(critical.content)))
    assert {r["event_id"] for r in records} == {i for i, e in everything.items() if e["event_class"] == "significant"}
    assert all(r["event_time"].tzinfo is not None for r in records)

    alerts_file = list(fastavro.reader(iter_bytes(api.get("/v1/alerts?format=avro").content)))
    assert {r["alert_id"] for r in alerts_file} == {a["alert_id"] for a in api.all_pages("/v1/alerts?limit=500")}

    centre = next(e for e in everything.values() if e["ra"] is not None)
    cone = api.get(f"/v1/events/cone?ra={centre['ra']}&dec={centre['dec']}&radius=30&format=parquet")
    (tmp_path / "cone.parquet").write_bytes(cone.content)
    cone_rows = pq.read_table(tmp_path / "cone.parquet").to_pylist()
    want = brute_force(everything, centre["ra"], centre["dec"], 30)
    assert {r["event_id"] for r in cone_rows} == set(want)
    assert all(r["separation_deg"] == pytest.approx(want[r["event_id"]], abs=1e-9) for r in cone_rows)

    windows = pq.read_table(iter_bytes(api.get("/v1/agent-metrics?format=parquet").content))
    assert windows.num_rows == len(api.all_pages("/v1/agent-metrics?limit=500"))


def iter_bytes(data: bytes):
    import io

    return io.BytesIO(data)


# --- rate limits ------------------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(api):
    api.keys["slow"], _ = apikeys.create_key(api.store, "test", "olga", "observer", "slow", rate_per_min=6, burst=3)
    answers = [api.get("/v1/health", key=None)] + [api.get("/v1/alerts?limit=1", key="slow") for _ in range(4)]
    assert [a.status_code for a in answers[1:4]] == [200, 200, 200]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[1:4]] == ["2", "1", "0"]
    error = assert_error(answers[4], 429, "rate_limited")
    assert 1 <= int(answers[4].headers["Retry-After"]) <= 10
    assert error["details"]["rate_per_min"] == 6 and error["details"]["burst"] == 3
    # Other keys have buckets of their own.
    assert api.get("/v1/alerts?limit=1").status_code == 200


@pytest.fixture(scope="module")
def tight_api(tmp_path_factory):
    """A second real server with tight limits (config/limits.yaml in its own config folder), over a store of its
    own so its client-address buckets do not touch the main server's."""
    output = tmp_path_factory.mktemp("tight")
    config_dir = tmp_path_factory.mktemp("tight-config")
    (config_dir / "limits.yaml").write_text(
        "version: '1'\napi: {unknown_key_per_min: 6, unknown_key_burst: 3, max_feeds_per_key: 2}\n"
    )
    store = HotStore(f"sqlite:///{output / 'nightwatch.db'}")
    store.ensure_schema()
    accounts.create_user_as_system(store, "test", "olga", "observer", "a-long-enough-password")
    token, _ = apikeys.create_key(store, "test", "olga", "observer")
    server, base = start_api(output, env={**os.environ, "NIGHTWATCH_CONFIG_DIR": str(config_dir)})
    yield Api(base, output, store, {"observer": token})
    server.terminate()
    server.wait(timeout=20)
    store.close()


def test_unknown_keys_are_throttled_per_client_address(tight_api):
    """Issue 15 item 11: 20 guesses at once from one address: 3 (the burst) are looked up, then 429 for every
    request with a key from that address, a valid one included, until the bucket refills (6 a minute)."""
    answers = [
        requests.get(tight_api.base + "/v1/events", headers={"Authorization": f"Bearer nw_guess{i}"}, timeout=10)
        for i in range(20)
    ]
    assert [a.status_code for a in answers].count(401) == 3
    refused = assert_error(answers[-1], 429, "rate_limited")
    assert "unknown API keys from this address" in refused["message"]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 10
    assert tight_api.get("/v1/events").status_code == 429  # guessing stops, valid guesses included
    time.sleep(int(answers[-1].headers["Retry-After"]))
    assert tight_api.get("/v1/events").status_code == 200  # refilled: a real key works again
    assert tight_api.get("/v1/health", key=None).status_code == 200  # no key at all is not throttled


def test_live_feeds_per_key_are_capped(tight_api):
    """Issue 15 item 11: a key may hold `max_feeds_per_key` live feeds (2 here); one more is a 429 until one ends."""
    headers = {"Authorization": f"Bearer {tight_api.keys['observer']}"}
    url = tight_api.base + "/v1/alerts/stream"
    first = requests.get(url, headers=headers, stream=True, timeout=10)
    second = requests.get(url, headers=headers, stream=True, timeout=10)
    assert first.status_code == second.status_code == 200
    third = requests.get(url, headers=headers, stream=True, timeout=10)
    error = assert_error(third, 429, "rate_limited")
    assert error["details"] == {"key_id": error["details"]["key_id"], "max_feeds_per_key": 2}
    first.close()
    deadline = time.monotonic() + 10  # the server notices the closed connection at its next write
    while True:
        again = requests.get(url, headers=headers, stream=True, timeout=10)
        if again.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert again.status_code == 200
    again.close()
    second.close()


def test_one_bucket_is_shared_by_concurrent_requests(store):
    """Two servers on one store never spend the same token: 40 threads, a burst of 10, no refill."""
    results = []

    def spend() -> None:
        results.append(apikeys.take_token(store, "key_shared", rate_per_min=1e-6, burst=10).allowed)

    threads = [threading.Thread(target=spend) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 10 and len(results) == 40


# --- the live feed ------------------------------------------------------------------------------------------------


def new_alert(api: Api, suffix: str) -> str:
    """Store a new HIGH alert as the pipeline does (a copy of a stored significant event under a new id)."""
    with api.store.engine.connect() as conn:
        payload = conn.execute(sa.select(events.c.payload).where(events.c.alert_level == "HIGH")).scalars().first()
    event = Event.model_validate_json(payload).model_copy(update={"event_id": f"ztf:feed-{suffix}"})
    api.store.add_events([event])
    api.store.add_alerts([event])
    return f"alert:ztf:feed-{suffix}"


def read_events(response: requests.Response, until, timeout_s: float = 20) -> list[dict]:
    """Parse SSE messages until `until(messages)` holds."""
    messages, current = [], {}
    deadline = time.monotonic() + timeout_s
    for line in response.iter_lines(decode_unicode=True):
        assert time.monotonic() < deadline, messages
        if line == "":
            if "data" in current:
                messages.append({**current, "data": json.loads(current["data"])})
                if until(messages):
                    return messages
            current = {}
        elif not line.startswith(":") and ":" in line:
            field, value = line.split(":", 1)
            current[field] = value.strip()
    raise AssertionError(f"the feed ended: {messages}")


def test_the_live_feed_delivers_new_alerts_and_resumes_after_last_event_id(api):
    headers = {"Authorization": f"Bearer {api.keys['observer']}"}
    with requests.get(api.base + "/v1/alerts/stream", headers=headers, stream=True, timeout=30) as feed:
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/event-stream")
        time.sleep(1.5)  # the feed starts at "now": alerts stored before it connected are not replayed
        first = new_alert(api, "one")
        second = new_alert(api, "two")
        got = read_events(feed, lambda m: {second} <= {x["data"]["alert_id"] for x in m})
    assert [m["data"]["alert_id"] for m in got] == [first, second]
    assert all(m["event"] == "alert" and m["data"]["level"] == "HIGH" for m in got)
    # One time format: the feed's times are the REST answers' (ISO 8601 UTC with Z).
    listed = api.get(f"/v1/alerts/{quote(first, safe='')}").json()
    for field in ("created_at", "respond_by"):
        assert got[0]["data"][field] == listed[field] and listed[field].endswith("Z") and "T" in listed[field]
    # Reconnecting with the first message's id replays what came after it.
    resume = {**headers, "Last-Event-ID": got[0]["id"]}
    with requests.get(api.base + "/v1/alerts/stream", headers=resume, stream=True, timeout=30) as feed:
        again = read_events(feed, lambda m: len(m) >= 1)
    assert again[0]["data"]["alert_id"] == second and again[0]["id"] == got[1]["id"]
    bad = requests.get(api.base + "/v1/alerts/stream", headers={**headers, "Last-Event-ID": "x"}, timeout=10)
    assert_error(bad, 422, "invalid_request")
    assert_error(requests.get(api.base + "/v1/alerts/stream", timeout=10), 401, "unauthorized")


def test_the_live_feed_ends_when_its_key_is_revoked(api):
    token, key = apikeys.create_key(api.store, "test", "olga", "observer", "feed")
    headers = {"Authorization": f"Bearer {token}"}
    with requests.get(api.base + "/v1/alerts/stream", headers=headers, stream=True, timeout=30) as feed:
        apikeys.revoke_key(api.store, "test", key.key_id)
        got = read_events(feed, lambda m: m[-1]["event"] == "error")
    assert got[-1]["data"]["error"]["code"] == "unauthorized"


# --- the OpenAPI description --------------------------------------------------------------------------------------


def test_the_committed_openapi_file_matches_the_app():
    from api.app import openapi_text

    committed = (REPO / "api" / "openapi.json").read_text()
    assert committed == openapi_text(), (
        "api/openapi.json is out of date: refresh it with `nightwatch api --write-openapi api/openapi.json`"
    )
    spec = json.loads(committed)
    assert set(spec["paths"]) >= {
        "/v1/events",
        "/v1/events/cone",
        "/v1/events/{event_id}",
        "/v1/events/{event_id}/lineage",
        "/v1/objects/{object_id}/events",
        "/v1/alerts",
        "/v1/alerts/stream",
        "/v1/alerts/{alert_id}",
        "/v1/alerts/{alert_id}/acknowledge",
        "/v1/review-queue",
        "/v1/metrics",
        "/v1/agent-metrics",
    }
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            if path not in ("/v1/health", "/status", "/status.json"):  # the public status page needs no key
                assert {"401", "422", "429"} <= set(operation["responses"]), path


def test_the_served_openapi_is_the_committed_one(api):
    served = requests.get(api.base + "/openapi.json", timeout=10).json()
    assert served == json.loads((REPO / "api" / "openapi.json").read_text())


# --- fuzzing against the OpenAPI description ------------------------------------------------------------------


def schema_valid_requests_are_accepted(_ctx, response, case) -> None:
    """Schemathesis' positive-data check, except for cursors: an opaque cursor is a string to the schema, but
    only the server's own cursors are valid, so a made-up one is rightly a 422 (on `query.cursor` only). Likewise
    the object list's cone (`ra`, `dec`, `radius` go together), a rule between parameters OpenAPI cannot state."""
    if response.status_code != 422 or case.meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return
    details = response.json()["error"]["details"]
    locations = {d["location"] for d in details if d["message"] != "ra, dec and radius go together"}
    if locations - {"query.cursor"}:
        raise AssertionError(f"a schema-valid request was refused: {response.text}")


def test_fuzzing_every_operation_finds_no_server_error_and_no_undocumented_answer(api):
    """Schemathesis generates valid and invalid requests from api/openapi.json; every answer must be documented
    (status, content type, body schema) and none may be a 500.

    Driven operation by operation with hypothesis (schemathesis' pytest plugin does not load under pytest 9).
    """
    schema = schemathesis.openapi.from_dict(json.loads((REPO / "api" / "openapi.json").read_text()))
    token = api.keys["fuzz"]
    statuses: set[int] = set()

    def seen(_ctx, response, _case) -> None:
        statuses.add(response.status_code)

    @schema.auth()
    class Key:  # the key as the spec's security scheme, so negative cases never just drop it
        def get(self, case, ctx) -> str:
            return token

        def set(self, case, data, ctx) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    # The live feed never ends by itself: its own tests above cover it.
    operations = [result.ok() for result in schema.exclude(path="/v1/alerts/stream").get_all_operations()]
    # ... escalate, resolve, runbooks, incidents, status page, dead letters, objects, cutouts among them
    assert len(operations) == 32

    for operation, mode in itertools.product(operations, list(schemathesis.GenerationMode)):
        raw = operation.definition.raw
        if mode == schemathesis.GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
            continue  # nothing to get wrong in a request without parameters (GET /v1/health)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case) -> None:
            case.call_and_validate(
                base_url=api.base,
                excluded_checks=[schemathesis.checks.positive_data_acceptance],
                additional_checks=[schema_valid_requests_are_accepted, seen],
            )

        try:
            fuzz()
        except Unsatisfiable:
            # No invalid request exists for an operation whose only input is an unconstrained path string
            # (GET /v1/runbooks/{key}): nothing to fuzz in negative mode; positive mode must always generate.
            if mode != schemathesis.GenerationMode.NEGATIVE:
                raise
    # The run really reached the API with its key: answers and refusals, but never a 500 (checked per case).
    assert {200, 404, 422} <= statuses, statuses


def test_keys_buckets_and_queries_on_postgresql(postgres_url):
    """The production hot store: keys, the shared bucket's conditional update, the position index, keyset pages."""
    from api import queries

    store = HotStore(postgres_url)
    store.ensure_schema()
    queries.ensure_indexes(store)
    queries.ensure_indexes(store)  # idempotent on a store that has it
    accounts.create_user_as_system(store, "test", "olga", "observer", "a-long-enough-password")
    token, key = apikeys.create_key(store, "test", "olga", "observer")
    assert apikeys.authenticate(store, token).key_id == key.key_id
    spent = [apikeys.take_token(store, key.key_id, rate_per_min=1e-6, burst=3).allowed for _ in range(5)]
    assert spent == [True, True, True, False, False]
    apikeys.revoke_key(store, "test", key.key_id)
    assert apikeys.authenticate(store, token).revoked_at is not None
    moment = datetime(2025, 9, 6, 2, 0, tzinfo=timezone.utc)
    batch = [
        Event(
            event_id=f"ztf:pg-{i}",
            source="ztf",
            kind="optical_transient",
            event_time=moment + timedelta(seconds=i // 2),  # pairs share a time: the id breaks the tie
            received_time=moment,
            raw_format="ztf-avro",
            ra=10.0 + i,
            dec=-5.0,
            event_class="routine",
            alert_level="LOW",
        )
        for i in range(7)
    ]
    store.add_events(batch)
    where, pages, start = queries.EventFilter(source="ztf"), [], None
    while page := queries.hot_events(store, where, start, 3):
        pages.append([e["event_id"] for e in page])
        start = queries.event_key(page[-1])
    assert [i for page in pages for i in page] == [f"ztf:pg-{i}" for i in range(7)] and len(pages) == 3
    box = queries.cone_box(359.0, -5.0, 15.0)  # wraps RA 0/360
    assert {i for i, _, _ in queries.hot_positions(store, where, box)} == {f"ztf:pg-{i}" for i in range(5)}
    store.close()
