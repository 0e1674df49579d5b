"""What the API reads from the hot store: filtered, keyset-paginated listings and the cone search's prefilter.

Listings are ordered by a unique key (e.g. event time, then event id) and a page starts strictly after the
last key of the previous one: unlike OFFSET, a page costs the same however deep it is, and rows arriving while
a client pages through never shift or repeat what it sees.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from api.errors import invalid
from core.event import as_utc
from store.hot import (
    HotStore,
    agent_metrics,
    alerts,
    associations,
    events,
    events_position_index,
    metrics,
    review_queue,
)

Key = tuple[Any, ...]

# --- cursors -----------------------------------------------------------------------------------------------------


def encode_cursor(listing: str, key: Key) -> str:
    """An opaque cursor: the listing's name and the last key, as URL-safe base64 JSON."""
    values = [value.isoformat() if isinstance(value, datetime) else value for value in key]
    raw = json.dumps([listing, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# The longest string a key holds (store/hot.py: event ids 256, alert ids 300), with room to spare.
MAX_KEY_CHARS = 512


def _key_time(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("not a time")
    moment = datetime.fromisoformat(value)  # a time without a zone is UTC, as SQLite returns them
    # Year 1 at +05:00 or year 9999 at -05:00 has no UTC time a database can hold: refuse rather than overflow.
    if not 1 < moment.year < 9999:
        raise ValueError("a time out of range")
    return as_utc(moment)


def _key_text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_KEY_CHARS or "\x00" in value:
        raise ValueError("not a key string")
    value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
    return value


def _key_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    number = float(value)  # a 400-digit integer raises OverflowError
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def decode_cursor(listing: str, cursor: str | None, kinds: Sequence[type]) -> Key | None:
    """The key a cursor holds, checked against the listing it was made for; 422 if it is not one of ours.

    Every value is checked for what the stores can compare against (a time a database holds, a finite number,
    text without NUL or lone surrogates), so a crafted cursor is a 422, never a failed query.
    """
    if not cursor:
        return None
    try:
        if len(cursor) > 4 * MAX_KEY_CHARS:
            raise ValueError("too long")
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, list) or not data:
            raise ValueError("not a cursor")
        name, *values = data
        if name != listing or len(values) != len(kinds):
            raise ValueError("another listing's cursor")
        key = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is datetime:
                key.append(_key_time(value))
            elif kind is float:
                key.append(_key_number(value))
            else:
                key.append(_key_text(value))
        return tuple(key)
    except (ValueError, TypeError, OverflowError, UnicodeError, RecursionError) as exc:
        raise invalid(f"invalid cursor for {listing}: use the `next` link of the previous page", "cursor") from exc


def after(columns: Sequence[sa.ColumnElement], key: Key) -> sa.ColumnElement[bool]:
    """Rows strictly after `key` in the order of `columns`, spelled out (portable, and typed per column)."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == key[j] for j in range(i)]
        clauses.append(sa.and_(*equal, column > key[i]))
    return sa.or_(*clauses)


# --- events --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A cone's bounding box: a declination band and RA intervals (None: every RA, the cone holds a pole)."""

    dec_min: float
    dec_max: float
    ra_ranges: tuple[tuple[float, float], ...] | None


def cone_box(ra: float, dec: float, radius: float) -> Box:
    """The smallest RA/Dec box holding the cone, split in two where it crosses RA 0/360."""
    pad = radius + 1e-9  # never lose an event on the edge to rounding; the exact test decides
    dec_min, dec_max = dec - pad, dec + pad
    if dec_min <= -90 or dec_max >= 90:
        return Box(max(dec_min, -90.0), min(dec_max, 90.0), None)
    # The exact RA half-width of a small circle at declination dec (valid since the cone misses the poles).
    half = math.degrees(math.asin(min(1.0, math.sin(math.radians(pad)) / math.cos(math.radians(dec)))))
    if half >= 180:
        return Box(dec_min, dec_max, None)
    low, high = ra - half, ra + half
    if low < 0:
        ranges = ((low + 360, 360.0), (0.0, high))
    elif high >= 360:
        ranges = ((low, 360.0), (0.0, high - 360))
    else:
        ranges = ((low, high),)
    return Box(dec_min, dec_max, ranges)


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (haversine: accurate at the small angles a cone search cares about)."""
    phi1, phi2 = math.radians(dec1), math.radians(dec2)
    half = (
        math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(math.sqrt(min(1.0, max(0.0, half)))))


@dataclass(frozen=True)
class EventFilter:
    source: str | None = None
    event_class: str | None = None
    kind: str | None = None
    object_id: str | None = None
    since: datetime | None = None  # event time, inclusive
    until: datetime | None = None  # event time, exclusive
    min_score: float | None = None
    injected: bool | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        return _clauses(
            (self.source, lambda v: events.c.source == v),
            (self.event_class, lambda v: events.c.event_class == v),
            (self.kind, lambda v: events.c.kind == v),
            (self.object_id, lambda v: events.c.object_id == v),
            (self.since, lambda v: events.c.event_time >= v),
            (self.until, lambda v: events.c.event_time < v),
            (self.min_score, lambda v: events.c.score >= v),
            (self.injected, lambda v: events.c.injected.is_(v)),
        )


def _clauses(*checks: tuple[Any, Callable[[Any], sa.ColumnElement[bool]]]) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of the filters that were given (a filter left as None does not restrict)."""
    return [make(value) for value, make in checks if value is not None]


EVENT_ORDER = (events.c.event_time, events.c.event_id)
EVENT_KEY = (datetime, str)


def event_record(payload: str, tier: str = "hot") -> dict[str, Any]:
    """An event as the API returns it: the stored JSON (enrichments and lineage included) and its tier."""
    return {**json.loads(payload), "tier": tier}


def event_key(event: dict[str, Any]) -> Key:
    moment = event["event_time"]
    return (as_utc(datetime.fromisoformat(moment) if isinstance(moment, str) else moment), event["event_id"])


def hot_events(store: HotStore, where: EventFilter, start: Key | None, limit: int) -> list[dict[str, Any]]:
    query = sa.select(events.c.payload).where(*where.where()).order_by(*EVENT_ORDER).limit(limit)
    if start is not None:
        query = query.where(after(EVENT_ORDER, start))
    with store.engine.connect() as conn:
        return [event_record(payload) for payload in conn.execute(query).scalars()]


def hot_events_by_id(store: HotStore, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not event_ids:
        return {}
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.event_id, events.c.payload).where(events.c.event_id.in_(event_ids)))
        return {event_id: event_record(payload) for event_id, payload in rows}


def hot_positions(store: HotStore, where: EventFilter, box: Box) -> list[tuple[str, float, float]]:
    """(event id, ra, dec) of the events inside a box: the cone search's SQL prefilter (index on dec, ra)."""
    clauses = [*where.where(), events.c.dec.between(box.dec_min, box.dec_max)]
    if box.ra_ranges is not None:
        clauses.append(sa.or_(*(events.c.ra.between(low, high) for low, high in box.ra_ranges)))
    query = sa.select(events.c.event_id, events.c.ra, events.c.dec).where(*clauses)
    with store.engine.connect() as conn:
        return [(row.event_id, row.ra, row.dec) for row in conn.execute(query)]


def ensure_indexes(store: HotStore) -> None:
    """Stores created before the API lack the position index; CREATE INDEX IF NOT EXISTS adds it."""
    events_position_index.create(store.engine, checkfirst=True)


def associations_of(store: HotStore, event_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(associations)
        .where((associations.c.trigger_id == event_id) | (associations.c.counterpart_id == event_id))
        .order_by(associations.c.created_at)
    )
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


# --- alerts, review queue, metrics ---------------------------------------------------------------------------

# The event fields an alert or a queue item carries, so a subscriber need not fetch the event to triage.
EVENT_SUMMARY = (
    events.c.source,
    events.c.kind,
    events.c.object_id,
    events.c.event_time,
    events.c.ra,
    events.c.dec,
    events.c.pos_error_deg,
    events.c.mag,
)
ALERT_COLUMNS = (*alerts.c, *EVENT_SUMMARY)
ALERT_ORDER = (alerts.c.created_at, alerts.c.alert_id)
ALERT_KEY = (datetime, str)


@dataclass(frozen=True)
class AlertFilter:
    level: str | None = None
    status: str | None = None
    source: str | None = None
    since: datetime | None = None  # alert creation time, inclusive
    until: datetime | None = None
    injected: bool | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        return _clauses(
            (self.level, lambda v: alerts.c.level == v),
            (self.status, lambda v: alerts.c.status == v),
            (self.source, lambda v: events.c.source == v),
            (self.since, lambda v: alerts.c.created_at >= v),
            (self.until, lambda v: alerts.c.created_at < v),
            (self.injected, lambda v: alerts.c.injected.is_(v)),
        )


def _utc_times(row: dict[str, Any]) -> dict[str, Any]:
    return {name: as_utc(value) if isinstance(value, datetime) else value for name, value in row.items()}


def list_alerts(store: HotStore, where: AlertFilter, start: Key | None, limit: int) -> list[dict[str, Any]]:
    query = (
        sa.select(*ALERT_COLUMNS)
        .select_from(alerts.join(events, events.c.event_id == alerts.c.event_id, isouter=True))
        .where(*where.where())
        .order_by(*ALERT_ORDER)
        .limit(limit)
    )
    if start is not None:
        query = query.where(after(ALERT_ORDER, start))
    with store.engine.connect() as conn:
        return [_utc_times(dict(row._mapping)) for row in conn.execute(query)]


def get_alert(store: HotStore, alert_id: str) -> dict[str, Any] | None:
    query = (
        sa.select(*ALERT_COLUMNS)
        .select_from(alerts.join(events, events.c.event_id == alerts.c.event_id, isouter=True))
        .where(alerts.c.alert_id == alert_id)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return _utc_times(dict(row._mapping)) if row else None


def alert_for_event(store: HotStore, event_id: str) -> dict[str, Any] | None:
    query = sa.select(alerts.c.alert_id, alerts.c.level, alerts.c.status).where(alerts.c.event_id == event_id)
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return dict(row._mapping) if row else None


REVIEW_COLUMNS = (*review_queue.c, *EVENT_SUMMARY)
REVIEW_ORDER = (review_queue.c.created_at, review_queue.c.event_id)
REVIEW_KEY = (datetime, str)


def list_reviews(
    store: HotStore, status: str | None, source: str | None, start: Key | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        sa.select(*REVIEW_COLUMNS)
        .select_from(review_queue.join(events, events.c.event_id == review_queue.c.event_id, isouter=True))
        .order_by(*REVIEW_ORDER)
        .limit(limit)
    )
    if status is not None:
        query = query.where(review_queue.c.status == status)
    if source is not None:
        query = query.where(events.c.source == source)
    if start is not None:
        query = query.where(after(REVIEW_ORDER, start))
    with store.engine.connect() as conn:
        return [_utc_times(dict(row._mapping)) for row in conn.execute(query)]


def review_status(store: HotStore, event_id: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(review_queue.c.status).where(review_queue.c.event_id == event_id)).scalar()


METRICS_ORDER = (metrics.c.window_start, metrics.c.source, metrics.c.run_id)
AGENT_METRICS_ORDER = (agent_metrics.c.window_start, agent_metrics.c.agent, agent_metrics.c.run_id)
WINDOW_KEY = (datetime, str, str)
WINDOW_ORDERS = {"metrics": METRICS_ORDER, "agent_metrics": AGENT_METRICS_ORDER}


def list_windows(
    store: HotStore,
    table: sa.Table,
    order: Sequence[sa.Column],
    equals: dict[str, str | None],
    since: datetime | None,
    until: datetime | None,
    start: Key | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Rows of `metrics` or `agent_metrics` by window start (since inclusive, until exclusive)."""
    query = sa.select(table).order_by(*order).limit(limit)
    for column, value in equals.items():
        if value is not None:
            query = query.where(table.c[column] == value)
    if since is not None:
        query = query.where(table.c.window_start >= since)
    if until is not None:
        query = query.where(table.c.window_start < until)
    if start is not None:
        query = query.where(after(order, start))
    with store.engine.connect() as conn:
        return [_utc_times(dict(row._mapping)) for row in conn.execute(query)]
