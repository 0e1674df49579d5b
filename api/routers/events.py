"""Events: listings by filter, the cone search, one event, its lineage, an object's events (and downloads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from access.apikeys import ApiKey
from api import downloads, queries
from api.auth import requires
from api.cursors import Key, decode_cursor
from api.errors import not_found
from api.models import ConePage, Event, EventPage, Lineage
from api.params import (
    PAGE_DEFAULT,
    Cursor,
    FormatParam,
    Ident,
    Limit,
    TierParam,
    event_filter,
    every_page,
    listing_responses,
    one_page,
    store_of,
    tiers,
)
from api.queries import EventFilter
from ops import responses

router = APIRouter()
Observer = Depends(requires("view_events"))


@router.get(
    "/events",
    response_model=EventPage,
    responses=listing_responses(EventPage),
    tags=["events"],
    summary="Events by time range, class, source, kind, object",
)
def list_events(
    request: Request,
    where: Annotated[EventFilter, Depends(event_filter)],
    tier: TierParam = "all",
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    format: FormatParam = "json",
    _key: ApiKey = Observer,
) -> Any:
    start = decode_cursor("events", cursor, queries.EVENT_KEY)
    source = tiers(request)

    def fetch(after: Key | None, size: int) -> list[dict[str, Any]]:
        return source.events(tier, where, after, size)

    if format != "json":
        pages = ([downloads.event_row(e) for e in page] for page in every_page(fetch, queries.event_key, start))
        return downloads.stream(pages, downloads.WARM_SCHEMA, format, "events")
    return one_page(request, "events", fetch(start, limit + 1), limit, queries.event_key)


@router.get(
    "/events/cone",
    response_model=ConePage,
    responses=listing_responses(ConePage),
    tags=["events"],
    summary="Cone search: events within `radius` degrees of (ra, dec), nearest first",
)
def cone_search(
    request: Request,
    ra: Annotated[float, Query(ge=0, le=360, allow_inf_nan=False, description="Centre RA, ICRS degrees")],
    dec: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="Centre Dec, ICRS degrees")],
    radius: Annotated[float, Query(gt=0, le=180, allow_inf_nan=False, description="Radius in degrees")],
    where: Annotated[EventFilter, Depends(event_filter)],
    tier: TierParam = "all",
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    format: FormatParam = "json",
    _key: ApiKey = Observer,
) -> Any:
    start = decode_cursor("cone", cursor, (float, str))
    source = tiers(request)
    hits = source.cone(tier, where, ra % 360, dec, radius)
    if start is not None:
        hits = [hit for hit in hits if hit > start]

    def fetch(after: Key | None, size: int) -> list[dict[str, Any]]:
        chosen = [hit for hit in hits if after is None or hit > after][:size]
        found = source.events_by_id([event_id for _, event_id in chosen])
        # An event deleted (retention) between the two reads is left out, not an error.
        return [{**found[i], "separation_deg": sep} for sep, i in chosen if i in found]

    def key_of(hit: dict[str, Any]) -> Key:
        return (hit["separation_deg"], hit["event_id"])

    if format != "json":
        pages = ([downloads.event_row(e) for e in page] for page in every_page(fetch, key_of, None))
        return downloads.stream(pages, downloads.CONE_SCHEMA, format, "cone")
    return one_page(request, "cone", fetch(None, limit + 1), limit, key_of)


@router.get(
    "/events/{event_id:path}/lineage",
    response_model=Lineage,
    tags=["events"],
    summary="Why an event was decided so: versions, rules, reasons, enrichments, associations, alert, review",
)
def lineage(request: Request, event_id: Ident, _key: ApiKey = Observer) -> dict[str, Any]:
    store = store_of(request)
    event = tiers(request).event(event_id)
    if event is None:
        raise not_found("event", event_id)
    recorded = event.get("lineage") or {}
    alert = queries.alert_for_event(store, event_id)
    review = queries.review_status(store, event_id)
    return {
        **{name: event.get(name) for name in ("event_id", "event_class", "alert_level", "score", "tier")},
        **{
            name: recorded.get(name)
            for name in ("decided_by", "rules_version", "filter_version", "pipeline_version", "run_id", "route")
        },
        "raised_from": recorded.get("raised_from"),
        "matched_rules": event.get("matched_rules") or [],
        "reasons": event.get("reasons") or [],
        "lineage": recorded,
        "enrichments": event.get("enrichments") or {},
        "associations": queries.associations_of(store, event_id),
        "alert": {**alert, "history": responses.alert_history(store, alert["alert_id"])} if alert else None,
        "review": {"status": review, "decisions": responses.review_history(store, event_id)} if review else None,
    }


@router.get("/events/{event_id:path}", response_model=Event, tags=["events"], summary="One event by id")
def get_event(request: Request, event_id: Ident, _key: ApiKey = Observer) -> dict[str, Any]:
    event = tiers(request).event(event_id)
    if event is None:
        raise not_found("event", event_id)
    return event


@router.get(
    "/objects/{object_id:path}/events",
    response_model=EventPage,
    responses=listing_responses(EventPage),
    tags=["events"],
    summary="Every event of one object (its light curve), oldest first",
)
def object_events(
    request: Request,
    object_id: Ident,
    tier: TierParam = "all",
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    format: FormatParam = "json",
    key: ApiKey = Observer,
) -> Any:
    where = EventFilter(object_id=object_id)
    return list_events(request, where, tier, limit, cursor, format, key)
