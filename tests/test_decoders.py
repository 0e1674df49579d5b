"""Decoders on the real sample packets: every format, every field that matters."""

from __future__ import annotations

import io
import json
import math
import struct
from datetime import datetime, timedelta, timezone

import fastavro
import pytest

from core.decoders import DecodeFailure, PacketDecoder, sniff
from core.decoders.rubin import registry, schema_id_for
from core.event import Event, Packet
from tests.conftest import DATA, packet_of, sample_files

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)
TAI_MINUS_UTC = timedelta(seconds=37)  # since 2017-01-01


@pytest.fixture(scope="module")
def decoder(config):
    return PacketDecoder(config.sources)


def only_event(results) -> Event:
    assert len(results) == 1, results
    assert isinstance(results[0], Event), results[0]
    return results[0]


def test_every_sample_packet_decodes_or_fails_with_a_reason(decoder):
    failures = {}
    for path in sample_files():
        for result in decoder.decode(packet_of(path)):
            if isinstance(result, DecodeFailure):
                failures[path.name] = result.reason
    # The only sample files that are not notices are the GCN schema's `core` fragments.
    assert set(failures) == {
        f"core.{name}.example.json" for name in ("Localization", "Pointing", "Reporter", "Spectral", "Statistics")
    }
    assert all("core schema fragment" in reason for reason in failures.values())


def test_ztf_v3_packet(decoder):
    path = DATA / "ztf" / "1095578115815010001.avro"
    event = only_event(decoder.decode(packet_of(path)))
    record = next(fastavro.reader(path.open("rb")))
    jd = record["candidate"]["jd"]
    assert event.event_id == "ztf:1095578115815010001"
    assert event.object_id == record["objectId"]
    assert event.source == "ztf" and event.raw_format == "ztf-avro"
    expected = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(days=jd - 2458849.5)
    assert abs(event.event_time - expected) < timedelta(milliseconds=1)
    assert event.ra == pytest.approx(record["candidate"]["ra"])
    assert event.mag == pytest.approx(record["candidate"]["magpsf"])
    assert event.band == "r"
    assert event.quality["isdiffpos"] is False
    assert event.quality["ssdistnr"] is None  # -999 means none
    assert event.raw == path.read_bytes()
    assert event.schema_version == "3.3"


def test_ztf_v4_packet_with_forced_photometry(decoder):
    path = next(iter(sample_files("ztf/*v4_02.avro")))
    event = only_event(decoder.decode(packet_of(path)))
    assert event.schema_version == "4.02"
    assert event.features["n_prior"] > 0
    assert event.features["days_since_first"] > 100


def test_ztf_v32_packet_without_drb(decoder):
    event = only_event(decoder.decode(packet_of(DATA / "ztf" / "2019_01_10_739260766315010006.avro")))
    assert event.quality["drb"] is None
    assert event.schema_version == "3.2"


def test_rubin_container_packet_time_is_tai_converted_to_utc(decoder):
    path = sample_files("rubin/*.avro")[0]
    event = only_event(decoder.decode(packet_of(path)))
    record = next(fastavro.reader(path.open("rb")))
    source = record["diaSource"]
    assert event.event_id == f"rubin:{source['diaSourceId']}"
    expected = MJD_EPOCH + timedelta(days=source["midpointMjdTai"]) - TAI_MINUS_UTC
    assert abs(event.event_time - expected) < timedelta(milliseconds=1)
    assert event.schema_version == "9.0"
    assert event.band == source["band"]
    assert event.mag == pytest.approx(31.4 - 2.5 * math.log10(source["psfFlux"]))
    assert event.quality["reliability"] == pytest.approx(source["reliability"])


def confluent_bytes(record: dict, major: int, minor: int) -> bytes:
    schema = registry().get(schema_id_for(major, minor))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return b"\x00" + struct.pack(">I", schema_id_for(major, minor)) + body.getvalue()


def test_rubin_confluent_wire_format_matches_the_container(decoder):
    path = sample_files("rubin/*.avro")[1]
    record = next(fastavro.reader(path.open("rb")))
    payload = confluent_bytes(record, 9, 0)
    assert sniff(payload) == "rubin-confluent"
    from_wire = only_event(decoder.decode(Packet(payload=payload, origin="kafka")))
    from_file = only_event(decoder.decode(packet_of(path)))
    assert from_wire.raw_format == "rubin-confluent" and from_wire.raw == payload
    for name in ("event_id", "event_time", "ra", "dec", "mag", "band", "quality"):
        assert getattr(from_wire, name) == getattr(from_file, name), name


def test_registry_holds_schemas_v7_to_v11():
    ids = registry().known_ids()
    for wanted in (700, 800, 900, 1000, 1100, 1101):
        assert wanted in ids


def test_gcn_json_notices_of_every_mission(decoder):
    kinds = {}
    for path in sample_files("gcn/json/*.json"):
        if path.name.startswith("core."):
            continue
        event = only_event(decoder.decode(packet_of(path)))
        assert event.source == "gcn" and event.raw_format == "gcn-json"
        kinds[path.name] = event.kind
    assert kinds["fermi.gbm.trigger.alert.example.json"] == "grb"
    assert kinds["icecube.single_neutrino_alerts.gold_bronze_track_alerts.example.json"] == "neutrino"
    assert kinds["chime.frb.detection.example.json"] == "frb"
    assert kinds["einstein_probe.wxt.alert.example.json"] == "xray_transient"


