"""The fast Avro container path gives exactly what fastavro's reader gives, and steps aside otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest

from core.decoders.container import read_container
from devtools.simulator import generate_packets
from tests.conftest import sample_files


def full_read(payload: bytes):
    reader = fastavro.reader(io.BytesIO(payload))
    return reader.writer_schema, list(reader)


@pytest.mark.parametrize("pattern", ["ztf/*.avro", "rubin/**/*.avro"])
def test_real_packets_read_the_same(pattern):
    files = sample_files(pattern)
    assert files
    for path in files:
        payload = path.read_bytes()
        if not payload.startswith(b"Obj\x01"):
            continue
        assert read_container(payload) == full_read(payload), path


def test_simulated_containers_and_codecs_read_the_same():
    packets = [p.payload for p in generate_packets(40, seed=9, mix={"ztf": 0.5, "rubin": 0.5})]
    for payload in packets:
        assert read_container(payload) == full_read(payload)
    schema, records = full_read(packets[0])
    for codec in ("deflate", "null"):
        buffer = io.BytesIO()
        fastavro.writer(buffer, fastavro.parse_schema(schema), records * 3, codec=codec, sync_interval=1)
        assert read_container(buffer.getvalue()) == full_read(buffer.getvalue())


def test_anything_unusual_is_left_to_the_full_reader():
    payload = next(iter(generate_packets(1, seed=2, mix={"ztf": 1.0}))).payload
    assert read_container(payload[:-20]) is None  # truncated
    assert read_container(payload[:-16] + b"x" * 16) is None  # wrong sync marker
    assert read_container(b"not avro") is None
    schema, records = full_read(payload)
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), records, codec="bzip2")
    assert read_container(buffer.getvalue()) is None  # a codec the fast path does not take


def test_archive_files_of_either_codec_read(tmp_path):
    """The archive is written with zstandard now; files written with deflate before still read."""
    from datetime import datetime, timezone

    from store.tiers import ARCHIVE_INDEX_KEY, ARCHIVE_SCHEMA, archive_entries, read_archive, write_avro_records

    now = datetime.now(timezone.utc)
    folder = tmp_path / "night=2025-09-05" / "source=ztf"
    folder.mkdir(parents=True)

    def record(event_id: str) -> dict:
        return {
            "event_id": event_id,
            "source": "ztf",
            "night": "2025-09-05",
            "event_class": "routine",
            "event_time": now,
            "received_time": now,
            "raw_format": "ztf-avro",
            "raw": b"x" * 100,
            "event_json": "{}",
        }

    with open(folder / "old.avro", "wb") as handle:
        index = '[["ztf:old", "routine", 0.0]]'
        fastavro.writer(
            handle, ARCHIVE_SCHEMA, [record("ztf:old")], codec="deflate", metadata={ARCHIVE_INDEX_KEY: index}
        )
    write_avro_records(str(folder / "new.avro"), [record("ztf:new")])
    with open(folder / "new.avro", "rb") as handle:
        assert fastavro.reader(handle).codec == "zstandard"
    assert sorted(r["event_id"] for r in read_archive(str(tmp_path))) == ["ztf:new", "ztf:old"]
    assert sorted(e.event_id for e in archive_entries(str(tmp_path))) == ["ztf:new", "ztf:old"]


def test_partition_index_reads_each_file_once_and_follows_other_writers(tmp_path, monkeypatch):
    from datetime import datetime, timezone

    from core.event import Event
    from store import tiers

    def event(i: int) -> Event:
        now = datetime.now(timezone.utc)
        return Event(
            event_id=f"ztf:{i}",
            source="ztf",
            kind="optical_transient",
            event_time=now,
            received_time=now,
            raw=b"r",
            raw_format="ztf-avro",
            event_class="routine",
            night="2025-09-05",
        )

    reads = []
    original = tiers._archive_file_entries
    monkeypatch.setattr(tiers, "_archive_file_entries", lambda path: reads.append(path) or original(path))
    root = str(tmp_path)
    index = tiers.PartitionIndex("archive")
    assert tiers.write_archive_partition(root, "2025-09-05", "ztf", [event(1), event(2)], index)[1] == 2
    assert tiers.write_archive_partition(root, "2025-09-05", "ztf", [event(2), event(3)], index)[1] == 1
    assert reads == []  # what this writer wrote it knows without reading
    other, _ = tiers.write_archive_partition(root, "2025-09-05", "ztf", [event(4)])  # another writer's file
    reads.clear()  # (that writer read the partition its own way)
    assert tiers.write_archive_partition(root, "2025-09-05", "ztf", [event(4), event(5)], index)[1] == 1
    assert reads == [other]  # the new file read once...
    tiers.write_archive_partition(root, "2025-09-05", "ztf", [event(6)], index)
    assert reads == [other]  # ...and not again
    Path(other).unlink()  # retention removed it: its events may be written again
    assert tiers.write_archive_partition(root, "2025-09-05", "ztf", [event(4)], index)[1] == 1
