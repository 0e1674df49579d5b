"""Light curves in the hot store: the points packets carried (`lightcurve` table), written and read per object.

A point is stored once per object however many packets repeat it (ZTF repeats 30 days of history in every
alert), under its own id (core/decoders/lightcurve.py). Injected test events add no points: they would draw on
real objects' light curves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.event import Event, as_utc
from store.inserts import insert_ignoring_conflicts
from store.schema import events, lightcurve

VALUES = ("kind", "mjd", "band", "mag", "mag_err", "limit_mag", "flux", "flux_err")


def point_rows(batch: Iterable[Event], stored_at: datetime) -> list[dict[str, Any]]:
    """The rows of the points a batch of events carried, one per (object, point)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for event in batch:
        if event.injected or not event.object_id:
            continue
        for point in event.lightcurve:
            key = (event.object_id, point["point_id"])
            rows.setdefault(
                key,
                {
                    "object_id": event.object_id,
                    "point_id": point["point_id"],
                    "source": event.source,
                    **{name: point.get(name) for name in VALUES},
                    "time": datetime.fromisoformat(point["time"].replace("Z", "+00:00")),
                    "event_id": event.event_id,
                    "stored_at": stored_at,
                },
            )
    return list(rows.values())


def add_points(conn: sa.Connection, batch: Sequence[Event], stored_at: datetime) -> int:
    """Insert the points not stored yet (a point already there is left as it is); returns how many were offered."""
    rows = point_rows(batch, stored_at)
    if rows:
        conn.execute(insert_ignoring_conflicts(conn, lightcurve, ["object_id", "point_id"]), rows)
    return len(rows)


def point_record(row: Any, tier: str = "hot") -> dict[str, Any]:
    """A stored point as the API and the console show it (times ISO 8601 UTC with Z)."""
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    moment = data["time"]
    if isinstance(moment, datetime):
        data["time"] = as_utc(moment).isoformat().replace("+00:00", "Z")
    data.pop("stored_at", None)
    return {**data, "tier": tier}


def hot_points(conn_or_engine: sa.Engine, object_id: str) -> list[dict[str, Any]]:
    query = sa.select(lightcurve).where(lightcurve.c.object_id == object_id).order_by(lightcurve.c.mjd)
    with conn_or_engine.connect() as conn:
        return [point_record(row) for row in conn.execute(query)]


def drop_orphans(conn: sa.Connection) -> int:
    """Delete the points of objects the hot store holds no event of any more (retention took them): a light
    curve lives in the hot store as long as its object does, so a critical object's curve is kept for good."""
    held = sa.select(events.c.object_id).where(events.c.object_id == lightcurve.c.object_id).exists()
    return conn.execute(lightcurve.delete().where(~held)).rowcount or 0
