"""What the API reads from the warm tier (Parquet under `warm/night=*/class=*/`).

Events outlive the hot store there (routine events: 7 days hot, a year warm), so listings, the cone search and
lookups by id read both tiers. Filters become pyarrow expressions, so Parquet row-group statistics skip what
cannot match, and only the matching rows are materialised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from api.cursors import Key
from api.queries import Box, EventFilter
from core.event import as_utc
from store import files
from store.tiers import WARM_SCHEMA, join

_TIME = pa.timestamp("us", tz="UTC")


def _dataset(root: str | None) -> ds.Dataset | None:
    """The warm files as one dataset, found afresh per request (the pipeline keeps adding files)."""
    if not root:
        return None
    paths = files.match(join(root, "night=*", "class=*", "*.parquet"))  # no warm tier yet is an empty one
    # The explicit schema reads files written before a column existed (enrichments_json) with that column null.
    return ds.dataset(paths, format="parquet", schema=WARM_SCHEMA) if paths else None


def _time(moment: datetime) -> pa.Scalar:
    return pa.scalar(as_utc(moment), type=_TIME)


def _expression(where: EventFilter) -> ds.Expression | None:
    field = ds.field
    checks = [
        (where.source, lambda: field("source") == where.source),
        (where.event_class, lambda: field("event_class") == where.event_class),
        (where.kind, lambda: field("kind") == where.kind),
        (where.object_id, lambda: field("object_id") == where.object_id),
        (where.since, lambda: field("event_time") >= _time(where.since)),
        (where.until, lambda: field("event_time") < _time(where.until)),
        (where.min_score, lambda: field("score") >= where.min_score),
        (where.injected, lambda: field("injected") == where.injected),
    ]
    expression = None
    for value, make in checks:
        if value is not None:
            expression = make() if expression is None else expression & make()
    return expression


def _and(left: ds.Expression | None, right: ds.Expression) -> ds.Expression:
    return right if left is None else left & right


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def warm_record(row: dict[str, Any]) -> dict[str, Any]:
    """A warm row in the shape of a hot-store event (what the API returns for either tier)."""
    record = {name: row[name] for name in WARM_SCHEMA.names if not name.endswith("_json")}
    for name in ("event_time", "received_time"):
        record[name] = as_utc(record[name]).isoformat().replace("+00:00", "Z") if record[name] else None
    record["reasons"] = record["reasons"] or []
    record["matched_rules"] = record["matched_rules"] or []
    for name in ("quality", "features", "lineage", "enrichments"):
        record[name] = _loads(row.get(f"{name}_json"))
    return {**record, "tier": "warm"}


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [warm_record(row) for row in table.to_pylist()]


def warm_events(root: str | None, where: EventFilter, start: Key | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` events after `start`, in (event time, event id) order."""
    dataset = _dataset(root)
    if dataset is None:
        return []
    expression = _expression(where)
    if start is not None:
        moment = _time(start[0])
        later = (ds.field("event_time") > moment) | (
            (ds.field("event_time") == moment) & (ds.field("event_id") > start[1])
        )
        expression = _and(expression, later)
    table = dataset.to_table(filter=expression)
    order = pc.sort_indices(table, sort_keys=[("event_time", "ascending"), ("event_id", "ascending")])
    return _rows(table.take(order[:limit]))


def warm_events_by_id(root: str | None, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    dataset = _dataset(root)
    if dataset is None or not event_ids:
        return {}
    table = dataset.to_table(filter=ds.field("event_id").isin(list(event_ids)))
    return {row["event_id"]: row for row in _rows(table)}


def warm_positions(root: str | None, where: EventFilter, box: Box) -> list[tuple[str, float, float]]:
    """(event id, ra, dec) of warm events inside a cone's bounding box."""
    dataset = _dataset(root)
    if dataset is None:
        return []
    inside = (ds.field("dec") >= box.dec_min) & (ds.field("dec") <= box.dec_max)
    if box.ra_ranges is not None:
        ranges = [(ds.field("ra") >= low) & (ds.field("ra") <= high) for low, high in box.ra_ranges]
        inside = inside & (ranges[0] | ranges[1] if len(ranges) == 2 else ranges[0])
    table = dataset.to_table(columns=["event_id", "ra", "dec"], filter=_and(_expression(where), inside))
    return list(zip(*(table.column(name).to_pylist() for name in ("event_id", "ra", "dec")), strict=True))
