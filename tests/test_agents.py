"""Agents: the cross-match against brute force, visibility against astropy, the breaker, budgets and faults
with real HTTP agent servers (answer, hang, fail, crash), the real agent server, and agents in the pipeline.

Why this module is long: the agent servers it starts (real HTTP, crashing and hanging ones) are shared by the
budget, breaker, server and pipeline tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import yaml

from agents.base import Agent, AgentContext, Finding
from agents.calls import AgentCaller, AgentPool, CircuitBreaker
from agents.catalogue import Catalogues, SkyIndex
from agents.followup import altitude_deg, julian_date, sun_position
from agents.registry import build_agent
from agents.remote import health, restart
from config.settings import AgentSpec, ConfigError, load_config
from core.event import Event
from core.sky import separation_deg
from store.tiers import WARM_SCHEMA, read_warm
from tests.agent_servers import ScriptedAgentServer
from tests.conftest import service_key

REPO = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def event(i: int, event_class: str = "significant", **overrides) -> Event:
    fields = dict(
        event_id=f"ztf:{i}",
        source="ztf",
        kind="optical_transient",
        object_id=f"ZTF25obj{i}",
        event_time=NOW - timedelta(minutes=5),
        received_time=NOW,
        ra=(37.0 * i) % 360.0,
        dec=-30.0 + (i % 50),
        mag=18.0,
        band="r",
        raw=b"raw",
        raw_format="ztf-avro",
        event_class=event_class,
        features={"n_prior": 0, "days_since_first": 0.0, "rising_or_new": True},
    )
    fields.update(overrides)
    return Event(**fields)


def remote_spec(url: str, **overrides) -> AgentSpec:
    fields = dict(
        kind="remote",
        url=url,
        classes=["critical", "significant", "interesting", "routine"],
        budget_ms=600,
        timeout_ms=300,
        retries=2,
        backoff_ms=20,
        concurrency=2,
        batch_size=10,
        breaker={"failure_threshold": 3, "reset_after_s": 0.5},
    )
    fields.update(overrides)
    return AgentSpec(**fields)


def remote_caller(config, url: str, **overrides) -> AgentCaller:
    agent = build_agent("pool", remote_spec(url, **overrides), AgentContext(config))
    agent.setup()
    return AgentCaller(agent)


# --- the catalogue cross-match ---------------------------------------------------------------------------


def brute_force(index: SkyIndex, ra: float, dec: float, radius_deg: float) -> set[int]:
    return set(np.flatnonzero(separation_deg(ra, dec, index.ra, index.dec) <= radius_deg).tolist())


def test_cone_search_matches_brute_force_on_every_catalogue():
    catalogues = Catalogues.shared()
    rng = np.random.default_rng(7)
    for catalogue in (catalogues.stars, catalogues.variables, catalogues.galaxies):
        index = catalogue.index
        # Random places, the poles, RA wrap-around, and positions right on catalogued sources.
        on_sources = rng.choice(len(index), 5, replace=False)
        places = [(float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1))))) for _ in range(20)]
        places += [(0.0, 90.0), (180.0, -89.99), (359.9999, 0.0)]
        places += [(float(index.ra[i]) + 1e-4, float(index.dec[i])) for i in on_sources]
        for ra, dec in places:
            for radius in (2 / 3600, 0.05, 0.5, 3.0):
                found, separations = index.cone(ra % 360.0, dec, radius)
                assert set(found.tolist()) == brute_force(index, ra % 360.0, dec, radius), (catalogue.name, ra, dec)
                assert list(separations) == sorted(separations)


def test_catalogues_are_the_shipped_ones():
    sizes = Catalogues.shared().describe()
    assert sizes["Hipparcos 2"] == 117955
    assert sizes["Gaia DR3"] > 400_000
    assert 10_000 < sizes["OpenNGC"] < 11_500  # the galaxies of OpenNGC


def test_crossmatch_flags_known_star_variable_and_host(config):
    agent = build_agent("crossmatch", config.agents.agents["crossmatch"], AgentContext(config))
    agent.setup()
    catalogues = agent.catalogues
    # A known Hipparcos variable (variability annex): the detection is that star, so routine is proposed.
    variables = catalogues.variables
    i = int(np.flatnonzero(variables.columns["variability_annex"] == 1)[0])
    on_variable = event(1, ra=float(variables.index.ra[i]), dec=float(variables.index.dec[i]))
    finding = agent.find([on_variable])[0]
    assert finding.data["known_variable"]["hip"] == int(variables.columns["hip"][i])
    assert finding.proposed_class == "routine" and "variable" in finding.reason
    # Inside a large galaxy (NGC 224 is M31): a host candidate, found by brute force too.
    galaxies = catalogues.galaxies
    m31 = int(np.flatnonzero(galaxies.columns["name"] == "NGC0224")[0])
    ra, dec = float(galaxies.index.ra[m31]) + 0.05, float(galaxies.index.dec[m31])
    hosts = agent.find([event(2, ra=ra, dec=dec)])[0].data["host_candidates"]
    assert hosts[0]["name"] == "NGC0224"
    expected = {
        galaxies.columns["name"][k]
        for k in brute_force(galaxies.index, ra, dec, 5.0)
        if separation_deg(ra, dec, galaxies.index.ra[k], galaxies.index.dec[k])
        <= 2.0 * np.nan_to_num(galaxies.columns["major_axis_arcmin"][k], nan=10 / 60) / 120.0
    }
    assert {host["name"] for host in hosts} == set(sorted(expected)[:5]) or len(expected) > 5
    # A GRB error region lists the galaxies inside it, brightest first; brute force gives the same count.
    trigger = event(3, source="gcn", kind="grb", ra=ra, dec=dec, pos_error_deg=2.0, event_id="gcn:x:1")
    region = agent.find([trigger])[0].data
    assert region["galaxies_in_region"] == len(brute_force(galaxies.index, ra, dec, 2.0))
    magnitudes = [galaxy["b_mag"] for galaxy in region["brightest_galaxies"] if galaxy["b_mag"] is not None]
    assert magnitudes == sorted(magnitudes)


def test_batched_crossmatch_equals_one_event_at_a_time(config):
    agent = build_agent("crossmatch", config.agents.agents["crossmatch"], AgentContext(config))
    agent.setup()
    stars = agent.catalogues.stars.index
    galaxies = agent.catalogues.galaxies.index
    batch = [event(i) for i in range(60)]  # spread over the sky
    batch += [event(100 + i, ra=float(stars.ra[i * 997]), dec=float(stars.dec[i * 997])) for i in range(20)]
    batch += [event(200 + i, ra=float(galaxies.ra[i * 301]), dec=float(galaxies.dec[i * 301])) for i in range(20)]
    batch.append(event(300, source="gcn", kind="grb", ra=10.0, dec=10.0, pos_error_deg=3.0, event_id="gcn:y:1"))
    batched = agent.find(batch)
    assert [f.data for f in batched] == [agent.match(e).data for e in batch]
    assert (
        sum(bool(f.data.get("star")) for f in batched) >= 20
        and sum(bool(f.data.get("host_candidates")) for f in batched) >= 20
    )


# --- follow-up visibility ---------------------------------------------------------------------------------


def test_altitudes_agree_with_astropy(config):
    from astropy import units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False  # offline: astropy's bundled tables
    site = config.sources.site
    location = EarthLocation(lat=site.latitude_deg * u.deg, lon=site.longitude_deg * u.deg, height=site.height_m * u.m)
    moments = np.array([datetime(2025, 9, 6, h, 17, tzinfo=timezone.utc).timestamp() for h in (0, 5, 11, 23)])
    times = Time(moments, format="unix")
    frame = AltAz(obstime=times, location=location)
    ours = altitude_deg(150.0, -40.0, julian_date(moments), site.latitude_deg, site.longitude_deg)
    theirs = SkyCoord(150.0 * u.deg, -40.0 * u.deg).transform_to(frame).alt.deg
    assert np.max(np.abs(ours - theirs)) < 0.5  # precession since J2000 and refraction-free: well under a degree
    sun_ra, sun_dec = sun_position(julian_date(moments))
    ours_sun = altitude_deg(sun_ra, sun_dec, julian_date(moments), site.latitude_deg, site.longitude_deg)
    theirs_sun = get_sun(times).transform_to(frame).alt.deg
    assert np.max(np.abs(ours_sun - theirs_sun)) < 0.5


def test_followup_advises_on_visibility(config):
    agent = build_agent("followup", config.agents.agents["followup"], AgentContext(config))
    agent.setup()
    south, north = event(1, "critical", ra=120.0, dec=-60.0), event(2, "critical", ra=120.0, dec=85.0)
    seen_south, seen_north = (finding.data for finding in agent.find([south, north]))
    # From Cerro Pachon (-30 deg) a dec -60 source is circumpolar (up every dark hour); dec +85 never rises.
    assert seen_south["max_altitude_deg"] > 30 or not seen_south["observable_tonight"]
    assert not seen_north["observable_tonight"] and "hand over" in seen_north["advice"]
    assert seen_north["priority"] == seen_south["priority"] + (0 if not seen_south["observable_tonight"] else 1)
    assert seen_south["suggested_filters"] == ["g", "r"]


# --- the breaker, budgets and faults ---------------------------------------------------------------------


def test_breaker_opens_and_probes_back():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.failure()  # the probe failed: open again, for another reset period
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 21.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.opened_count == 2


def test_critical_events_never_wait_past_budget_on_a_hanging_agent(config):
    with ScriptedAgentServer("hang") as server:
        caller = remote_caller(config, server.url, budget_ms=400, timeout_ms=400)
        batch = [event(i, "critical") for i in range(3)] + [event(10 + i, "routine") for i in range(3)]
        started = time.monotonic()
        enriched, calls = AgentPool([caller]).enrich(batch)
        waited = time.monotonic() - started
        caller.close()
    assert [e.event_id for e in enriched] == [e.event_id for e in batch]  # every event out, in order
    critical = [e.enrichments["pool"] for e in enriched if e.event_class == "critical"]
    assert {found["status"] for found in critical} == {"skipped"}
    assert all("critical" in found["reason"] and found["latency_ms"] < 400 + 150 for found in critical)
    assert {e.enrichments["pool"]["status"] for e in enriched if e.event_class == "routine"} == {"timeout"}
    # Nothing waited on the hang: the whole batch took about one budget, not the server's 60 s.
    assert waited < 2.0
    assert len(calls) == len(batch)


def test_retries_within_budget_then_success(config):
    with ScriptedAgentServer("fail") as server:
        caller = remote_caller(config, server.url, retries=3, backoff_ms=100, budget_ms=2000, timeout_ms=500)
        batch = [event(1, "significant")]
        future = caller.submit(batch)
        time.sleep(0.05)
        server.set_mode("answer")  # the agent recovers while the caller backs off
        (result,) = caller.collect(future[0])
        caller.close()
    _event, found, call = result
    assert found["status"] == "ok" and found["attempts"] >= 2 and found["data"]["echo"] == "ztf:1"
    assert call.attempts == found["attempts"] and server.requests == found["attempts"]


def test_critical_events_are_not_retried(config):
    with ScriptedAgentServer("fail") as server:
        caller = remote_caller(config, server.url, retries=3, budget_ms=2000, timeout_ms=500)
        enriched, _ = AgentPool([caller]).enrich([event(1, "critical")])
        caller.close()
    found = enriched[0].enrichments["pool"]
    assert found["status"] == "skipped" and found["attempts"] == 1 and server.requests == 1
    assert "500" in found["reason"]


def test_breaker_opens_on_a_failing_agent_and_recovers(config):
    with ScriptedAgentServer("fail") as server:
        caller = remote_caller(config, server.url, retries=0, batch_size=1)
        pool = AgentPool([caller])
        enriched, _ = pool.enrich([event(i, "significant") for i in range(3)])
        assert caller.breaker.state == "open" and server.requests == 3
        assert {e.enrichments["pool"]["status"] for e in enriched} == {"error"}
        # While open, the agent is not called at all: events are skipped at once.
        enriched, calls = pool.enrich([event(i, "significant") for i in range(3, 8)])
        assert server.requests == 3
        assert {e.enrichments["pool"]["status"] for e in enriched} == {"skipped"}
        assert {call.breaker_state for call in calls} == {"open"}
        assert all("breaker" in e.enrichments["pool"]["reason"] for e in enriched)
        # After reset_after_s one probe goes through; the agent answers again, so the breaker closes.
        server.set_mode("answer")
        time.sleep(0.6)
        enriched, _ = pool.enrich([event(20, "significant")])
        assert enriched[0].enrichments["pool"]["status"] == "ok" and caller.breaker.state == "closed"
        assert server.requests == 4
        pool.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 60.0, restarts: int = 0) -> dict:
    """The server's health once it answers (and has restarted `restarts` times)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            report = health(url, timeout_s=1.0)
            if report["restarts"] >= restarts:
                return report
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"agent server {url} not up (with {restarts} restarts) after {seconds} s")
        time.sleep(0.2)


