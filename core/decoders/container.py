"""Avro container files, read within limits: the schema checked, every block bounded by the bytes present.

fastavro's `reader` trusts what a container declares: a 100-byte file that declares 2^62 records in a block of
records that take no bytes loops without reading (and grows a list without bound), and a block is decompressed
whole, so a 1 MB deflate or a 176 kB xz block can expand to gigabytes. Here, before anything is allocated,

* a block's declared size must fit in the bytes left, and its record count in both the bytes it decompresses to
  (every record of a ZTF or Rubin schema takes at least one byte) and the container's record limit;
* decompression stops at the container's decompressed-size limit (deflate, bzip2, xz and zstandard are
  decompressed incrementally with a ceiling; snappy declares its length up front and is checked before);
* a writer schema with an array of items that take no bytes (which would let a declared count loop without
  reading) is refused.

The parsed schema is cached by the header's schema bytes, so a stream of alerts with the same schema parses it
once (measured: ~1.6 ms of ~2.6 ms per packet went to parsing before). Every refusal is a `DecodeError` with the
reason an operator reads.
"""

from __future__ import annotations

import bz2
import functools
import io
import json
import lzma
import struct
import zlib
from collections.abc import Callable
from typing import Any

import fastavro

from config.limits import InputLimits
from core.decoders.common import DecodeError

MAGIC = b"Obj\x01"
_META = fastavro.parse_schema({"type": "map", "values": "bytes"})
_LONG = fastavro.parse_schema("long")
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


@functools.lru_cache(maxsize=64)
def _parsed(schema_json: bytes) -> tuple[dict[str, Any], Any]:
    """The writer schema as `fastavro.reader` reports it (full names), and parsed for reading."""
    schema = json.loads(schema_json)
    _refuse_zero_size_arrays(schema)
    return fastavro.parse_schema(schema, _write_hint=False), fastavro.parse_schema(schema)


def _refuse_zero_size_arrays(schema: Any) -> None:
    """DecodeError if an array's items may take no bytes: a declared item count would then loop unread."""
    named: dict[str, Any] = {}

    def register(node: Any, namespace: str) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("record", "error", "enum", "fixed") and isinstance(node.get("name"), str):
                space = node.get("namespace", namespace)
                name = node["name"]
                named[name] = node
                named[f"{space}.{name}" if space and "." not in name else name] = node
                namespace = space or namespace
            for value in node.values():
                register(value, namespace)
        elif isinstance(node, list):
            for item in node:
                register(item, namespace)

    def empty(node: Any, seen: frozenset[int]) -> bool:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node == "null"
            target = named.get(node)
            return target is not None and id(target) not in seen and empty(target, seen | {id(target)})
        if isinstance(node, list):  # a union: its branch index takes a byte
            return False
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error"):
                return all(empty(field.get("type"), seen | {id(node)}) for field in node.get("fields") or [])
            if kind == "fixed":
                return node.get("size") == 0
            if kind in ("enum", "array", "map"):
                return False
            return empty(kind, seen)
        return False

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array" and empty(node.get("items"), frozenset()):
                raise DecodeError("Avro schema refused: an array of items that take no bytes")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    register(schema, "")
    walk(schema)


def _read_bounded(chunks: Callable[[int], bytes], cap: int) -> bytes:
    """Call `chunks(n)` (at most n more bytes, b"" at the end) until the end or past `cap`."""
    parts: list[bytes] = []
    total = 0
    while total <= cap:
        chunk = chunks(cap + 1 - total)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _snappy_length(data: bytes) -> int:
    length, shift = 0, 0
    for byte in data[:10]:
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length
        shift += 7
    raise DecodeError("corrupt snappy block: no length")


def decompress(codec: bytes, data: bytes, cap: int) -> bytes:
    """A block's bytes decompressed, or DecodeError once they would pass `cap` bytes."""
    if codec == b"null":
        out = data
    elif codec == b"deflate":
        inflater = zlib.decompressobj(-15)
        out = inflater.decompress(data, cap + 1)
    elif codec == b"bzip2":
        out = bz2.BZ2Decompressor().decompress(data, max_length=cap + 1)
    elif codec == b"xz":
        out = lzma.LZMADecompressor().decompress(data, max_length=cap + 1)
    elif codec == b"zstandard":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(data) as reader:
            out = _read_bounded(reader.read, cap)
    elif codec == b"snappy":
        declared = _snappy_length(data[:-4])
        if declared > cap:
            raise DecodeError(f"Avro block decompresses to {declared} bytes, more than the limit of {cap}")
        try:
            import cramjam  # type: ignore[import-not-found]
        except ImportError as exc:
            raise DecodeError("Avro codec snappy is not supported here (no snappy library installed)") from exc
        out = bytes(cramjam.snappy.decompress_raw(data[:-4]))
        if struct.unpack(">I", data[-4:])[0] != zlib.crc32(out) & 0xFFFFFFFF:
            raise DecodeError("corrupt snappy block: checksum mismatch")
    else:
        raise DecodeError(f"unsupported Avro codec {codec.decode('latin-1')!r}")
    if len(out) > cap:
        raise DecodeError(f"Avro data decompresses to more than the limit of {cap} bytes (a compression bomb?)")
    return out


