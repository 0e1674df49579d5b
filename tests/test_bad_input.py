"""Corrupted variants of real packets: each becomes a dead letter with a readable reason, never an exception."""

from __future__ import annotations

import io
import json
import struct
from datetime import datetime, timezone

import fastavro
import pytest

from core.decoders import DecodeFailure, PacketDecoder
from core.event import Packet
from tests.conftest import DATA, sample_files

ZTF = DATA / "ztf" / "1095578115815010001.avro"
RUBIN = sample_files("rubin/*.avro")[0]
GCN_JSON = DATA / "gcn/json/fermi.gbm.trigger.final.example.json"
VOEVENT = DATA / "gcn/voevent/719325015_1697632240.6940637_0.xml"


@pytest.fixture(scope="module")
def decoder(config):
    return PacketDecoder(config.sources)


def failure(decoder, payload: bytes) -> DecodeFailure:
    results = decoder.decode(Packet(payload=payload, origin="test"))
    assert len(results) == 1 and isinstance(results[0], DecodeFailure), results
    assert results[0].payload == payload  # the raw bytes are kept
    return results[0]


def rewrite_ztf(change) -> bytes:
    """The real ZTF packet with its record changed, re-encoded with a (possibly changed) schema."""
    reader = fastavro.reader(ZTF.open("rb"))
    schema, record = reader.writer_schema, next(reader)
    schema, record = change(schema, record)
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [record])
    return buffer.getvalue()


def set_candidate(**values):
    def change(schema, record):
        record["candidate"].update(values)
        return schema, record

    return change


def test_truncated_avro(decoder):
    data = ZTF.read_bytes()
    assert "corrupt" in failure(decoder, data[: len(data) // 2]).reason


def test_flipped_bytes_in_avro_header(decoder):
    data = bytearray(ZTF.read_bytes())
    data[10:40] = bytes(b ^ 0xFF for b in data[10:40])
    assert "corrupt" in failure(decoder, bytes(data)).reason


def test_flipped_bytes_in_avro_data_block(decoder):
    data = bytearray(RUBIN.read_bytes())
    stream = io.BytesIO(bytes(data))
    fastavro.reader(stream)  # reads the header: the stream now stands at the first data block
    start = stream.tell() + 4
    data[start : start + 64] = bytes(b ^ 0xFF for b in data[start : start + 64])
    result = decoder.decode(Packet(payload=bytes(data), origin="test"))
    assert len(result) == 1 and isinstance(result[0], DecodeFailure), result


def test_unknown_avro_schema(decoder):
    buffer = io.BytesIO()
    schema = {"type": "record", "name": "weather", "fields": [{"name": "t", "type": "double"}]}
    fastavro.writer(buffer, schema, [{"t": 1.0}])
    assert "unknown Avro schema 'weather'" in failure(decoder, buffer.getvalue()).reason


def test_wrong_type_in_field(decoder):
    def ra_as_string(schema, record):
        for field in schema["fields"]:
            if field["name"] == "candidate":
                for sub in field["type"]["fields"]:
                    if sub["name"] == "ra":
                        sub["type"] = "string"
        record["candidate"]["ra"] = "twelve"
        return schema, record

    assert "candidate.ra is not a number" in failure(decoder, rewrite_ztf(ra_as_string)).reason


def test_missing_required_field(decoder):
    def jd_nullable_and_null(schema, record):
        for field in schema["fields"]:
            if field["name"] == "candidate":
                for sub in field["type"]["fields"]:
                    if sub["name"] == "jd":
                        sub["type"] = ["null", "double"]
        record["candidate"]["jd"] = None
        return schema, record

    assert "missing required field candidate.jd" in failure(decoder, rewrite_ztf(jd_nullable_and_null)).reason


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"ra": float("nan")}, "candidate.ra is not finite"),
        ({"dec": 95.0}, "dec 95.0 out of range"),
        ({"ra": 361.0}, "ra 361.0 out of range"),
        ({"jd": 2_000_000.0}, "impossible Julian date"),
        ({"jd": 2447000.5}, "before 1990"),
        ({"jd": 2469000.5}, "after the time it was received"),
    ],
)
def test_impossible_values(decoder, values, words):
    assert words in failure(decoder, rewrite_ztf(set_candidate(**values))).reason