def test_an_agent_crashing_mid_call_loses_nothing(config):
    port = free_port()
    crashing = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "agent_servers.py"), "--port", str(port), "--mode", "crash"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert crashing.stdout.readline().strip() == "ready"
        caller = remote_caller(config, f"http://127.0.0.1:{port}", retries=1, budget_ms=1500, timeout_ms=700)
        batch = [event(1, "critical"), event(2, "significant"), event(3, "interesting")]
        enriched, calls = AgentPool([caller]).enrich(batch)
        caller.close()
        assert crashing.wait(timeout=10) == 3  # the server really died mid-call
    finally:
        crashing.kill()
    assert [e.event_id for e in enriched] == ["ztf:1", "ztf:2", "ztf:3"]
    statuses = {e.event_id: e.enrichments["pool"]["status"] for e in enriched}
    assert statuses["ztf:1"] == "skipped" and statuses["ztf:2"] in ("error", "timeout")
    assert len(calls) == 3


def test_a_wrong_answer_is_an_error_not_a_misaligned_enrichment(config):
    with ScriptedAgentServer("short") as server:
        caller = remote_caller(config, server.url, retries=0)
        enriched, _ = AgentPool([caller]).enrich([event(1, "significant"), event(2, "significant")])
        caller.close()
    assert {e.enrichments["pool"]["status"] for e in enriched} == {"error"}
    assert "1 findings for 2 events" in enriched[0].enrichments["pool"]["reason"]