def read_header(payload: bytes) -> tuple[dict[str, Any], Any, bytes, bytes, int]:
    """(schema, parsed schema, codec, sync marker, offset of the first block) of a container."""
    if not payload.startswith(MAGIC):
        raise DecodeError("not an Avro container")
    try:
        buffer = io.BytesIO(payload)
        buffer.seek(len(MAGIC))
        meta = fastavro.schemaless_reader(buffer, _META, None)
        sync = buffer.read(16)
        if len(sync) != 16 or "avro.schema" not in meta:
            raise ValueError("no schema or sync marker")
        schema, parsed = _parsed(meta["avro.schema"])
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any damage to the header
        raise DecodeError(f"corrupt Avro container header: {type(exc).__name__}: {exc}") from exc
    return schema, parsed, meta.get("avro.codec", b"null"), sync, buffer.tell()


def read_container_checked(
    payload: bytes,
    limits: InputLimits,
    name_of: Callable[[dict[str, Any]], str] = lambda schema: "",
    codecs: tuple[bytes, ...] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(writer schema, records), within `limits`; DecodeError naming what is wrong otherwise.

    `name_of(schema)` names the source for the messages (and may refuse the schema before a record is read).
    """
    schema, parsed, codec, sync, offset = read_header(payload)
    if codecs is not None and codec not in codecs:
        raise DecodeError(f"codec {codec!r} not taken here")
    source = name_of(schema)
    what = f"corrupt {source} Avro data".replace("  ", " ")
    buffer = io.BytesIO(payload)
    buffer.seek(offset)
    records: list[dict[str, Any]] = []
    decompressed_total = 0
    while buffer.tell() < len(payload):
        try:
            count = fastavro.schemaless_reader(buffer, _LONG, None)
            size = fastavro.schemaless_reader(buffer, _LONG, None)
        except Exception as exc:  # noqa: BLE001
            raise DecodeError(f"{what}: damaged block header: {type(exc).__name__}") from exc
        left = len(payload) - buffer.tell()
        if count < 0 or size < 0:
            raise DecodeError(f"{what}: negative block count {count} or size {size}")
        if size + 16 > left:
            raise DecodeError(f"{what}: truncated: a block of {size} bytes with {left} bytes left")
        if count > limits.max_records_per_container - len(records):
            raise DecodeError(
                f"Avro container declares more than {limits.max_records_per_container} records "
                f"(a block of {count}): over the limit"
            )
        data = buffer.read(size)
        if buffer.read(16) != sync:
            raise DecodeError(f"{what}: sync marker missing after a block")
        try:
            data = decompress(codec, data, limits.max_decompressed_bytes - decompressed_total)
        except DecodeError:
            raise
        except Exception as exc:  # noqa: BLE001 - damaged compressed data
            raise DecodeError(f"{what}: cannot decompress ({codec.decode('latin-1')}): {type(exc).__name__}") from exc
        decompressed_total += len(data)
        if count > len(data):  # every record takes at least a byte: the count cannot be true
            raise DecodeError(f"{what}: a block declares {count} records in {len(data)} bytes")
        block = io.BytesIO(data)
        try:
            for _ in range(count):
                records.append(fastavro.schemaless_reader(block, parsed, None))
        except Exception as exc:  # noqa: BLE001 - truncated or flipped bytes inside a block
            raise DecodeError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if block.tell() != len(data):
            raise DecodeError(f"{what}: {len(data) - block.tell()} bytes left over in a block")
    return schema, records


def read_container(
    payload: bytes, limits: InputLimits | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(writer schema, records) of a well-formed container with a null or deflate codec; None otherwise."""
    try:
        return read_container_checked(payload, limits or InputLimits(), codecs=(b"null", b"deflate"))
    except Exception:  # noqa: BLE001 - anything unusual: None
        return None
