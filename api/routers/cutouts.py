"""Cutouts of an event through the API: the FITS stamp as the packet shipped it, or rendered as PNG.

Its routes sit before the events router's `/events/{event_id:path}`, which would otherwise take them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from access.apikeys import ApiKey
from api.auth import requires
from api.errors import not_found
from api.object_models import StampFormat, StampName
from api.params import Ident, tiers
from store.cutouts import archived_record, render_png, stamp_of

router = APIRouter()
Observer = Depends(requires("view_events"))

CUTOUT_CONTENT = {
    "application/fits": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
}


@router.get(
    "/events/{event_id:path}/cutouts/{stamp}",
    tags=["events"],
    summary="A cutout of the event: science, template or difference; FITS as shipped (ZTF gzipped) or PNG",
    response_class=Response,
    responses={200: {"content": CUTOUT_CONTENT, "description": "The stamp"}},
)
def cutout(
    request: Request,
    event_id: Ident,
    stamp: StampName,
    format: Annotated[StampFormat, Query(description="fits: the bytes the packet shipped; png: rendered")] = "fits",
    _key: ApiKey = Observer,
) -> Response:
    event = tiers(request).event(event_id)
    if event is None:
        raise not_found("event", event_id)
    root = request.app.state.settings.archive_root
    record = archived_record(root, event_id, event.get("night") or "", event["source"]) if root else None
    if record is None:
        raise not_found("archived packet of event", event_id)
    found = stamp_of(record, stamp)
    if found is None:
        raise not_found(f"{stamp} cutout of event", event_id)
    shipped, fits_data = found
    name = event_id.replace(":", "_").replace("/", "_")
    if format == "png":
        png, _shape = render_png(fits_data)
        disposition = f'inline; filename="{name}-{stamp}.png"'
        return Response(png, media_type="image/png", headers={"Content-Disposition": disposition})
    gzipped = shipped[:2] == b"\x1f\x8b"
    filename = f"{name}-{stamp}.fits" + (".gz" if gzipped else "")
    return Response(
        shipped, media_type="application/fits", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
