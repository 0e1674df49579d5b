"""Objects: the sky sources behind events, as an astronomer looks them up (the API's `/v1/objects` and the console's
Objects page read them here, so both show the same).

An object is every stored event with the same `object_id` (ZTF `objectId`, Rubin `diaObjectId`). Its summary is
its latest event (class, magnitude, band, position) with the first and last time it was seen (UTC and MJD), how
many events it has, and its class scores (the best score each class was given). Its light curve is the points its
packets carried: the hot store's `lightcurve` table and, for what the hot store no longer keeps, the warm tier's
`lightcurve_json` column. Injected test events are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow.dataset as ds
import sqlalchemy as sa

from core.decoders.common import datetime_to_mjd
from core.event import as_utc
from core.sky import separation_deg
from store import files
from store.lightcurves import hot_points
from store.schema import events
from store.tiers import WARM_SCHEMA, join

CLASS_RANK = ("critical", "significant", "interesting", "routine", "rejected")


@dataclass(frozen=True)
class ObjectFilter:
    """What the object list may be narrowed by; None does not restrict."""

    event_class: str | None = None  # the latest event's class
    source: str | None = None
    seen_since: datetime | None = None  # last seen at or after
    seen_until: datetime | None = None  # last seen before
    mag_min: float | None = None  # latest magnitude at least (fainter or equal)
    mag_max: float | None = None  # latest magnitude at most (brighter or equal)
    ra: float | None = None  # a cone around the latest position (degrees)
    dec: float | None = None
    radius: float | None = None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat().replace("+00:00", "Z")


def _mjd(moment: datetime | None) -> float | None:
    return None if moment is None else round(datetime_to_mjd(as_utc(moment)), 6)


def _latest_and_totals() -> sa.Subquery:
    """Per object: its latest event's fields, its event count, first and last seen (one row each)."""
    per_object = {"partition_by": events.c.object_id}
    ranked = (
        sa.select(
            events.c.object_id,
            events.c.source,
            events.c.event_id.label("latest_event_id"),
            events.c.event_class,
            events.c.score,
            events.c.mag,
            events.c.band,
            events.c.ra,
            events.c.dec,
            events.c.night,
            sa.func.row_number()
            .over(**per_object, order_by=(events.c.event_time.desc(), events.c.event_id.desc()))
            .label("rank"),
            sa.func.count().over(**per_object).label("n_events"),
            sa.func.min(events.c.event_time).over(**per_object).label("first_seen"),
            sa.func.max(events.c.event_time).over(**per_object).label("last_seen"),
        )
        .where(events.c.object_id.is_not(None), events.c.injected.is_(False))
        .subquery()
    )
    return ranked


def _record(row: Any) -> dict[str, Any]:
    return {
        "object_id": row.object_id,
        "source": row.source,
        "event_class": row.event_class,
        "score": row.score,
        "mag": row.mag,
        "band": row.band,
        "ra": row.ra,
        "dec": row.dec,
        "n_events": int(row.n_events),
        "first_seen": _iso(row.first_seen),
        "first_seen_mjd": _mjd(row.first_seen),
        "last_seen": _iso(row.last_seen),
        "last_seen_mjd": _mjd(row.last_seen),
        "latest_event_id": row.latest_event_id,
        "night": row.night,
    }


