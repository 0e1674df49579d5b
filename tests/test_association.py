"""Association as operators need it: new-after-trigger, chance probability, the cap per trigger, designed cases
(injection), and one `ProcessPackets` giving the same classes, links and alerts in batch, streaming and replay."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pytest
import sqlalchemy as sa
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.utils.timestamp import Timestamp

from core.association import Candidate, Link, chance_probability, is_new_after, link_for, region_area_deg2
from core.event import Packet
from devtools.simulator import write_packets
from devtools.simulator.counterparts import CASES, designed_case
from devtools.simulator.packet import State
from devtools.simulator.schema import DEFAULT_RUBIN_VERSION, parse_version
from pipeline.batch import run
from pipeline.graph import build_pipeline
from store.hot import HotStore
from store.layout import Outputs
from store.schema import alerts, associations, events

T0 = 1_750_000_000.0


def trig(radius: float, time_s: float = T0, event_id: str = "gcn:t") -> Candidate:
    return Candidate(event_id, "trigger", 10.0, 20.0, radius, time_s, None, "gcn")


def optical(time_s: float, first_s: float, event_id: str = "ztf:o", source: str = "ztf") -> Candidate:
    return Candidate(event_id, "counterpart", 10.0, 20.01, 0.0, time_s, first_s, source)


def test_only_a_source_first_detected_after_the_trigger_counts(config):
    spec = config.streaming.association
    trigger = trig(0.05)
    assert is_new_after(trigger, optical(T0 + 600, T0 + 600), spec.window_s)
    assert not is_new_after(trigger, optical(T0 + 600, T0 - 3600), spec.window_s)  # known before the trigger
    assert not is_new_after(trigger, optical(T0 - 60, T0 - 60), spec.window_s)  # before the trigger
    assert not is_new_after(trigger, optical(T0 + spec.window_s + 1, T0 + spec.window_s + 1), spec.window_s)
    assert link_for(trigger, optical(T0 + 600, T0 - 3600), 0.01, spec) is None
    assert link_for(trigger, optical(T0 + 600, T0 + 600), 0.06, spec) is None  # outside the error circle


def test_chance_probability_follows_area_rate_and_time(config):
    spec = config.streaming.association
    # A 10 deg circle is ~314 square degrees; a 0.05 deg one ~0.008.
    assert region_area_deg2(10.0) == pytest.approx(313.8, rel=0.01)
    assert chance_probability(1.0, 24.0, 3600.0) == pytest.approx(1 - 2.718281828**-1.0)
    small = link_for(trig(0.05), optical(T0 + 900, T0 + 900), 0.01, spec)
    wide = link_for(trig(10.0), optical(T0 + 900, T0 + 900), 2.0, spec)
    assert small.chance_probability < 1e-4 and small.raise_classes
    assert wide.chance_probability > 0.05 and not wide.raise_classes  # linked, not raised
    # The deeper survey has more unrelated transients: the same circle is less telling.
    medium = trig(1.2)
    ztf = link_for(medium, optical(T0 + 1800, T0 + 1800), 0.1, spec)
    rubin = link_for(medium, optical(T0 + 1800, T0 + 1800, source="rubin"), 0.1, spec)
    assert ztf.chance_probability < spec.max_chance_probability < rubin.chance_probability


def test_a_trigger_raises_at_most_its_cap_and_is_raised_once(config, store):
    from tests.test_transforms import grb
    from tests.test_transforms import optical as optical_event

    trigger = grb(0.05).model_copy(update={"event_class": "significant", "alert_level": "HIGH"})
    found = [
        optical_event(event_id=f"ztf:{n}").model_copy(update={"event_class": "routine", "alert_level": "LOW"})
        for n in range(3)
    ]
    store.add_events([trigger, *found])
    for event in found:
        store.apply_association(Link(trigger.event_id, event.event_id, 0.01, 600.0, 1e-5, True), max_raised=2)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(associations).order_by(associations.c.counterpart_id)).all()
        classes = dict(conn.execute(sa.select(events.c.event_id, events.c.event_class)).all())
    assert [row.raised for row in rows] == [True, True, False]
    assert [classes[event.event_id] for event in found] == ["interesting", "interesting", "routine"]
    assert classes[trigger.event_id] == "critical"  # one level, once, however many links


def _cases(seed: int = 3) -> list:
    major, minor = parse_version(DEFAULT_RUBIN_VERSION)
    st = State(rng=random.Random(seed), rubin_major=major, rubin_minor=minor, serial=1000)
    start = datetime(2025, 9, 6, 2, 0, tzinfo=timezone.utc)
    return [designed_case(st, kind, start + timedelta(minutes=10 * n)) for n, kind in enumerate(CASES)]


def _outcome(db_url: str) -> tuple[dict, set, dict]:
    store = HotStore(db_url)
    with store.engine.connect() as conn:
        classes = dict(conn.execute(sa.select(events.c.event_id, events.c.event_class)).all())
        links = {
            (row.trigger_id, row.counterpart_id, row.raised) for row in conn.execute(sa.select(associations)).all()
        }
        levels = dict(conn.execute(sa.select(alerts.c.event_id, alerts.c.level)).all())
    store.close()
    return classes, links, levels


def _ids_by_file(db_url: str) -> dict[str, str]:
    """Each stored event's id by the name of the packet file it came from."""
    store = HotStore(db_url)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.event_id, events.c.payload)).all()
    store.close()
    return {
        json.loads(payload)["origin"].rsplit("/", 1)[-1].removeprefix("test:"): event_id for event_id, payload in rows
    }


