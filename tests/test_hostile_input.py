"""Property-based: mutated real packets through the real decoders and the real batch run (issue 15).

Whatever the bytes (truncated, bit-flipped, under the wrong schema, with hostile strings or non-finite numbers,
oversized, compression bombs), the decoder never raises: it returns events that every store can hold, or dead
letters whose reason is one clean line (no traceback, no NUL, valid Unicode). A real `run` over a mixed batch
of good and hostile packets (and a symlink to /dev/zero and a FIFO) balances its accounts and stores every good
packet's events.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import load_config
from config.limits import InputLimits
from core.decoders import DecodeFailure, PacketDecoder
from core.decoders.common import storable
from core.event import Event, Packet
from tests.conftest import DATA, sample_files
from tests.test_input_limits import container, deflate_zeros

CONFIG = load_config()
# Small limits, so oversized packets and bombs are cheap to make; the shipped limits are tested in test_input_limits.
LIMITS = InputLimits(max_packet_bytes=2 << 20, max_decompressed_bytes=4 << 20, max_records_per_container=50)
DECODER = PacketDecoder(CONFIG.sources, LIMITS)
SAMPLES = {
    "ztf": sample_files("ztf/*.avro")[:3],
    "rubin": sample_files("rubin/*.avro")[:3],
    "gcn-json": sample_files("gcn/json/**/*.json")[:6],
    "voevent": sample_files("gcn/voevent/**/*.xml")[:6],
}
FERMI = DATA / "gcn/json/fermi.gbm.trigger.final.example.json"
ALL = [path for paths in SAMPLES.values() for path in paths]
HOSTILE_TEXT = st.sampled_from(
    ["\x00", "\udfff", "\ud800x", "a" * 300, "x" * 5000, "💥" * 200, "\u202e", "<![CDATA[", "'; DROP TABLE events;--"]
) | st.text(max_size=300)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, 1e308 * 10, -1e400, 2**70])
HOSTILE_VALUE = HOSTILE_TEXT | NON_FINITE | st.booleans() | st.none() | st.integers() | st.floats()
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(payload: bytes) -> list[Event | DecodeFailure]:
    """Decode: never raises; events storable; failures with one clean line of reason."""
    results = DECODER.decode(Packet(payload=payload, origin="hypothesis"))
    assert results
    for result in results:
        if isinstance(result, DecodeFailure):
            reason = result.reason
            assert reason and len(reason) <= 2000
            assert "Traceback" not in reason and 'File "' not in reason and "\n" not in reason
            assert "\x00" not in reason
            reason.encode("utf-8")  # no lone surrogate
            assert len(result.payload) <= max(len(payload), LIMITS.dead_letter_prefix_bytes)
        else:
            assert isinstance(result, Event)
            assert storable(result) is None
    return results


@SETTINGS
@given(path=st.sampled_from(ALL), cut=st.floats(0, 1))
def test_truncated_packets(path, cut):
    data = path.read_bytes()
    check(data[: int(len(data) * cut)])


@SETTINGS
@given(path=st.sampled_from(ALL), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips(path, flips):
    data = bytearray(path.read_bytes())
    for where, bit in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    check(bytes(data))


@SETTINGS
@given(
    path=st.sampled_from([FERMI, *SAMPLES["gcn-json"]]),
    field=st.sampled_from(
        [
            "ra",
            "dec",
            "ra_dec_error",
            "id",
            "mission",
            "instrument",
            "trigger_time",
            "alert_type",
            "$schema",
            "classification",
            "rate_snr",
        ]
    ),
    value=HOSTILE_VALUE,
)
def test_gcn_json_with_hostile_values(path, field, value):
    notice = json.loads(path.read_text())
    notice[field] = value
    payload = json.dumps(notice, ensure_ascii=True).encode()  # NaN and Infinity written as JSON's careless senders do
    [result] = check(payload)
    if isinstance(result, Event):
        for number in (result.ra, result.dec, result.pos_error_deg):
            assert number is None or math.isfinite(number)
        # A coordinate is a JSON number or missing; an error radius counts only with a position.
        if field in ("ra", "dec") or (field == "ra_dec_error" and result.ra is not None):
            assert value is None or (isinstance(value, int | float) and not isinstance(value, bool)), result


@SETTINGS
@given(
    path=st.sampled_from(SAMPLES["voevent"]),
    tag=st.sampled_from(["C1", "C2", "Error2Radius", "ISOTime"]),
    text=HOSTILE_TEXT | NON_FINITE.map(repr),
)
def test_voevent_with_hostile_values(path, tag, text):
    import re
    from xml.sax.saxutils import escape

    safe = escape("".join(ch for ch in str(text) if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF))
    source = path.read_text()
    if f"<{tag}>" not in source:
        return
    [result] = check(re.sub(rf"<{tag}>[^<]*</{tag}>", lambda _: f"<{tag}>{safe}</{tag}>", source).encode())
    if isinstance(result, Event) and result.ra is not None:
        assert math.isfinite(result.ra) and 0 <= result.ra < 360


def ztf_rewritten(change) -> bytes:
    reader = fastavro.reader(SAMPLES["ztf"][0].open("rb"))
    schema, record = reader.writer_schema, next(reader)
    schema, record = change(schema, record)
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [record])
    return buffer.getvalue()


@SETTINGS
@given(field=st.sampled_from(["ra", "dec", "jd", "magpsf", "sigmapsf", "rb"]), value=NON_FINITE | st.floats())
def test_ztf_with_non_finite_numbers(field, value):
    def change(schema, record):
        record["candidate"][field] = float(value) if not isinstance(value, int) else float(min(value, 1e300))
        return schema, record

    [result] = check(ztf_rewritten(change))
    if isinstance(result, Event):
        assert math.isfinite(result.ra) and math.isfinite(result.dec)


@SETTINGS
@given(object_id=HOSTILE_TEXT)
def test_ztf_with_hostile_object_ids(object_id):
    def change(schema, record):
        record["objectId"] = object_id
        return schema, record

    try:
        payload = ztf_rewritten(change)
    except (UnicodeEncodeError, ValueError):  # fastavro cannot even write a lone surrogate: nothing to decode
        return
    [result] = check(payload)
    if isinstance(result, Event):
        assert len(result.object_id) <= 128 and "\x00" not in result.object_id


@SETTINGS
@given(source=st.sampled_from(["ztf", "rubin"]), other=st.sampled_from(["ztf", "rubin"]), cut=st.integers(0, 4000))
def test_wrong_schema_in_the_header(source, other, cut):
    """One survey's data under another's (or a damaged) writer schema."""
    from core.decoders.container import read_header

    data = SAMPLES[source][0].read_bytes()
    foreign = SAMPLES[other][-1].read_bytes()
    _, _, _, _, data_start = read_header(data)
    _, _, _, _, foreign_start = read_header(foreign)
    # The other file's header (schema and sync marker) followed by this file's blocks, the sync re-stamped.
    sync = foreign[foreign_start - 16 : foreign_start]
    body = data[data_start:-16] + sync
    check(foreign[:foreign_start] + body[cut:] if cut % 2 else foreign[:foreign_start] + body)


@SETTINGS
@given(count=st.integers(0, 2**62), size=st.integers(0, 200), codec=st.sampled_from(["null", "deflate", "xz"]))
def test_containers_declaring_anything(count, size, codec):
    from core.decoders.container import read_header

    schema = read_header(SAMPLES["ztf"][0].read_bytes())[0]
    [result] = check(container(schema, codec, [(count, os.urandom(size))]))
    assert isinstance(result, DecodeFailure)


@settings(max_examples=6, deadline=None)
@given(megabytes=st.integers(5, 40), codec=st.sampled_from(["deflate", "zstandard", "bzip2"]))
def test_compression_bombs(megabytes, codec):
    import bz2

    import zstandard

    from core.decoders.container import read_header

    zeros = bytes(megabytes << 20)
    data = {
        "deflate": lambda: deflate_zeros(megabytes << 20),
        "zstandard": lambda: zstandard.ZstdCompressor().compress(zeros),
        "bzip2": lambda: bz2.compress(zeros, 1),
    }[codec]()
    schema = read_header(SAMPLES["ztf"][0].read_bytes())[0]
    [result] = check(container(schema, codec, [(1, data)]))
    assert "decompresses to more than the limit" in result.reason


@settings(max_examples=5, deadline=None)
@given(extra=st.integers(1, 1 << 20))
def test_oversized_packets(extra):
    payload = SAMPLES["gcn-json"][0].read_bytes() + b" " * (LIMITS.max_packet_bytes + extra)
    [result] = check(payload)
    assert "over the limit" in result.reason


# --- the real batch run over a mixed batch -----------------------------------------------------------------------


def hostile_packets(rng: random.Random) -> dict[str, bytes]:
    """One of each kind of bad packet, made from real ones: each must become exactly one dead letter."""
    from core.decoders.container import read_header

    ztf = SAMPLES["ztf"][0].read_bytes()
    notice = json.loads(FERMI.read_text())  # a notice with a position
    schema = read_header(ztf)[0]
    flipped = bytearray(ztf)
    start = read_header(ztf)[4]
    for _ in range(64):
        flipped[rng.randrange(start, len(ztf) - 16)] ^= 0xFF
    return {
        "truncated.avro": ztf[: len(ztf) // 2],
        "flipped.avro": bytes(flipped),
        "nan.json": json.dumps(notice | {"ra": math.nan, "dec": math.nan}).encode(),
        "minus99.json": json.dumps(notice | {"ra": -99}).encode(),
        "surrogate.json": json.dumps(notice | {"id": ["\udfff"]}).encode(),
        "nul.json": json.dumps(notice | {"id": ["a\x00b"]}).encode(),
        "long-object.avro": ztf_rewritten(lambda s, r: (s, r | {"objectId": "ZTF" + "x" * 197})),
        "bomb.avro": container(schema, "deflate", [(1, deflate_zeros(200 << 20))]),
        "huge-count.avro": container(schema, "null", [(2**62, b"\x00" * 20)]),
        "garbage.bin": bytes(rng.randrange(256) for _ in range(500)),
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_mixed_batch_through_the_real_run(tmp_path, backend, request):
    from pipeline.batch import run
    from store.hot import HotStore
    from store.schema import dead_letters, events

    folder = tmp_path / "in"
    folder.mkdir()
    good = [*SAMPLES["ztf"], *SAMPLES["rubin"], *SAMPLES["gcn-json"], *SAMPLES["voevent"]]
    expected_ids: set[str] = set()
    for index, path in enumerate(good):
        (folder / f"good-{index}{path.suffix}").write_bytes(path.read_bytes())
        for result in PacketDecoder(CONFIG.sources).decode(Packet(payload=path.read_bytes(), origin=str(path))):
            if isinstance(result, Event):
                expected_ids.add(result.event_id)
    # Valid inputs the decoder used to refuse, stored like the others.
    bom = b"\xef\xbb\xbf" + SAMPLES["gcn-json"][1].read_bytes()
    (folder / "bom.json").write_bytes(bom)
    voevent = SAMPLES["voevent"][1].read_text()
    (folder / "utf16.xml").write_bytes(voevent.encode("utf-16"))
    hostile = hostile_packets(random.Random(15))
    for name, payload in hostile.items():
        (folder / name).write_bytes(payload)
    (folder / "zero.avro").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.avro")
    refused = len(hostile) + 2

    url = f"sqlite:///{tmp_path / 'out' / 'nightwatch.db'}"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    summary = run([f"--input={folder}/*", f"--output={tmp_path / 'out'}", f"--db_url={url}", "--run_id=hostile"])
    print(summary.table())
    assert summary.accounted, summary.table()
    store = HotStore(url)
    with store.engine.connect() as conn:
        stored = set(conn.execute(events.select().with_only_columns(events.c.event_id)).scalars())
        letters = conn.execute(dead_letters.select()).all()
    store.close()
    assert expected_ids <= stored, sorted(expected_ids - stored)[:5]
    assert len(stored) == len(expected_ids)  # the BOM and UTF-16 copies are the same events, stored once
    assert len(letters) == refused, [(row.origin, row.reason) for row in letters]
    assert summary.received == len(expected_ids) + 2 + refused  # the two re-encoded copies are received too
    by_file = {Path(row.origin).name: row.reason for row in letters}
    assert by_file["zero.avro"].startswith("refused: a symlink to /dev/zero, outside the input root")
    assert by_file["fifo.avro"].endswith("is a FIFO, not a regular file")
    assert (
        by_file["bomb.avro"] == "Avro data decompresses to more than the limit of 67108864 bytes (a compression bomb?)"
    )
    assert by_file["nan.json"] == "field ra is not finite: nan"
    assert by_file["minus99.json"] == "ra -99.0 out of range [0, 360)"
    assert all("Traceback" not in reason for reason in by_file.values())