def test_empty_and_unknown_formats(decoder):
    assert failure(decoder, b"").reason == "empty packet"
    assert "unknown format" in failure(decoder, b"\x89PNG\r\n\x1a\n....").reason


def test_confluent_unknown_schema_id_and_leftover_bytes(decoder):
    assert "unknown Rubin schema id 4242" in failure(decoder, b"\x00" + struct.pack(">I", 4242) + b"abc").reason
    record = next(fastavro.reader(RUBIN.open("rb")))
    from tests.test_decoders import confluent_bytes

    payload = confluent_bytes(record, 9, 0)
    assert "does not match schema id 900" in failure(decoder, payload + b"trailing").reason
    assert "does not match schema id 900" in failure(decoder, payload[: len(payload) // 3]).reason
    # A v9 record read as v7: a schema mismatch, not a crash.
    wrong = b"\x00" + struct.pack(">I", 700) + payload[5:]
    assert "schema" in failure(decoder, wrong).reason


def test_gcn_json_damage(decoder):
    notice = json.loads(GCN_JSON.read_text())
    assert "invalid JSON" in failure(decoder, GCN_JSON.read_bytes()[:-20]).reason
    del notice["trigger_time"], notice["alert_datetime"]
    assert "missing required field" in failure(decoder, json.dumps(notice).encode()).reason
    assert "expected an object" in failure(decoder, b"[1, 2, 3]").reason
    future = json.loads(GCN_JSON.read_text()) | {"trigger_time": "2999-01-01T00:00:00Z"}
    assert "after the time it was received" in failure(decoder, json.dumps(future).encode()).reason
    bad_dec = json.loads(GCN_JSON.read_text()) | {"dec": -120}
    assert "dec -120" in failure(decoder, json.dumps(bad_dec).encode()).reason
    bad_time = json.loads(GCN_JSON.read_text()) | {"trigger_time": "yesterday"}
    assert "not an ISO time" in failure(decoder, json.dumps(bad_time).encode()).reason


def test_voevent_damage(decoder):
    text = VOEVENT.read_bytes()
    assert "invalid XML" in failure(decoder, text[: len(text) // 2]).reason
    assert "not a VOEvent" in failure(decoder, b"<html><body>hi</body></html>").reason
    no_time = VOEVENT.read_text().replace("<ISOTime>2023-10-18T12:30:10.66</ISOTime>", "")
    assert "missing required field WhereWhen ISOTime" in failure(decoder, no_time.encode()).reason


def test_entity_expansion_is_not_followed(decoder):
    hostile = b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]><VOEvent ivorn="ivo://x/y#z">&x;</VOEvent>'
    reason = failure(decoder, hostile).reason
    assert "root:" not in reason


def test_multi_alert_container_keeps_good_alerts_and_dead_letters_bad_ones(decoder):
    reader = fastavro.reader(ZTF.open("rb"))
    schema, record = reader.writer_schema, next(reader)
    good = record | {"candid": 1}
    bad = record | {"candid": 2, "candidate": record["candidate"] | {"dec": -91.0}}
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [good, bad])
    results = decoder.decode(Packet(payload=buffer.getvalue(), origin="two", received_time=datetime.now(timezone.utc)))
    assert [type(result).__name__ for result in results] == ["Event", "DecodeFailure"]
    assert "dec -91.0 out of range" in results[1].reason
    # Each alert's raw bytes are a container of its own, readable on its own.
    assert next(fastavro.reader(io.BytesIO(results[0].raw)))["candid"] == 1
    assert next(fastavro.reader(io.BytesIO(results[1].payload)))["candid"] == 2


def test_dead_letters_name_the_likely_source(decoder):
    data = ZTF.read_bytes()
    assert failure(decoder, data[: len(data) // 2]).source == "ztf"
    assert failure(decoder, RUBIN.read_bytes()[:5000]).source == "rubin"
    assert failure(decoder, b"{not json").source == "gcn"
    assert failure(decoder, b"\x89PNG\r\n").source == "unknown"
