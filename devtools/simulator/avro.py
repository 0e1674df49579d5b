"""Avro encoding of simulated packets, all done by fastavro: object container files holding one record, and
schemaless records (the body of the Confluent wire format).

The same seed must give the same bytes in every process. fastavro writes the schema it is given into the
container header as JSON, in the key order of that dict, and a schema parsed by ``fastavro.parse_schema`` has its
keys in an order that changes with Python's hash seed; so containers are written with a copy of the parsed schema
whose keys are sorted. The copy keeps fastavro's parsed marker and named types (fastavro leaves both out of the
header), so it is not parsed again for every packet.
"""

from __future__ import annotations

import io
import json
import random
from typing import Any

import fastavro

_PARSED_KEYS = ("__fastavro_parsed", "__named_schemas")
_SORTED: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def _sorted_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (parsed) with its keys sorted at every level, still marked as parsed; built once per schema."""
    cached = _SORTED.get(id(schema))
    if cached is None or cached[0] is not schema:
        plain = {key: value for key, value in schema.items() if key not in _PARSED_KEYS}
        ordered = json.loads(json.dumps(plain, sort_keys=True))
        ordered.update({key: schema[key] for key in _PARSED_KEYS})
        cached = (schema, ordered)
        _SORTED[id(schema)] = cached
    return cached[1]


def container(schema: dict[str, Any], record: dict[str, Any], rng: random.Random) -> bytes:
    """An Avro object container file holding ``record``, uncompressed, with a sync marker drawn from ``rng``."""
    sync = rng.randbytes(16)
    buf = io.BytesIO()
    fastavro.writer(buf, _sorted_schema(schema), [record], sync_marker=sync)
    return buf.getvalue()


def schemaless(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """``record`` encoded without a header (what follows the Confluent wire format's 5-byte prefix)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()
