"""Objects: a list with filters (class, last seen, magnitude, position), one object with its class scores, and its
light curve (detections, non-detections and forced photometry from the packets' own history, MJD and UTC)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from access.apikeys import ApiKey
from api.auth import requires
from api.cursors import decode_cursor
from api.errors import invalid, not_found
from api.models import EventClass, Source
from api.object_models import LightCurve, ObjectPage, SkyObject
from api.params import PAGE_DEFAULT, Cursor, Ident, Limit, Since, Until, one_page, store_of, utc
from store import objects

router = APIRouter()
Observer = Depends(requires("view_events"))
Degrees = Annotated[float | None, Query(allow_inf_nan=False)]
Magnitude = Annotated[float | None, Query(ge=-30, le=40, allow_inf_nan=False)]


def object_filter(
    event_class: Annotated[EventClass | None, Query(alias="class", description="The latest event's class")] = None,
    source: Source | None = None,
    since: Since = None,
    until: Until = None,
    mag_min: Annotated[Magnitude, Query(description="Latest magnitude at least this (as faint or fainter)")] = None,
    mag_max: Annotated[Magnitude, Query(description="Latest magnitude at most this (as bright or brighter)")] = None,
    ra: Annotated[Degrees, Query(ge=0, le=360, description="Cone centre RA, ICRS degrees")] = None,
    dec: Annotated[Degrees, Query(ge=-90, le=90, description="Cone centre Dec, ICRS degrees")] = None,
    radius: Annotated[Degrees, Query(gt=0, le=180, description="Cone radius, degrees")] = None,
) -> objects.ObjectFilter:
    cone = (ra, dec, radius)
    if any(value is not None for value in cone) and any(value is None for value in cone):
        raise invalid("ra, dec and radius go together", "radius")
    return objects.ObjectFilter(
        event_class=event_class,
        source=source,
        seen_since=utc(since),
        seen_until=utc(until),
        mag_min=mag_min,
        mag_max=mag_max,
        ra=None if ra is None else ra % 360,
        dec=dec,
        radius=radius,
    )


def _page_key(row: dict[str, Any]) -> tuple[datetime, str]:
    return (datetime.fromisoformat(row["last_seen"].replace("Z", "+00:00")), row["object_id"])


@router.get(
    "/objects",
    response_model=ObjectPage,
    response_model_exclude_none=False,
    tags=["objects"],
    summary="Objects by class, last seen (since/until), latest magnitude and position (a cone), last seen first",
)
def list_objects(
    request: Request,
    where: Annotated[objects.ObjectFilter, Depends(object_filter)],
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    _key: ApiKey = Observer,
) -> dict[str, Any]:
    start = decode_cursor("objects", cursor, (datetime, str))
    rows = objects.list_objects(store_of(request).engine, where, start, limit + 1)
    return one_page(request, "objects", rows, limit, _page_key)


@router.get(
    "/objects/{object_id:path}/lightcurve",
    response_model=LightCurve,
    tags=["objects"],
    summary="An object's light curve: every detection, non-detection and forced point its packets carried",
)
def light_curve(request: Request, object_id: Ident, _key: ApiKey = Observer) -> dict[str, Any]:
    points = objects.light_curve(store_of(request).engine, request.app.state.settings.warm_root, object_id)
    if not points:
        raise not_found("object", object_id)
    return {
        "object_id": object_id,
        "points": points,
        "bands": dict(Counter(point["band"] or "?" for point in points)),
        "kinds": dict(Counter(point["kind"] for point in points)),
    }


@router.get(
    "/objects/{object_id:path}",
    response_model=SkyObject,
    tags=["objects"],
    summary="One object: its latest class, magnitude and position, first and last seen, class scores",
)
def get_object(request: Request, object_id: Ident, _key: ApiKey = Observer) -> dict[str, Any]:
    found = objects.get_object(store_of(request).engine, object_id)
    if found is None:
        raise not_found("object", object_id)
    return found