# --- the real agent server ------------------------------------------------------------------------------


@pytest.fixture
def agent_server(tmp_path, monkeypatch):
    """The real agent server; its generated admin token in tmp_path/agent-token, where the clients read it."""
    monkeypatch.delenv("NIGHTWATCH_AGENT_TOKEN", raising=False)
    monkeypatch.setenv("NIGHTWATCH_AGENT_TOKEN_FILE", str(tmp_path / "agent-token"))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "agent-server", "crossmatch", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_agent_server_answers_reports_health_and_restarts(config, agent_server):
    url, process = agent_server
    caller = remote_caller(config, url, options={"agent": "crossmatch"}, budget_ms=5000, timeout_ms=5000)
    galaxies = Catalogues.shared().galaxies
    m31 = int(np.flatnonzero(galaxies.columns["name"] == "NGC0224")[0])
    near_m31 = event(1, ra=float(galaxies.index.ra[m31]), dec=float(galaxies.index.dec[m31]))
    enriched, _ = AgentPool([caller]).enrich([near_m31, event(2)])
    found = enriched[0].enrichments["pool"]
    assert found["status"] == "ok" and found["data"]["host_candidates"][0]["name"] == "NGC0224"
    before = health(url)
    assert before["ok"] and before["calls"] == 1 and before["events"] == 2 and before["restarts"] == 0
    assert before["catalogues"]["Hipparcos 2"] == 117955
    # A bad request gets a clear 400, and the server stays up.
    bad = requests.post(f"{url}/v1/agents/crossmatch/find", data=b"{not json", timeout=5)
    assert bad.status_code == 400 and "bad request" in bad.json()["error"]
    # Restart: the same process id (re-executed in place), counters reset, restarts counted, port kept.
    assert restart(url)["restarting"] is True
    after = wait_for(url, restarts=1)
    assert after["restarts"] == 1 and after["calls"] == 0 and after["pid"] == before["pid"]
    assert process.poll() is None
    enriched, _ = AgentPool([caller]).enrich([near_m31])  # the pooled session reconnects by itself
    assert enriched[0].enrichments["pool"]["status"] == "ok"
    caller.close()


def nightwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )


def test_agents_cli_health_and_restart(agent_server, tmp_path):
    url, _process = agent_server
    out = nightwatch("agents", "health", "--url", url)
    assert out.returncode == 0, out.stderr
    assert "crossmatch" in out.stdout and "ok" in out.stdout
    restart = ("agents", "restart", "--url", url, "--output", str(tmp_path))
    refused = nightwatch(*restart, env={k: v for k, v in os.environ.items() if k != "NIGHTWATCH_API_KEY"})
    assert refused.returncode == 2 and "give an identity" in refused.stderr  # restarting acts as someone
    key = service_key(f"sqlite:///{tmp_path}/nightwatch.db")
    out = nightwatch(*restart, env={**os.environ, "NIGHTWATCH_API_KEY": key})
    assert out.returncode == 0, out.stderr
    assert wait_for(url, restarts=1)["restarts"] == 1


def test_agent_server_restart_refuses_without_the_admin_token(agent_server, tmp_path):
    """Issue 15 item 10: with no token configured, one is generated on first start (mode 0600, path printed)."""
    import stat

    url, process = agent_server
    token_file = tmp_path / "agent-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 40
    first_line = process.stdout.readline()
    assert f"admin token generated in {token_file} (mode 0600)" in first_line
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}):
        refused = requests.post(f"{url}/admin/restart", headers=headers, timeout=5)
        assert refused.status_code == 401 and "admin token" in refused.json()["error"]
    assert health(url)["restarts"] == 0  # nothing happened
    assert restart(url, token=token)["restarting"] is True
    assert wait_for(url, restarts=1)["restarts"] == 1
    # Re-executed with the same file: the token is kept and not printed again.
    assert token_file.read_text().strip() == token
    assert restart(url)["restarting"] is True  # the client reads the token file itself
    assert wait_for(url, restarts=2)["restarts"] == 2
    process.terminate()
    rest = process.communicate(timeout=10)[0]
    assert "admin token generated" not in rest


