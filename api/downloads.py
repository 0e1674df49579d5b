"""Bulk results as Parquet or Avro files, streamed: written page by page as the pages are read.

Neither the server nor the client holds the whole result: each page becomes a Parquet row group or an Avro
block and is sent at once. Events use the warm tier's Parquet layout (store.tiers.WARM_SCHEMA), so a
download reads exactly like the warm files; other listings take their columns from the hot-store table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import fastavro
import fastavro.write
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from fastapi.responses import StreamingResponse

from core.event import as_utc
from store.tiers import WARM_SCHEMA

MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "avro": "application/avro"}
# Declared on the listing routes, so the OpenAPI file says what `?format=` returns.
DOWNLOAD_CONTENT: dict[str, Any] = {
    media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES.values()
}

_UTC_TIME = pa.timestamp("us", tz="UTC")
# A cone search's rows: the warm layout plus each event's distance from the centre.
CONE_SCHEMA = WARM_SCHEMA.append(pa.field("separation_deg", pa.float64()))


def arrow_schema(columns: Sequence[sa.ColumnElement], times: Sequence[str] = ()) -> pa.Schema:
    """A Parquet schema for hot-store columns (every field nullable, as in the tables), and computed `times`
    (UTC timestamps the API adds, e.g. an alert's `respond_by`)."""

    def kind(column: sa.ColumnElement) -> pa.DataType:
        if isinstance(column.type, sa.DateTime):
            return _UTC_TIME
        if isinstance(column.type, sa.Boolean):
            return pa.bool_()
        if isinstance(column.type, sa.Integer):
            return pa.int64()
        if isinstance(column.type, sa.Float):
            return pa.float64()
        return pa.string()

    return pa.schema([*((column.name, kind(column)) for column in columns), *((name, _UTC_TIME) for name in times)])


def avro_schema(schema: pa.Schema, name: str) -> dict[str, Any]:
    """The same columns as an Avro record, each a union with null."""

    def kind(arrow: pa.DataType) -> Any:
        if pa.types.is_timestamp(arrow):
            return {"type": "long", "logicalType": "timestamp-micros"}
        if pa.types.is_boolean(arrow):
            return "boolean"
        if pa.types.is_integer(arrow):
            return "long"
        if pa.types.is_floating(arrow):
            return "double"
        if pa.types.is_list(arrow):
            return {"type": "array", "items": kind(arrow.value_type)}
        return "string"

    fields = [{"name": field.name, "type": ["null", kind(field.type)], "default": None} for field in schema]
    return {"type": "record", "name": name, "namespace": "nightwatch.api", "fields": fields}


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def event_row(event: dict[str, Any]) -> dict[str, Any]:
    """An API event as a warm-tier row (and its separation, for a cone search)."""
    row = {name: event.get(name) for name in CONE_SCHEMA.names if not name.endswith("_json")}
    row["event_time"], row["received_time"] = _time(event["event_time"]), _time(event["received_time"])
    for name in ("quality", "features", "lineage", "enrichments"):
        row[f"{name}_json"] = json.dumps(event.get(name) or {}, sort_keys=True, default=str)
    return row


class _Drain:
    """A write-only file whose bytes are taken away as they are written (pyarrow and fastavro write into it)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def parquet_chunks(pages: Iterable[list[dict[str, Any]]], schema: pa.Schema) -> Iterator[bytes]:
    drain = _Drain()
    writer = pq.ParquetWriter(drain, schema, compression="zstd")
    for page in pages:
        writer.write_table(pa.Table.from_pylist(page, schema=schema))
        yield drain.take()
    writer.close()
    yield drain.take()


def avro_chunks(pages: Iterable[list[dict[str, Any]]], schema: pa.Schema, name: str) -> Iterator[bytes]:
    drain = _Drain()
    writer = fastavro.write.Writer(drain, fastavro.parse_schema(avro_schema(schema, name)), codec="deflate")
    yield drain.take()  # the header: a client sees the schema before the first row
    for page in pages:
        for row in page:
            writer.write(row)
        writer.flush()
        yield drain.take()
    writer.flush()
    yield drain.take()


def stream(pages: Iterable[list[dict[str, Any]]], schema: pa.Schema, fmt: str, name: str) -> StreamingResponse:
    chunks = parquet_chunks(pages, schema) if fmt == "parquet" else avro_chunks(pages, schema, name)
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
