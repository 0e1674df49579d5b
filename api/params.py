"""What the routers share: query parameter types, the event and alert filters, the unknown-parameter check,
pages (and the pages of a download), and the hot store and tiers of the app serving the request."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BeforeValidator

from api import downloads
from api.cursors import Key, encode_cursor
from api.errors import ApiError
from api.events import Tiers
from api.models import AlertLevel, AlertStatus, EventClass, Format, Source, Tier
from api.queries import AlertFilter, EventFilter
from core.event import as_utc
from store.hot import HotStore

PAGE_DEFAULT, PAGE_MAX = 100, 1000
DOWNLOAD_PAGE = 5000  # rows per Parquet row group / Avro block

# Shared query parameters. Strings refuse NUL characters (PostgreSQL cannot hold them) and absurd lengths.
Text = Annotated[str | None, Query(max_length=256, pattern=r"^[^\x00]*$")]
# RFC 3339 times with a zone (2025-09-06T02:00:00Z), as the OpenAPI `date-time` format says: pydantic alone
# would also take unix seconds and zone-less times, which the description does not promise.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("expected an RFC 3339 time with a zone, e.g. 2025-09-06T02:00:00Z")
    return value


Time = Annotated[datetime, BeforeValidator(rfc3339)]
Since = Annotated[Time | None, Query(description="From this time (RFC 3339, e.g. 2025-09-06T02:00:00Z), inclusive")]
Until = Annotated[Time | None, Query(description="Before this time (RFC 3339)")]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="Rows per page (JSON); downloads hold every match")]
Cursor = Annotated[
    str | None, Query(max_length=2048, pattern=r"^[A-Za-z0-9_-]*$", description="From a previous page's `next`")
]
FormatParam = Annotated[Format, Query(description="json (paged), or parquet / avro (a streamed file)")]
TierParam = Annotated[Tier, Query(description="hot store, warm tier (Parquet), or both (default)")]
Ident = Annotated[str, Path(max_length=512, pattern=r"^[^\x00]+$")]


def utc(moment: datetime | None) -> datetime | None:
    """A time bound as aware UTC. One beyond what UTC can hold (year 1 at +14:00) bounds nothing: the extreme."""
    if moment is None:
        return None
    try:
        return as_utc(moment)
    except OverflowError:
        return (
            datetime.min.replace(tzinfo=timezone.utc)
            if moment.year < 5000
            else datetime.max.replace(tzinfo=timezone.utc)
        )


def event_filter(
    source: Source | None = None,
    event_class: Annotated[EventClass | None, Query(alias="class")] = None,
    kind: Text = None,
    object_id: Text = None,
    since: Since = None,
    until: Until = None,
    min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    injected: bool | None = None,
) -> EventFilter:
    return EventFilter(
        source=source,
        event_class=event_class,
        kind=kind,
        object_id=object_id,
        since=utc(since),
        until=utc(until),
        min_score=min_score,
        injected=injected,
    )


def alert_filter(
    level: AlertLevel | None = None,
    status: AlertStatus | None = None,
    source: Source | None = None,
    since: Since = None,
    until: Until = None,
    injected: bool | None = None,
) -> AlertFilter:
    return AlertFilter(level, status, source, utc(since), utc(until), injected)


def _query_names(dependant: Any) -> set[str]:
    return {param.alias for param in dependant.query_params}.union(
        *(_query_names(sub) for sub in dependant.dependencies)
    )


def reject_unknown_parameters(request: Request) -> None:
    """A misspelt filter (`?clas=critical`) is a 422, not a silently unfiltered answer."""
    route = request.scope.get("route")
    if route is None:
        return
    unknown = sorted(set(request.query_params) - _query_names(route.dependant))
    if unknown:
        raise ApiError(
            422,
            f"unknown query parameter {unknown[0]!r}",
            [{"location": f"query.{name}", "message": "unknown parameter"} for name in unknown],
        )


def one_page(request: Request, listing: str, rows: list[Any], limit: int, key_of: Callable[[Any], Key]) -> dict:
    """One page of `limit` rows out of `limit + 1` fetched: the extra row only says whether there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(listing, key_of(rows[-1])) if more else None
    link = str(request.url.include_query_params(cursor=cursor)) if cursor else None
    return {"data": rows, "next": link, "next_cursor": cursor}


def every_page(
    fetch: Callable[[Key | None, int], list[Any]], key_of: Callable[[Any], Key], start: Key | None
) -> Iterator:
    """Every row after `start`, a page at a time (for downloads)."""
    while True:
        rows = fetch(start, DOWNLOAD_PAGE)
        if rows:
            yield rows
        if len(rows) < DOWNLOAD_PAGE:
            return
        start = key_of(rows[-1])


def listing_responses(model: type) -> dict[int | str, dict[str, Any]]:
    """A listing's 200: JSON pages of `model`, or a Parquet / Avro download."""
    return {200: {"model": model, "content": downloads.DOWNLOAD_CONTENT}}


def store_of(request: Request) -> HotStore:
    return request.app.state.store


def tiers(request: Request) -> Tiers:
    return Tiers(request.app.state.store, request.app.state.settings.warm_root)
