"""A fast path for Avro container files whose writer schema was seen before.

`fastavro.reader` parses the writer schema in the header of every packet: for a ZTF or Rubin alert that is
most of the decoding time (measured: ~1.6 ms of ~2.6 ms per packet). Every alert of a stream carries the same
schema, so the parsed schema is cached by the header's schema bytes and the blocks are read with
`schemaless_reader`. Anything unusual (a codec other than null or deflate, a damaged header or block) returns
None, and the caller takes the full `fastavro.reader` path, which gives the established error messages.
"""

from __future__ import annotations

import functools
import io
import json
import zlib
from typing import Any

import fastavro

MAGIC = b"Obj\x01"
_META = fastavro.parse_schema({"type": "map", "values": "bytes"})
_LONG = fastavro.parse_schema("long")


@functools.lru_cache(maxsize=64)
def _parsed(schema_json: bytes) -> tuple[dict[str, Any], Any]:
    """The writer schema as `fastavro.reader` reports it (full names), and parsed for reading."""
    schema = json.loads(schema_json)
    return fastavro.parse_schema(schema, _write_hint=False), fastavro.parse_schema(schema)


def read_container(payload: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(writer schema, records) of a well-formed container with a null or deflate codec; None otherwise."""
    if not payload.startswith(MAGIC):
        return None
    try:
        buffer = io.BytesIO(payload)
        buffer.seek(len(MAGIC))
        meta = fastavro.schemaless_reader(buffer, _META, None)
        sync = buffer.read(16)
        codec = meta.get("avro.codec", b"null")
        if codec not in (b"null", b"deflate") or "avro.schema" not in meta or len(sync) != 16:
            return None
        schema, parsed = _parsed(meta["avro.schema"])
        records: list[dict[str, Any]] = []
        while buffer.tell() < len(payload):
            count = fastavro.schemaless_reader(buffer, _LONG, None)
            size = fastavro.schemaless_reader(buffer, _LONG, None)
            data = buffer.read(size)
            if len(data) != size or buffer.read(16) != sync or count < 0:
                return None
            if codec == b"deflate":
                data = zlib.decompress(data, -15)
            block = io.BytesIO(data)
            for _ in range(count):
                records.append(fastavro.schemaless_reader(block, parsed, None))
            if block.tell() != len(data):
                return None
        return schema, records
    except Exception:  # noqa: BLE001 - any surprise: the full reader decides, with its error messages
        return None
