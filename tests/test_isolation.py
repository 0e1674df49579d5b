"""Isolation, never amplification: one packet the hot store cannot take costs its own dead letter, nothing else.

The real sample packets plus one real packet re-encoded with a field no store can hold (a lone surrogate in a
GCN JSON id on SQLite, a 200-character ZTF `objectId` on PostgreSQL): every other event and alert is stored.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import fastavro
import pytest
import sqlalchemy as sa

from agents.base import Agent, AgentContext, Finding
from agents.calls import AgentCaller, AgentPool
from agents.registry import build_agent
from config.agents import AgentSpec
from core.decoders import PacketDecoder
from pipeline.batch import run
from pipeline.io.sinks import _HotStoreWriter
from store.hot import HotStore
from store.schema import alerts, dead_letters, events
from tests.conftest import DATA, packet_of, sample_files

ZTF = DATA / "ztf" / "1095578115815010001.avro"
GCN_JSON = DATA / "gcn/json/fermi.gbm.trigger.final.example.json"


def long_object_id_ztf() -> bytes:
    """The real ZTF packet, re-encoded with its writer schema, a 200-character objectId and a candid of its own."""
    reader = fastavro.reader(ZTF.open("rb"))
    schema, record = reader.writer_schema, next(reader)
    record["objectId"] = "ZTF" + "x" * 197
    record["candid"] = record["candidate"]["candid"] = 1095578115815099999
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [record])
    return buffer.getvalue()


def surrogate_gcn() -> bytes:
    notice = json.loads(GCN_JSON.read_bytes())
    notice["id"] = ["bad-\udfff-id"]
    return json.dumps(notice).encode()  # ASCII: the surrogate as the escape \udfff, as JSON allows


def inputs_with(folder: Path, name: str, payload: bytes) -> Path:
    inputs = folder / "in"
    shutil.copytree(DATA, inputs)  # the same input as the baseline, plus one
    (inputs / "extra").mkdir()
    (inputs / "extra" / name).write_bytes(payload)  # in a folder: the glob DATA/**/* matches folders' files
    return inputs


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """What the real samples alone store."""
    output = tmp_path_factory.mktemp("baseline")
    summary = run([f"--input={DATA}/**/*", f"--output={output}"])
    store = HotStore(f"sqlite:///{output}/nightwatch.db")
    with store.engine.connect() as conn:
        counts = {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in (events, alerts, dead_letters)
        }
    store.close()
    return summary, counts


def check_isolated(url: str, baseline, bad_name: str, summary) -> list:
    base_summary, base = baseline
    store = HotStore(url)
    with store.engine.connect() as conn:
        letters = conn.execute(sa.select(dead_letters)).all()
        stored_events = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
        stored_alerts = conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar()
    store.close()
    assert summary.accounted, summary.table()
    assert summary.received == base_summary.received + 1
    assert stored_events == base["events"]  # every other event stored
    assert stored_alerts == base["alerts"]  # and every alert
    # Only the bad packet's letters, with its own reason: one at decode (which now knows what the stores hold)
    # or, past decode, one from the hot store's events table.
    ours = [letter for letter in letters if Path(letter.origin).name == bad_name]
    assert len(ours) == len(letters) - base["dead_letters"]  # no other packet lost anything
    first = [letter for letter in ours if letter.stage in ("decode", "sink:events")]
    assert len(first) == 1, [(letter.stage, letter.reason) for letter in ours]
    return first


def test_sqlite_a_lone_surrogate_fails_only_its_own_event(tmp_path, baseline):
    inputs = inputs_with(tmp_path, "bad-surrogate.json", surrogate_gcn())
    output = tmp_path / "out"
    summary = run([f"--input={inputs}/**/*", f"--output={output}"])
    (letter,) = check_isolated(f"sqlite:///{output}/nightwatch.db", baseline, "bad-surrogate.json", summary)
    assert "surrogate" in letter.reason and "INSERT" not in letter.reason
    print("SQLite:", summary.received, "received;", letter.reason)


def test_postgres_a_200_character_object_id_fails_only_its_own_event(tmp_path, baseline, postgres_url):
    inputs = inputs_with(tmp_path, "long-object-id.avro", long_object_id_ztf())
    summary = run([f"--input={inputs}/**/*", f"--output={tmp_path / 'out'}", f"--db_url={postgres_url}"])
    (letter,) = check_isolated(postgres_url, baseline, "long-object-id.avro", summary)
    assert ("too long" in letter.reason or "128" in letter.reason) and "INSERT" not in letter.reason
    print("PostgreSQL:", summary.received, "received;", letter.reason)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_sink_bisects_a_batch_that_reaches_it_with_a_bad_row(tmp_path, config, backend, request):
    """Even past decode-time validation: a bad row handed to the writer costs only itself."""
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/hot.db"
    HotStore(url).ensure_schema()
    decoder = PacketDecoder(config.sources)
    decoded = [result for path in sample_files("ztf/*.avro") for result in decoder.decode(packet_of(path))]
    batch = [event.model_copy(update={"event_class": "routine"}) for event in decoded]
    bad_text = "\x00" if backend == "postgresql" else "\udfff"
    bad = batch[7].model_copy(update={"event_id": "ztf:bad", "object_id": f"ZTF{bad_text}bad"})
    batch = [*batch[:7], bad, *batch[7:]]
    writer = _HotStoreWriter(url, "events")
    writer.setup()
    try:
        out = list(writer.process(batch))
    finally:
        writer.teardown()
    letters = [item.value for item in out if getattr(item, "tag", None) == "dead_letter"]
    stored = [item for item in out if getattr(item, "tag", None) is None]
    assert [letter.event_id for letter in letters] == ["ztf:bad"]
    assert len(stored) == len(batch) - 1
    assert HotStore(url).count(events) == len(batch) - 1


class ChokingAgent(Agent):
    """An agent that fails any batch holding one particular event (as a remote agent might on a bad field)."""

    def find(self, events, timeout_s=None):
        if any(event.event_id == "ztf:bad" for event in events):
            raise ValueError("cannot parse object id of ztf:bad")
        return [Finding({"seen": True}) for _ in events]


def test_an_agent_that_chokes_on_one_event_fails_only_that_event(config):
    decoder = PacketDecoder(config.sources)
    decoded = [result for path in sample_files("ztf/*.avro") for result in decoder.decode(packet_of(path))][:20]
    batch = [event.model_copy(update={"event_class": "significant"}) for event in decoded]
    batch[5] = batch[5].model_copy(update={"event_id": "ztf:bad"})
    spec = AgentSpec(
        kind="tests.test_isolation:ChokingAgent", classes=["significant"], batch_size=20, retries=1, budget_ms=5000
    )
    caller = AgentCaller(build_agent("choking", spec, AgentContext(config)))
    try:
        enriched, calls = AgentPool([caller]).enrich(batch)
    finally:
        caller.close()
    outcome = {event.event_id: event.enrichments["choking"] for event in enriched}
    assert outcome["ztf:bad"]["status"] == "error" and "ztf:bad" in outcome["ztf:bad"]["reason"]
    assert all(
        found["status"] == "ok" and found["data"] == {"seen": True}
        for key, found in outcome.items()
        if key != "ztf:bad"
    )
    assert sorted(call.status for call in calls).count("ok") == len(batch) - 1
