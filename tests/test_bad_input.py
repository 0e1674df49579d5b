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


# --- coordinates, error radii and text fields (issue 15, items 1, 13, 14) --------------------------------------


def gcn_with(**changes) -> bytes:
    """The real Fermi notice with fields changed (json.dumps writes NaN as the bare word, as a careless sender does)."""
    return json.dumps(json.loads(GCN_JSON.read_text()) | changes).encode()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ra": float("nan"), "dec": float("nan")}, "field ra is not finite: nan"),
        ({"ra": -99}, "ra -99.0 out of range [0, 360)"),  # -99 is not a missing value here
        ({"ra": 360.0}, "ra 360.0 out of range [0, 360)"),
        ({"dec": 90.5}, "dec 90.5 out of range [-90, 90]"),
        ({"ra": True, "dec": False}, "field ra is a boolean, not a number: True"),
        ({"dec": "south"}, "field dec is not a number: 'south'"),
        ({"dec": None}, "position incomplete: dec is missing (ra and dec go together)"),
        ({"ra_dec_error": float("nan")}, "field ra_dec_error is not finite: nan"),
        ({"ra_dec_error": [1.0, float("inf"), 30]}, "field ra_dec_error is not finite: inf"),
        ({"ra_dec_error": -1}, "ra_dec_error -1.0 out of range [0, 180]"),
    ],
)
def test_gcn_coordinates_are_checked_with_exact_reasons(decoder, changes, reason):
    assert failure(decoder, gcn_with(**changes)).reason == reason


def test_gcn_without_a_position_is_still_an_event(decoder):
    notice = json.loads(GCN_JSON.read_text())
    del notice["ra"], notice["dec"], notice["ra_dec_error"]
    [event] = decoder.decode(Packet(payload=json.dumps(notice).encode(), origin="t"))
    assert event.ra is None and event.features["has_position"] is False


@pytest.mark.parametrize(
    ("c1", "reason"),
    [
        ("<C1>abc</C1>", "field C1 (ra) is not a number: 'abc'"),
        ("<C1>NaN</C1>", "field C1 (ra) is not finite: 'NaN'"),
        ("<C1></C1>", "position incomplete: C1 (ra) is missing (C1 (ra) and C2 (dec) go together)"),
        ("<C1>-5</C1>", "C1 (ra) -5.0 out of range [0, 360)"),
    ],
)
def test_a_voevent_position_that_does_not_parse_is_refused(decoder, c1, reason):
    import re

    text = re.sub(r"<C1>[^<]*</C1>", c1, VOEVENT.read_text())
    assert failure(decoder, text.encode()).reason == reason


@pytest.mark.parametrize(
    ("trigger", "reason"),
    [
        ("\udfff", "event_id holds a lone surrogate '\\udfff' at 10: not valid Unicode text"),
        ("a\x00b", "event_id holds a NUL character at 11"),
        ("x" * 300, "event_id is 323 characters: the store holds at most 256"),
    ],
)
def test_ids_every_store_cannot_hold_are_dead_letters_at_decode(decoder, trigger, reason):
    letter = failure(decoder, gcn_with(id=[trigger]))
    assert letter.reason == reason
    assert "\x00" not in letter.reason and letter.reason.encode("utf-8")  # the reason itself is storable


def test_a_long_ztf_object_id_is_a_dead_letter_at_decode(decoder):
    def long_object_id(schema, record):
        record["objectId"] = "ZTF" + "x" * 197
        return schema, record

    reason = failure(decoder, rewrite_ztf(long_object_id)).reason
    assert reason.endswith("object_id is 200 characters: the store holds at most 128")


def test_hostile_text_in_quality_fields_is_refused(decoder):
    assert "quality.instrument holds a NUL character at 1" in failure(decoder, gcn_with(instrument="G\x00BM")).reason


def test_json_with_a_byte_order_mark_is_accepted(decoder):
    plain = decoder.decode(Packet(payload=GCN_JSON.read_bytes(), origin="t"))
    [event] = decoder.decode(Packet(payload=b"\xef\xbb\xbf" + GCN_JSON.read_bytes(), origin="t"))
    assert event.event_id == plain[0].event_id and (event.ra, event.dec) == (29.24, -63.62)


@pytest.mark.parametrize(
    ("declared", "encoding"),
    [
        (None, "utf-16"),  # with a byte-order mark
        (None, "utf-32"),
        ("UTF-16", "utf-16-le"),  # no mark: the declaration says
        ("UTF-16", "utf-16-be"),
        ("UTF-32", "utf-32-be"),
        (None, "utf-8-sig"),
    ],
)
def test_voevent_in_utf16_and_utf32_is_accepted(decoder, declared, encoding):
    text = VOEVENT.read_text()
    if declared:
        text = f'<?xml version="1.0" encoding="{declared}"?>\n' + text
    [original] = decoder.decode(Packet(payload=VOEVENT.read_bytes(), origin="t"))
    [event] = decoder.decode(Packet(payload=text.encode(encoding), origin="t"))
    assert not isinstance(event, DecodeFailure), event
    assert (event.event_id, event.ra, event.dec, event.pos_error_deg) == (
        original.event_id,
        original.ra,
        original.dec,
        original.pos_error_deg,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_what_decode_lets_through_every_store_holds(decoder, backend, tmp_path, request):
    """At the limits (an object id of exactly 128 characters) the event is stored; the dead letters of hostile
    packets (a NUL, a lone surrogate in their reasons' subject) are stored too, on SQLite and PostgreSQL."""
    from core.event import DeadLetter
    from store.hot import HotStore
    from store.schema import dead_letters, events

    url = f"sqlite:///{tmp_path}/hot.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store = HotStore(url)
    store.ensure_schema()
    [event] = decoder.decode(Packet(payload=gcn_with(id=["t" * 122]), origin="t"))
    assert len(event.object_id) == 128
    event.event_class, event.night = "routine", "2024-08-23"
    assert store.add_events([event]) == {event.event_id}
    letters = [failure(decoder, gcn_with(id=[bad])) for bad in ("\udfff", "a\x00b", "x" * 300)]
    letters.append(failure(decoder, gcn_with(instrument="\x00\udfff")))
    stored = store.add_dead_letters(
        [DeadLetter(source=f.source, stage="decode", reason=f.reason, payload=f.payload, origin="t") for f in letters]
    )
    assert len(stored) == 4
    assert store.count(events) == 1 and store.count(dead_letters) == 4
    store.close()
