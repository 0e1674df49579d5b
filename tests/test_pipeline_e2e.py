"""The whole batch pipeline over every real sample packet: nothing lost, nothing duplicated."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import fastavro
import pytest
import sqlalchemy as sa

from pipeline.batch import run
from store.hot import HotStore
from store.schema import alerts, dead_letters, events, review_queue
from store.tiers import read_archive, read_warm
from tests.conftest import DATA, sample_files


def run_over_samples(output: Path, *extra: str):
    return run([f"--input={DATA}/**/*", f"--output={output}", *extra])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("e2e")
    return output, run_over_samples(output)


def test_every_packet_is_accounted_for(first_run):
    output, summary = first_run
    files = sample_files() + sorted((DATA / "schemas").glob("**/*.avsc"))
    assert summary.count("packets") == len(files)
    assert summary.accounted and summary.ok, summary.table()
    store = HotStore(f"sqlite:///{output}/nightwatch.db")
    stored = store.count(events)
    letters = store.count(dead_letters)
    assert stored + letters == summary.received == len(files)  # one alert per sample file
    assert stored == sum(summary.by_class.values())
    # Every file is in the store, as an event from it or as a dead letter holding its bytes.
    with store.engine.connect() as conn:
        origins = {json.loads(payload)["origin"] for payload in conn.execute(sa.select(events.c.payload)).scalars()}
        letter_rows = conn.execute(
            sa.select(dead_letters.c.origin, dead_letters.c.payload, dead_letters.c.reason)
        ).all()
    for origin, payload, reason in letter_rows:
        assert Path(origin).read_bytes() == payload and reason
    assert origins | {row.origin for row in letter_rows} == {str(path) for path in files}


def test_routing_writes_alerts_and_review_queue(first_run):
    output, summary = first_run
    store = HotStore(f"sqlite:///{output}/nightwatch.db")
    by_class = store.counts_by(events, "event_class")
    assert by_class == {name: count for name, count in summary.by_class.items() if count}
    levels = store.counts_by(alerts, "level")
    assert levels.get("CRITICAL", 0) == by_class.get("critical", 0) > 0
    assert levels.get("HIGH", 0) == by_class.get("significant", 0) > 0
    assert store.count(review_queue) == by_class.get("interesting", 0) > 0
    assert by_class.get("rejected", 0) > 0 and by_class.get("routine", 0) > 0


def test_warm_tier_partitioned_by_night_and_class(first_run):
    output, summary = first_run
    table = read_warm(str(output / "warm"))
    assert table.num_rows == sum(summary.by_class.values())
    assert len(set(table.column("event_id").to_pylist())) == table.num_rows
    for path in (output / "warm").glob("night=*/class=*/*.parquet"):
        night, event_class = path.parent.parent.name.split("=")[1], path.parent.name.split("=")[1]
        import pyarrow.parquet as pq

        part = pq.read_table(path)
        assert set(part.column("night").to_pylist()) == {night}
        assert set(part.column("event_class").to_pylist()) == {event_class}


def test_archive_holds_raw_packets_and_decoded_events(first_run):
    output, summary = first_run
    records = read_archive(str(output / "archive"))
    # Every event but the rejected ones: the retention table never archives them.
    assert len(records) == sum(summary.by_class.values()) - summary.by_class["rejected"]
    assert summary.by_class["rejected"] and "rejected" not in {record["event_class"] for record in records}
    ztf = next(
        record
        for record in records
        if record["source"] == "ztf" and (DATA / "ztf" / f"{record['event_id'].split(':')[1]}.avro").is_file()
    )
    candid = int(ztf["event_id"].split(":")[1])
    assert ztf["raw"] == (DATA / "ztf" / f"{candid}.avro").read_bytes()
    assert next(fastavro.reader(io.BytesIO(ztf["raw"])))["candid"] == candid
    assert json.loads(ztf["event_json"])["event_class"] == ztf["event_class"]


def test_second_run_over_the_same_input_adds_nothing(first_run):
    output, first = first_run
    store = HotStore(f"sqlite:///{output}/nightwatch.db")
    before = {table.name: store.count(table) for table in (events, alerts, review_queue, dead_letters)}
    warm_files = sorted((output / "warm").rglob("*.parquet"))
    archive_files = sorted((output / "archive").rglob("*.avro"))

    second = run_over_samples(output)
    assert second.accounted
    assert second.by_class == first.by_class
    assert second.count("events.new") == 0 and second.count("events.already_stored") == sum(first.by_class.values())
    assert {table.name: store.count(table) for table in (events, alerts, review_queue, dead_letters)} == before
    assert sorted((output / "warm").rglob("*.parquet")) == warm_files
    assert sorted((output / "archive").rglob("*.avro")) == archive_files


def test_overlapping_input_adds_only_the_new_events(tmp_path):
    ztf = sorted((DATA / "ztf").glob("10955781158*.avro"))
    run([f"--input={DATA}/ztf/109557811581501000*.avro", f"--output={tmp_path}"])
    summary = run([f"--input={DATA}/ztf/10955781158*.avro", f"--output={tmp_path}"])
    assert summary.count("events.new") == len(ztf) - len(list((DATA / "ztf").glob("109557811581501000*.avro")))
    warm = read_warm(str(tmp_path / "warm"))
    assert Counter(warm.column("event_id").to_pylist()).most_common(1)[0][1] == 1
    assert warm.num_rows == len(ztf)


def test_unreachable_hot_store_keeps_everything_in_dead_letter_files(tmp_path, beam_pipeline, config):
    """Every write to the store fails: events and dead letters end up in the fallback files, none lost."""
    import base64

    import apache_beam as beam

    from core.event import Packet
    from pipeline.graph import build_pipeline
    from store.layout import Outputs

    files = sample_files("gcn/json/*.json")
    outputs = Outputs(
        db_url="sqlite:////nonexistent-folder/nightwatch.db",
        warm_root=str(tmp_path / "warm"),
        archive_root=str(tmp_path / "archive"),
        dead_letter_root=str(tmp_path / "dead_letters"),
    )
    packets = [Packet(payload=path.read_bytes(), origin=str(path)) for path in files]
    with beam_pipeline as p:
        build_pipeline(p | beam.Create(packets), config, outputs, "run-fail")
    kept = [
        json.loads(line)
        for path in (tmp_path / "dead_letters").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    stages = Counter(record["stage"] for record in kept)
    assert stages["decode"] + stages["sink:events"] == len(files)
    assert all("unable to open database file" in record["store_error"] for record in kept)
    by_origin = {record["origin"]: record for record in kept if record["stage"] in ("decode", "sink:events")}
    for path in files:
        assert base64.b64decode(by_origin[str(path)]["payload_base64"]) == path.read_bytes()


def test_corrupted_real_packets_land_in_dead_letters_with_reasons(tmp_path):
    from tests.test_bad_input import ZTF, rewrite_ztf, set_candidate

    good = ZTF.read_bytes()
    flipped = bytearray(good)
    flipped[10:40] = bytes(b ^ 0xFF for b in flipped[10:40])
    corrupt = {
        "truncated.avro": (good[: len(good) // 2], "corrupt"),
        "flipped.avro": (bytes(flipped), "corrupt"),
        "nan.avro": (rewrite_ztf(set_candidate(ra=float("nan"))), "not finite"),
        "future.avro": (rewrite_ztf(set_candidate(jd=2469000.5)), "after the time it was received"),
        "empty.json": (b"", "empty packet"),
        "garbage.bin": (b"\x89PNG\r\n\x1a\n", "unknown format"),
        "cut.xml": ((DATA / "gcn/voevent/10409_1697450848.2346907_0.xml").read_bytes()[:300], "invalid XML"),
    }
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, (payload, _) in corrupt.items():
        (inputs / name).write_bytes(payload)
    (inputs / "good.avro").write_bytes(good)

    summary = run([f"--input={inputs}/*", f"--output={tmp_path / 'out'}"])
    assert summary.accounted and summary.received == len(corrupt) + 1
    assert summary.dead_letters == {"decode": len(corrupt)}
    store = HotStore(f"sqlite:///{tmp_path / 'out'}/nightwatch.db")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(dead_letters.c.origin, dead_letters.c.payload, dead_letters.c.reason)).all()
    by_name = {Path(row.origin).name: row for row in rows}
    assert set(by_name) == set(corrupt)
    for name, (payload, words) in corrupt.items():
        assert by_name[name].payload == payload
        assert words in by_name[name].reason, (name, by_name[name].reason)
    assert store.count(events) == 1


def test_identical_bad_packets_from_two_files_are_two_dead_letters(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.json", "b.json"):
        (inputs / name).write_bytes(b'{"broken": ')
    summary = run([f"--input={inputs}/*", f"--output={tmp_path / 'out'}"])
    store = HotStore(f"sqlite:///{tmp_path / 'out'}/nightwatch.db")
    assert summary.dead_letters == {"decode": 2} and store.count(dead_letters) == 2
    run([f"--input={inputs}/*", f"--output={tmp_path / 'out'}"])
    assert store.count(dead_letters) == 2  # and a rerun adds none