def test_gcn_json_ellipse_error_and_flags(decoder):
    ellipse = only_event(decoder.decode(packet_of(DATA / "gcn/json/maxi.gsc.unknown.ellipse.example.json")))
    assert ellipse.pos_error_deg == pytest.approx(0.22)
    assert ellipse.event_time == datetime(2023, 2, 20, 8, 56, 1, tzinfo=timezone.utc)
    test = only_event(decoder.decode(packet_of(DATA / "gcn/json/superk.sn_alert.test.example.json")))
    assert test.quality["is_test"] is True
    retraction = only_event(decoder.decode(packet_of(DATA / "gcn/json/swift.bat.Guano.Retraction.example.json")))
    assert retraction.quality["is_retraction"] is True
    # A mission named only by the $schema URL.
    chime = only_event(decoder.decode(packet_of(DATA / "gcn/json/chime.frb.detection.example.json")))
    assert chime.quality["mission"] == "chime"


def test_gcn_json_same_notice_twice_has_one_id(decoder):
    path = DATA / "gcn/json/fermi.gbm.trigger.flight1.example.json"
    notice = json.loads(path.read_text())
    reformatted = json.dumps(notice, indent=4).encode()
    first = only_event(decoder.decode(packet_of(path)))
    second = only_event(decoder.decode(Packet(payload=reformatted, origin="again")))
    other = only_event(decoder.decode(packet_of(DATA / "gcn/json/fermi.gbm.trigger.flight2.example.json")))
    assert first.event_id == second.event_id != other.event_id
    assert first.object_id == other.object_id == "Fermi:745121685"


def test_voevent_fermi_position(decoder):
    path = DATA / "gcn/voevent/719325015_1697632240.6940637_0.xml"
    event = only_event(decoder.decode(packet_of(path)))
    assert event.event_id == "gcn:ivo://nasa.gsfc.gcn/Fermi#GBM_Flt_Pos_2023-10-18T12:30:10.66_719325015_45-173"
    assert event.kind == "grb"
    assert (event.ra, event.dec, event.pos_error_deg) == (4.35, 53.1, 16.7333)
    assert event.event_time == datetime(2023, 10, 18, 12, 30, 10, 660000, tzinfo=timezone.utc)
    assert event.quality["most_likely_index"] == 4 and event.quality["is_noise"] is False


def test_voevent_noise_and_test_roles(decoder):
    text = (DATA / "gcn/voevent/719325015_1697632240.6940637_0.xml").read_text()
    noise = text.replace('name="Most_Likely_Index" value="4"', 'name="Most_Likely_Index" value="2"')
    assert only_event(decoder.decode(Packet(payload=noise.encode(), origin="x"))).quality["is_noise"] is True
    test = text.replace('role="observation"', 'role="test"')
    assert only_event(decoder.decode(Packet(payload=test.encode(), origin="x"))).quality["is_test"] is True


def test_voevent_with_the_voe_namespace_prefix(decoder):
    """Live GCN classic notices write <voe:VOEvent xmlns:voe=...>; the sample files do not."""
    text = (DATA / "gcn/voevent/719325015_1697632240.6940637_0.xml").read_text()
    prefixed = text.replace("<VOEvent ", '<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ', 1)
    prefixed = prefixed.replace("</VOEvent>", "</voe:VOEvent>")
    event = only_event(decoder.decode(Packet(payload=b'<?xml version="1.0"?>\n' + prefixed.encode(), origin="x")))
    assert event.ra == 4.35 and event.kind == "grb"


@pytest.mark.parametrize("value", [2458850.0781134, 2460736.6771181, 2457754.4999, 2459942.7168403])
def test_survey_times_agree_with_astropy(value):
    from astropy.time import Time

    from core.decoders.common import jd_utc_to_datetime, mjd_tai_to_datetime

    expected = Time(value, format="jd", scale="utc").to_datetime(timezone=timezone.utc)
    assert abs(jd_utc_to_datetime(value) - expected) < timedelta(microseconds=50)
    mjd = value - 2400000.5
    expected_tai = Time(mjd, format="mjd", scale="tai").utc.to_datetime(timezone=timezone.utc)
    assert abs(mjd_tai_to_datetime(mjd) - expected_tai) < timedelta(microseconds=50)


def test_gcn_json_ids_are_unchanged_by_the_fast_parser(config):
    """The fast path (orjson) digests the same canonical JSON as the standard library always did: a notice stored
    by an older Nightwatch keeps its id on replay. Floats in exponent form and non-ASCII text take the old path."""
    import hashlib

    from devtools.simulator import generate_packets

    decoder = PacketDecoder(config.sources)
    payloads = [path.read_bytes() for path in sample_files("gcn/json/*.json")]
    payloads += [p.payload for p in generate_packets(400, seed=5, mix={"gcn": 1.0}) if p.payload[:1] == b"{"]
    payloads.append(json.dumps({"trigger_time": "2025-01-01T00:00:00Z", "id": ["é"], "far": 3.9e-05}).encode())
    checked = 0
    for payload in payloads:
        (event,) = decoder.decode(Packet(payload=payload, origin="t"))
        if not isinstance(event, Event):
            continue
        notice = json.loads(payload.decode("utf-8-sig"))
        canonical = json.dumps(notice, sort_keys=True, separators=(",", ":")).encode()
        assert event.event_id.endswith(":" + hashlib.sha256(canonical).hexdigest()[:12])
        checked += 1
    assert checked > 100