class MagnitudeAgent(Agent):
    """A new agent as a user writes one (README: Writing a new agent)."""

    def find(self, events, timeout_s=None):
        return [Finding({"brighter_than_18": (e.mag or 99) < 18}) for e in events]


def test_a_new_agent_is_named_by_its_module_and_class(config):
    spec = AgentSpec(kind="tests.test_agents:MagnitudeAgent", classes=["significant"])
    caller = AgentCaller(build_agent("magnitude", spec, AgentContext(config)))
    enriched, _ = AgentPool([caller]).enrich([event(1, mag=17.0), event(2, mag=19.0), event(3, "routine")])
    caller.close()
    assert [e.enrichments.get("magnitude", {}).get("data") for e in enriched] == [
        {"brighter_than_18": True},
        {"brighter_than_18": False},
        None,  # routine: not a class this agent takes
    ]
    with pytest.raises(ValueError, match="not an Agent subclass"):
        build_agent("x", AgentSpec(kind="tests.test_agents:event"), AgentContext(config))
    with pytest.raises(ValueError, match="package.module:ClassName"):
        AgentSpec(kind="no such kind")


def test_agent_config_is_validated(tmp_path):
    with pytest.raises(ValueError, match="url"):
        AgentSpec(kind="remote")
    with pytest.raises(ValueError, match="longer than budget_ms"):
        AgentSpec(kind="history", budget_ms=100, timeout_ms=200)
    (tmp_path / "agents.yaml").write_text(yaml.safe_dump({"version": "1", "agents": {"Bad Name": {"kind": "x"}}}))
    with pytest.raises(ConfigError, match="agents.yaml"):
        load_config(tmp_path)


# --- agents in the pipeline --------------------------------------------------------------------------------


def stored_events(db_url: str) -> list[Event]:
    import sqlalchemy as sa

    from store.hot import HotStore
    from store.schema import events

    store = HotStore(db_url)
    with store.engine.connect() as conn:
        payloads = conn.execute(sa.select(events.c.payload)).scalars().all()
    store.close()
    return [Event.model_validate_json(payload) for payload in payloads]


def agent_rows(db_url: str) -> list[dict]:
    from store.hot import HotStore

    store = HotStore(db_url)
    rows = store.agent_windows()
    store.close()
    return rows


