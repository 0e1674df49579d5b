"""Alerts: the listing (and its downloads, with `respond_by`), the live feed, the counts per level, one alert with
its history; acknowledging, escalating and resolving one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from access import roles
from access.apikeys import ApiKey
from api import downloads, feed, queries
from api.auth import ApiSettings, identify, requires
from api.cursors import Key, decode_cursor
from api.errors import ApiError, ErrorBody, not_found
from api.models import Acknowledge, AlertDetail, AlertPage, LevelCounts
from api.params import (
    PAGE_DEFAULT,
    Cursor,
    FormatParam,
    Ident,
    Limit,
    alert_filter,
    every_page,
    listing_responses,
    one_page,
    store_of,
)
from api.queries import AlertFilter
from ops import responses
from ops.levels import level_counts

router = APIRouter()
AlertsReader = Depends(requires("view_alerts"))


def _alert(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "respond_by": responses.response_deadline(row["level"], row["created_at"])}


def _alert_key(row: dict[str, Any]) -> Key:
    return (row["created_at"], row["alert_id"])


@router.get(
    "/alerts",
    response_model=AlertPage,
    responses=listing_responses(AlertPage),
    tags=["alerts"],
    summary="Alerts (CRITICAL, HIGH) with their status, oldest first",
)
def list_alerts(
    request: Request,
    where: Annotated[AlertFilter, Depends(alert_filter)],
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    format: FormatParam = "json",
    _key: ApiKey = AlertsReader,
) -> Any:
    start = decode_cursor("alerts", cursor, queries.ALERT_KEY)
    store = store_of(request)

    def fetch(after: Key | None, size: int) -> list[dict[str, Any]]:
        return queries.list_alerts(store, where, after, size)

    if format != "json":
        schema = downloads.arrow_schema(queries.ALERT_COLUMNS, times=("respond_by",))
        pages = ([_alert(row) for row in rows] for rows in every_page(fetch, _alert_key, start))
        return downloads.stream(pages, schema, format, "alerts")
    page = one_page(request, "alerts", fetch(start, limit + 1), limit, _alert_key)
    return {**page, "data": [_alert(row) for row in page["data"]]}


@router.get(
    "/alerts/stream",
    tags=["alerts"],
    summary="Live feed of new alerts (server-sent events), resumable with Last-Event-ID",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def alert_stream(
    request: Request,
    where: Annotated[AlertFilter, Depends(alert_filter)],
    last_event_id: Annotated[
        str | None,
        Header(max_length=2048, pattern=r"^[A-Za-z0-9_-]*$", description="Resume after this alert's id"),
    ] = None,
    key: ApiKey = AlertsReader,
) -> StreamingResponse:
    store = store_of(request)
    settings: ApiSettings = request.app.state.settings
    start = feed.resume_key(last_event_id)
    token = request.headers["authorization"].split(" ", 1)[1].strip()

    def still_allowed() -> None:
        identify(store, token)

    body = feed.alert_stream(store, where, start, _alert, still_allowed, settings.poll_s, settings.heartbeat_s)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Api-Key-Id": key.key_id},
    )


@router.get(
    "/alerts/counts",
    response_model=LevelCounts,
    tags=["alerts"],
    summary="How many of each level: waiting for someone, and in all (the console's counters)",
)
def alert_counts(request: Request, _key: ApiKey = AlertsReader) -> dict[str, Any]:
    counts = level_counts(store_of(request))
    return {"levels": [{"level": c.level, "waiting": c.waiting, "total": c.total} for c in counts.values()]}


ACTIONS = {
    "acknowledge": ("open", "Acknowledge an open alert"),
    "escalate": ("open or acknowledged", "Escalate an open or acknowledged alert"),
    "resolve": ("not resolved yet", "Resolve an alert"),
}


def _action_route(action: str) -> None:
    """POST /alerts/{id}/{action} (Operator keys), through the console's own function: it re-checks the key
    owner's role, takes the note and writes the audit row, as in the console."""
    allowed_from, title = ACTIONS[action]

    def respond(
        request: Request, alert_id: Ident, body: Acknowledge, key: ApiKey = Depends(requires("acknowledge_alerts"))
    ) -> Any:
        store = store_of(request)
        if queries.get_alert(store, alert_id) is None:
            raise not_found("alert", alert_id)
        try:
            responses.alert_action(store, key.user_name, alert_id, action, body.note)
        except roles.AccessError as exc:
            raise ApiError(409, str(exc), {"alert_id": alert_id}) from exc
        return get_alert(request, alert_id, key)

    respond.__name__ = action
    router.post(
        f"/alerts/{{alert_id:path}}/{action}",
        response_model=AlertDetail,
        responses={
            400: {"model": ErrorBody, "description": "The body is not JSON"},
            409: {"model": ErrorBody, "description": f"The alert is not {allowed_from}"},
        },
        tags=["alerts"],
        summary=f"{title} (Operator keys): audited as the key's owner, as in the console",
    )(respond)


for _action in ACTIONS:
    _action_route(_action)


@router.get("/alerts/{alert_id:path}", response_model=AlertDetail, tags=["alerts"], summary="One alert and its history")
def get_alert(request: Request, alert_id: Ident, _key: ApiKey = AlertsReader) -> dict[str, Any]:
    store = store_of(request)
    row = queries.get_alert(store, alert_id)
    if row is None:
        raise not_found("alert", alert_id)
    return {**_alert(row), "history": responses.alert_history(store, alert_id)}