def test_designed_counterparts_are_raised_and_chance_coincidences_are_not(tmp_path):
    cases = _cases()
    folder = tmp_path / "packets"
    write_packets([packet for case in cases for packet in (case.trigger, case.optical)], folder)
    out = tmp_path / "out"
    summary = run([f"--input={folder}/*", f"--output={out}", "--runner=FnApiRunner"])
    assert summary.accounted and summary.received == 6
    db_url = Outputs.under(str(out), None).db_url
    classes, links, _levels = _outcome(db_url)
    ids = _ids_by_file(db_url)
    linked = {(trigger, counterpart): raised for trigger, counterpart, raised in links}
    outcome = {case.kind: linked.get((ids[case.trigger.name], ids[case.optical.name])) for case in cases}
    assert outcome == {"counterpart": True, "old_source": None, "chance": False}
    assert len(linked) == 2
    counterpart, chance = (next(case for case in cases if case.kind == kind) for kind in ("counterpart", "chance"))
    assert classes[ids[counterpart.optical.name]] == "critical"  # a new significant source, raised one level
    assert classes[ids[chance.optical.name]] == "significant"  # linked, not raised
    assert classes[ids[chance.trigger.name]] == "significant"


@pytest.mark.slow
def test_batch_streaming_and_replay_give_the_same_classes_links_and_alerts(tmp_path, config):
    cases = _cases(seed=11)
    folder = tmp_path / "packets"
    write_packets([packet for case in cases for packet in (case.trigger, case.optical)], folder)

    # Batch, on the FnApiRunner, from files.
    batch_out = tmp_path / "batch"
    assert run([f"--input={folder}/*", f"--output={batch_out}", "--runner=FnApiRunner"]).accounted
    batch = _outcome(Outputs.under(str(batch_out), None).db_url)

    # Streaming, on the BundleBasedDirectRunner, the packets in event-time order with the watermark following.
    stream_outputs = Outputs.under(str(tmp_path / "stream"), None)
    HotStore(stream_outputs.db_url).ensure_schema()
    timed = sorted(  # TestStream wants whole milliseconds
        (int(packet.event_time.timestamp() * 1000) / 1000, packet.name, packet)
        for case in cases
        for packet in (case.trigger, case.optical)
    )
    stream = test_stream.TestStream().advance_watermark_to(Timestamp.of(timed[0][0] - 60))
    for moment, _name, packet in timed:
        item = Packet(payload=packet.payload, origin=f"test:{packet.name}", source_hint=packet.source)
        stream = stream.add_elements([beam.window.TimestampedValue(item, moment)]).advance_watermark_to(
            Timestamp.of(moment)
        )
    stream = stream.advance_watermark_to_infinity()
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(runner="BundleBasedDirectRunner", options=options) as p:
        build_pipeline(p | stream, config, stream_outputs, "stream-test", streaming=True)
    streamed = _outcome(stream_outputs.db_url)

    # Replay: the batch run's archive into an empty store.
    replay_out = tmp_path / "replay"
    summary = run(
        [
            f"--output={replay_out}",
            f"--replay_archive={Outputs.under(str(batch_out), None).archive_root}",
            "--replay_start=2015-01-01T00:00:00Z",
            "--replay_end=2030-01-01T00:00:00Z",
            "--runner=FnApiRunner",
        ]
    )
    assert summary.accounted
    replayed = _outcome(Outputs.under(str(replay_out), None).db_url)

    assert len(batch[1]) == 2 and sum(raised for *_, raised in batch[1]) == 1
    assert streamed == batch
    assert replayed == batch


def test_the_grouped_form_links_as_the_stateful_one(tmp_path, config):
    """The form for runners without user state (grouped by cell) gives the same links, on the batch runner."""
    from tests.test_transforms import grb
    from tests.test_transforms import optical as optical_event
    from transforms.associate import AssociateSources

    start = datetime(2025, 9, 6, 2, 0, tzinfo=timezone.utc)
    trigger = grb(0.5).model_copy(update={"event_time": start, "event_class": "significant", "alert_level": "HIGH"})
    found = [
        optical_event(event_id=f"ztf:{n}", ra=100.0 + 0.3 * n, dec=10.0).model_copy(
            update={"event_time": start + timedelta(minutes=5 + n), "event_class": "routine", "alert_level": "LOW"}
        )
        for n in range(4)
    ]
    outcomes = []
    for grouped in (False, True):
        store = HotStore(f"sqlite:///{tmp_path}/{grouped}.db")
        store.ensure_schema()
        store.add_events([trigger, *found])
        with beam.Pipeline(runner="FnApiRunner") as p:
            p | beam.Create([trigger, *found]) | AssociateSources(config, store.url, grouped=grouped)
        outcomes.append(_outcome(store.url))
        store.close()
    assert outcomes[0] == outcomes[1]
    assert {link[1] for link in outcomes[0][1]} == {"ztf:0", "ztf:1"}  # inside the 0.5 degree circle