def test_pipeline_enriches_events_with_the_builtin_agents(tmp_path, config):
    from pipeline.batch import run

    summary = run(["--simulate=150", f"--output={tmp_path}", "--run_id=agents-run"])
    assert summary.ok
    db_url = f"sqlite:///{tmp_path / 'nightwatch.db'}"
    stored = stored_events(db_url)
    assert len(stored) == sum(summary.by_class.values())
    for agent_name, spec in config.agents.enabled().items():
        takers = [e for e in stored if e.event_class in spec.classes]
        assert takers, agent_name
        assert all(e.enrichments[agent_name]["status"] == "ok" for e in takers), agent_name
        assert not any(agent_name in e.enrichments for e in stored if e.event_class not in spec.classes)
        rows = [row for row in agent_rows(db_url) if row["agent"] == agent_name]
        assert sum(row["calls"] for row in rows) == len(takers) == summary.as_dict()["agents"][agent_name]["ok"]
        assert all(row["breaker_state"] == "closed" and row["budget_ms"] == spec.budget_ms for row in rows)
    alerts = [e for e in stored if e.event_class in ("critical", "significant")]
    assert all("priority" in e.enrichments["followup"]["data"] for e in alerts)
    # The warm tier carries the enrichments too, for scientists querying Parquet.
    warm = read_warm(str(tmp_path / "warm")).to_pylist()
    by_id = {e.event_id: e for e in stored}
    assert all(json.loads(row["enrichments_json"]) == by_id[row["event_id"]].enrichments for row in warm)


def test_warm_files_from_before_enrichments_still_read(tmp_path):
    old_schema = WARM_SCHEMA.remove(WARM_SCHEMA.get_field_index("enrichments_json"))
    folder = tmp_path / "night=2025-09-05" / "class=routine"
    folder.mkdir(parents=True)
    row = {name: None for name in old_schema.names} | {"event_id": "ztf:old", "injected": False}
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), folder / "old.parquet")
    new = {name: None for name in WARM_SCHEMA.names} | {"event_id": "ztf:new", "enrichments_json": "{}"}
    pq.write_table(pa.Table.from_pylist([new], schema=WARM_SCHEMA), folder / "new.parquet")
    table = read_warm(str(tmp_path))
    assert sorted(zip(table["event_id"].to_pylist(), table["enrichments_json"].to_pylist(), strict=True)) == [
        ("ztf:new", "{}"),
        ("ztf:old", None),
    ]


def test_pipeline_with_a_hanging_agent_delivers_every_event_and_skips_it_for_critical(tmp_path):
    from pipeline.batch import run

    every_class = ["critical", "significant", "interesting", "routine"]
    with ScriptedAgentServer("hang") as server:
        folder = tmp_path / "config"
        folder.mkdir()
        pool = {
            "kind": "remote",
            "url": server.url,
            "classes": every_class,
            "budget_ms": 300,
            "timeout_ms": 300,
            "retries": 0,
            "batch_size": 20,
            "breaker": {"failure_threshold": 2, "reset_after_s": 600},
        }
        (folder / "agents.yaml").write_text(yaml.safe_dump({"version": "1", "agents": {"pool": pool}}))
        argv = ["--simulate=300", "--mix=ztf=0.4,rubin=0.3,gcn=0.3", f"--output={tmp_path / 'out'}"]
        summary = run([*argv, f"--config_dir={folder}"])
    assert summary.ok, summary.problems  # every event accounted for: nothing lost to the hanging agent
    stored = stored_events(f"sqlite:///{tmp_path / 'out' / 'nightwatch.db'}")
    assert len(stored) == sum(summary.by_class.values())
    takers = [e for e in stored if e.event_class in every_class]
    outcomes = {e.event_id: e.enrichments["pool"] for e in takers}
    assert {found["status"] for found in outcomes.values()} <= {"skipped", "timeout"}
    critical = [e for e in takers if e.event_class == "critical"]
    assert critical and all(e.enrichments["pool"]["status"] == "skipped" for e in critical)
    # The breaker opened after two failed batches: most events never waited at all.
    assert sum("breaker" in found["reason"] for found in outcomes.values()) > len(takers) / 2
    rows = agent_rows(f"sqlite:///{tmp_path / 'out' / 'nightwatch.db'}")
    assert sum(row["calls"] for row in rows) == len(takers)
    assert sum(row["skips"] + row["timeouts"] for row in rows) == len(takers)
    assert rows[-1]["breaker_state"] == "open"