def list_objects(
    engine: sa.Engine, where: ObjectFilter, after: tuple[datetime, str] | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Objects, last seen first (then by id), after the key `(last_seen, object_id)` of a previous page."""
    latest = _latest_and_totals()
    clauses = [latest.c.rank == 1]
    checks = (
        (where.event_class, lambda v: latest.c.event_class == v),
        (where.source, lambda v: latest.c.source == v),
        (where.seen_since, lambda v: latest.c.last_seen >= v),
        (where.seen_until, lambda v: latest.c.last_seen < v),
        (where.mag_min, lambda v: latest.c.mag >= v),
        (where.mag_max, lambda v: latest.c.mag <= v),
    )
    clauses += [make(value) for value, make in checks if value is not None]
    cone = where.ra is not None and where.dec is not None and where.radius is not None
    if cone:  # a declination band in SQL; the exact great-circle test below
        clauses.append(latest.c.dec.between(where.dec - where.radius - 1e-9, where.dec + where.radius + 1e-9))
    if after is not None:
        moment, object_id = after
        clauses.append(
            (latest.c.last_seen < moment) | ((latest.c.last_seen == moment) & (latest.c.object_id > object_id))
        )
    query = sa.select(latest).where(*clauses).order_by(latest.c.last_seen.desc(), latest.c.object_id)
    if not cone:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = [_record(row) for row in conn.execute(query)]
    if cone:
        rows = [row for row in rows if row["ra"] is not None]
        if rows:
            apart = separation_deg(where.ra, where.dec, [r["ra"] for r in rows], [r["dec"] for r in rows]).tolist()
            rows = [{**row, "separation_deg": sep} for row, sep in zip(rows, apart, strict=True) if sep <= where.radius]
        rows = rows[:limit]
    scores = class_scores(engine, [row["object_id"] for row in rows])
    return [{**row, "class_scores": scores.get(row["object_id"], {})} for row in rows]


def class_scores(engine: sa.Engine, object_ids: list[str]) -> dict[str, dict[str, float | None]]:
    """Per object, the best score each class was given to one of its events (classes from critical down)."""
    if not object_ids:
        return {}
    query = (
        sa.select(events.c.object_id, events.c.event_class, sa.func.max(events.c.score))
        .where(events.c.object_id.in_(object_ids), events.c.injected.is_(False))
        .group_by(events.c.object_id, events.c.event_class)
    )
    found: dict[str, dict[str, float | None]] = {}
    with engine.connect() as conn:
        for object_id, event_class, score in conn.execute(query):
            found.setdefault(object_id, {})[event_class] = score
    return {
        object_id: {name: by_class[name] for name in CLASS_RANK if name in by_class}
        for object_id, by_class in found.items()
    }


def get_object(engine: sa.Engine, object_id: str) -> dict[str, Any] | None:
    """One object's summary (as in the list), or None when the hot store holds no event of it."""
    latest = _latest_and_totals()
    query = sa.select(latest).where(latest.c.rank == 1, latest.c.object_id == object_id)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return {**_record(row), "class_scores": class_scores(engine, [object_id]).get(object_id, {})}


def warm_points(warm_root: str | None, object_id: str) -> list[dict[str, Any]]:
    """The points the warm tier's rows of this object carried (each packet's, as written at ingest)."""
    if not warm_root:
        return []
    paths = files.match(join(warm_root, "night=*", "class=*", "*.parquet"))
    if not paths:
        return []
    dataset = ds.dataset(paths, format="parquet", schema=WARM_SCHEMA)  # older files read lightcurve_json as null
    table = dataset.to_table(
        columns=["event_id", "source", "lightcurve_json"],
        filter=(ds.field("object_id") == object_id) & ~ds.field("injected"),
    )
    points = []
    for event_id, source, text in zip(*(table.column(n).to_pylist() for n in table.column_names), strict=True):
        for point in json.loads(text) if text else []:
            points.append({**point, "object_id": object_id, "source": source, "event_id": event_id, "tier": "warm"})
    return points


def light_curve(engine: sa.Engine, warm_root: str | None, object_id: str) -> list[dict[str, Any]]:
    """Every point of the object's light curve, oldest first: the hot store's, then the warm tier's it lacks
    (routine objects leave the hot store after 7 days and stay a year in the warm tier)."""
    found = {point["point_id"]: point for point in hot_points(engine, object_id)}
    for point in warm_points(warm_root, object_id):
        found.setdefault(point["point_id"], point)
    return sorted(found.values(), key=lambda point: (point["mjd"], point["point_id"]))
