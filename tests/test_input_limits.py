"""Resource limits on input (issue 15, items 3 and 4): every breach is one dead letter with a clear reason, found
before anything large is allocated, and the memory of decoding a bomb stays bounded."""

from __future__ import annotations

import io
import json
import lzma
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import fastavro
import pytest

from config import load_config
from config.limits import InputLimits
from core.decoders import DecodeFailure, PacketDecoder
from core.decoders.container import read_header
from core.event import Packet
from pipeline.io.sources import read_packet_file
from tests.conftest import DATA, REPO

ZTF = DATA / "ztf" / "1095578115815010001.avro"
MIB = 1 << 20
SYNC = b"S" * 16


def zigzag(number: int) -> bytes:
    value = (number << 1) ^ (number >> 63)
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            return bytes(out + bytes([byte]))
        out.append(byte | 0x80)


def container(schema: dict | bytes, codec: str, blocks: list[tuple[int, bytes]]) -> bytes:
    """An Avro container written byte by byte, declaring whatever the blocks say (fastavro would not lie)."""
    schema_json = schema if isinstance(schema, bytes) else json.dumps(schema).encode()
    buffer = io.BytesIO(b"Obj\x01")
    buffer.seek(4)
    meta = {"avro.schema": schema_json, "avro.codec": codec.encode()}
    fastavro.schemaless_writer(buffer, fastavro.parse_schema({"type": "map", "values": "bytes"}), meta)
    buffer.write(SYNC)
    for count, data in blocks:
        buffer.write(zigzag(count) + zigzag(len(data)) + data + SYNC)
    return buffer.getvalue()


def ztf_schema() -> dict:
    return read_header(ZTF.read_bytes())[0]


def refused(payload: bytes, limits: InputLimits | None = None) -> DecodeFailure:
    decoder = PacketDecoder(load_config().sources, limits)
    started = time.monotonic()
    results = decoder.decode(Packet(payload=payload, origin="test"))
    assert time.monotonic() - started < 5, "a refusal must be quick"
    assert len(results) == 1 and isinstance(results[0], DecodeFailure), results
    return results[0]


def deflate_zeros(size: int) -> bytes:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(MIB)
    return b"".join(squeeze.compress(chunk) for _ in range(size // MIB)) + squeeze.flush()


def test_a_tiny_container_declaring_a_huge_record_count_is_refused_at_once():
    payload = container(ztf_schema(), "null", [(2**62, b"\x00" * 20)])
    assert "declares more than 10000 records" in refused(payload).reason
    # Within the record limit, the count must still fit in the bytes present (a record takes at least one byte).
    assert (
        "declares 5000 records in 20 bytes" in refused(container(ztf_schema(), "null", [(5000, b"\x02" * 20)])).reason
    )


def test_records_or_array_items_that_take_no_bytes_cannot_loop():
    empty_records = {"type": "record", "name": "alert", "fields": [{"name": "candidate", "type": "null"}]}
    payload = container(empty_records, "null", [(10**9, b"")])
    assert len(payload) < 200
    assert "declares more than 10000 records" in refused(payload).reason
    assert "records in 0 bytes" in refused(container(empty_records, "null", [(9999, b"")])).reason
    null_items = {
        "type": "record",
        "name": "alert",
        "fields": [{"name": "candidate", "type": {"type": "array", "items": "null"}}],
    }
    reason = refused(container(null_items, "null", [(1, zigzag(2**60) + b"\x00")])).reason
    assert reason == "Avro schema refused: an array of items that take no bytes"


@pytest.mark.parametrize("codec", ["deflate", "xz", "bzip2", "zstandard"])
def test_compression_bombs_stop_at_the_decompressed_limit(codec):
    import bz2

    import zstandard

    zeros = bytes(16 * MIB)
    data = {
        "deflate": lambda: deflate_zeros(16 * MIB),
        "xz": lambda: lzma.compress(zeros, preset=0),
        "bzip2": lambda: bz2.compress(zeros),
        "zstandard": lambda: zstandard.ZstdCompressor().compress(zeros),
    }[codec]()
    assert len(data) < 200_000  # small on the wire
    limits = InputLimits(max_decompressed_bytes=MIB)
    reason = refused(container(ztf_schema(), codec, [(1, data)]), limits).reason
    assert reason == f"Avro data decompresses to more than the limit of {MIB} bytes (a compression bomb?)"


def test_snappy_is_checked_by_its_declared_length_before_decompressing():
    block = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + b"abc" + b"\x00" * 4  # declares 4 GiB
    reason = refused(container(ztf_schema(), "snappy", [(1, block)])).reason
    assert reason == "Avro block decompresses to 4294967295 bytes, more than the limit of 67108864"


def test_the_limits_add_up_over_the_blocks_of_one_container():
    blob = {"type": "record", "name": "alert", "fields": [{"name": "candidate", "type": "bytes"}]}
    record = zigzag(MIB - 8) + bytes(MIB - 8)  # one record of just under 1 MiB
    blocks = [(1, zlib.compress(record)[2:-4]) for _ in range(4)]  # raw deflate: the fourth passes 3 MiB in all
    limits = InputLimits(max_decompressed_bytes=3 * MIB)
    assert "decompresses to more than the limit" in refused(container(blob, "deflate", blocks), limits).reason
    three = PacketDecoder(load_config().sources, limits).decode(
        Packet(payload=container(blob, "deflate", blocks[:3]), origin="t")
    )
    assert [failure.reason for failure in three] == ["missing required field candid"] * 3  # read, then judged
    limits = InputLimits(max_records_per_container=3)
    small = zigzag(10) + bytes(10)
    blocks = [(2, small * 2), (2, small * 2)]
    assert "declares more than 3 records (a block of 2)" in refused(container(blob, "null", blocks), limits).reason


def test_an_oversized_packet_is_refused_keeping_its_first_bytes():
    payload = ZTF.read_bytes()
    limits = InputLimits(max_packet_bytes=10_000, dead_letter_prefix_bytes=100)
    failure = refused(payload, limits)
    assert (
        failure.reason == f"packet of {len(payload)} bytes is over the limit of 10000 bytes (its first 100 bytes kept)"
    )
    assert failure.payload == payload[:100] and failure.source == "ztf"


def test_limits_come_from_limits_yaml(tmp_path):
    (tmp_path / "limits.yaml").write_text("version: '1'\ninput: {max_packet_bytes: 1000}\n")
    config = load_config(tmp_path)
    assert config.limits.input.max_packet_bytes == 1000
    assert config.limits.input.max_records_per_container == 10_000  # the rest keep their defaults
    assert load_config().limits.input.max_packet_bytes == 16 * MIB
    result = PacketDecoder(config.sources, config.limits.input).decode(Packet(payload=ZTF.read_bytes(), origin="t"))
    assert "over the limit of 1000 bytes" in result[0].reason


BOMB_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from config import load_config

    def peak_mb():  # this process's own high-water mark (getrusage's ru_maxrss also counts the forking parent)
        status = open("/proc/self/status").read()
        return int(status.split("VmHWM:")[1].split()[0]) // 1024

    from core.decoders import PacketDecoder
    from core.event import Packet
    payload = open(sys.argv[1], "rb").read()
    config = load_config()
    decoder = PacketDecoder(config.sources, config.limits.input)
    before = peak_mb()
    started = time.monotonic()
    result = decoder.decode(Packet(payload=payload, origin="bomb"))
    after = peak_mb()
    print(before, after, round(time.monotonic() - started, 2), result[0].reason)
    """
)


def test_decoding_a_one_gigabyte_deflate_bomb_keeps_memory_bounded(tmp_path):
    """1 GiB of zeros in a ~1 MB container: with the shipped limits the peak stays near the 64 MiB cap."""
    bomb = tmp_path / "bomb.avro"
    bomb.write_bytes(container(ztf_schema(), "deflate", [(1, deflate_zeros(1024 * MIB))]))
    assert bomb.stat().st_size < 2 * MIB
    done = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(bomb)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before_mb, peak_mb, seconds, reason = done.stdout.split(" ", 3)
    print(f"peak RSS {peak_mb} MB (before decoding {before_mb} MB), {seconds} s: {reason.strip()}")
    assert "decompresses to more than the limit" in reason
    assert int(peak_mb) - int(before_mb) < 200  # the cap is 64 MiB; 1 GiB would be decompressed without it


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.avro").write_bytes(ZTF.read_bytes())
    return folder


def read(path: Path, root: Path, limits: InputLimits | None = None) -> list[Packet]:
    def hung(*_):
        raise TimeoutError(f"reading {path} hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        return list(read_packet_file(str(path), os.path.realpath(root), limits or InputLimits()))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_only_regular_files_inside_the_input_root_are_read(inputs, tmp_path):
    (inputs / "zero.avro").symlink_to("/dev/zero")
    os.mkfifo(inputs / "fifo.avro")
    (tmp_path / "outside.avro").write_bytes(ZTF.read_bytes())
    (inputs / "outside.avro").symlink_to(tmp_path / "outside.avro")
    (inputs / "inside.avro").symlink_to(inputs / "good.avro")
    (inputs / "folder").mkdir()

    [good] = read(inputs / "good.avro", inputs)
    assert good.refused is None and good.payload == ZTF.read_bytes()
    [inside] = read(inputs / "inside.avro", inputs)
    assert inside.refused is None and inside.payload == good.payload
    [zero] = read(inputs / "zero.avro", inputs)
    assert zero.refused == f"refused: a symlink to /dev/zero, outside the input root {os.path.realpath(inputs)}"
    assert zero.payload == b""
    [outside] = read(inputs / "outside.avro", inputs)
    assert outside.refused.startswith("refused: a symlink to ") and "outside the input root" in outside.refused
    [fifo] = read(inputs / "fifo.avro", inputs)
    assert fifo.refused.endswith("fifo.avro is a FIFO, not a regular file")
    assert read(inputs / "folder", inputs) == []
    [big] = read(inputs / "good.avro", inputs, InputLimits(max_packet_bytes=1000, dead_letter_prefix_bytes=10))
    assert big.refused.startswith("packet of more than 1000 bytes") and big.payload == ZTF.read_bytes()[:10]

    # A refused packet is one dead letter at decode, with its reason.
    [letter] = PacketDecoder(load_config().sources).decode(zero)
    assert isinstance(letter, DecodeFailure) and letter.reason == zero.refused


def test_a_device_inside_the_root_is_refused_too(inputs):
    (inputs / "zero.avro").symlink_to("/dev/zero")
    [zero] = read(inputs / "zero.avro", Path("/"))  # the root holds /dev: the file type still refuses it
    assert zero.refused == "refused: /dev/zero is a character device, not a regular file"
