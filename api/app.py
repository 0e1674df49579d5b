"""The external API (the guide's `api.events.facility.org`): events, alerts, review queue, metrics, lineage.

`create_app(settings)` builds the FastAPI application; `nightwatch api` serves it with uvicorn. Every route is
under /v1, needs an API key (except /v1/health), and answers errors in one shape (api/errors.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from access import roles
from access.apikeys import ApiKey
from api import downloads, errors, feed, queries
from api.auth import ApiSettings, identify, requires
from api.errors import COMMON_RESPONSES, ApiError, ErrorBody, not_found
from api.events import Tiers
from api.models import (
    Acknowledge,
    AgentWindowPage,
    AlertDetail,
    AlertLevel,
    AlertPage,
    AlertStatus,
    ConePage,
    Event,
    EventClass,
    EventPage,
    Format,
    Health,
    Lineage,
    MetricsPage,
    ReviewPage,
    ReviewStatus,
    Source,
    Tier,
)
from api.queries import AlertFilter, EventFilter, Key, decode_cursor, encode_cursor
from core.event import as_utc
from ops import responses
from store.hot import HotStore
from store.schema import agent_metrics, metrics

VERSION = "1.0.0"
PAGE_DEFAULT, PAGE_MAX = 100, 1000
DOWNLOAD_PAGE = 5000  # rows per Parquet row group / Avro block

DESCRIPTION = """\
Events, alerts, the review queue, metrics and decision lineage of Nightwatch, for scientists, partner brokers
and follow-up systems.

* **Keys**: send `Authorization: Bearer <key>`; keys come from `nightwatch api-keys create --user NAME --role ROLE`.
  Observer keys read; Operator keys may also acknowledge alerts.
* **Pages**: listings return `data`, `next` (the next page's URL) and `next_cursor`; follow `next` until null.
* **Downloads**: `?format=parquet` or `?format=avro` on a listing streams every match as one file.
* **Live feed**: `GET /v1/alerts/stream` (server-sent events, resumable with `Last-Event-ID`).
* **Errors**: always `{"error": {"code", "message", "details"}}`; 429 carries `Retry-After`.
"""

# Shared query parameters. Strings refuse NUL characters (PostgreSQL cannot hold them) and absurd lengths.
Text = Annotated[str | None, Query(max_length=256, pattern=r"^[^\x00]*$")]
# RFC 3339 times with a zone (2025-09-06T02:00:00Z), as the OpenAPI `date-time` format says: pydantic alone
# would also take unix seconds and zone-less times, which the description does not promise.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("expected an RFC 3339 time with a zone, e.g. 2025-09-06T02:00:00Z")
    return value


Time = Annotated[datetime, BeforeValidator(_rfc3339)]
Since = Annotated[Time | None, Query(description="From this time (RFC 3339, e.g. 2025-09-06T02:00:00Z), inclusive")]
Until = Annotated[Time | None, Query(description="Before this time (RFC 3339)")]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="Rows per page (JSON); downloads hold every match")]
Cursor = Annotated[
    str | None, Query(max_length=2048, pattern=r"^[A-Za-z0-9_-]*$", description="From a previous page's `next`")
]
FormatParam = Annotated[Format, Query(description="json (paged), or parquet / avro (a streamed file)")]
TierParam = Annotated[Tier, Query(description="hot store, warm tier (Parquet), or both (default)")]
Ident = Annotated[str, Path(max_length=512, pattern=r"^[^\x00]+$")]


def _utc(moment: datetime | None) -> datetime | None:
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
        since=_utc(since),
        until=_utc(until),
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
    return AlertFilter(level, status, source, _utc(since), _utc(until), injected)


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


def _page(request: Request, listing: str, rows: list[Any], limit: int, key_of: Callable[[Any], Key]) -> dict:
    """One page of `limit` rows out of `limit + 1` fetched: the extra row only says whether there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(listing, key_of(rows[-1])) if more else None
    link = str(request.url.include_query_params(cursor=cursor)) if cursor else None
    return {"data": rows, "next": link, "next_cursor": cursor}


def _pages(fetch: Callable[[Key | None, int], list[Any]], key_of: Callable[[Any], Key], start: Key | None) -> Iterator:
    """Every row after `start`, a page at a time (for downloads)."""
    while True:
        rows = fetch(start, DOWNLOAD_PAGE)
        if rows:
            yield rows
        if len(rows) < DOWNLOAD_PAGE:
            return
        start = key_of(rows[-1])


def _alert(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "respond_by": responses.response_deadline(row["level"], row["created_at"])}


def _alert_key(row: dict[str, Any]) -> Key:
    return (row["created_at"], row["alert_id"])


def _listing_responses(model: type) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "content": downloads.DOWNLOAD_CONTENT}}


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=COMMON_RESPONSES, dependencies=[Depends(reject_unknown_parameters)])
    Observer = Depends(requires("view_events"))  # noqa: N806 - reads like the role it stands for
    AlertsReader = Depends(requires("view_alerts"))  # noqa: N806
    QueueReader = Depends(requires("view_review_queue"))  # noqa: N806
    MetricsReader = Depends(requires("view_dashboard"))  # noqa: N806

    def tiers(request: Request) -> Tiers:
        return Tiers(request.app.state.store, request.app.state.settings.warm_root)

    def store_of(request: Request) -> HotStore:
        return request.app.state.store

    @router.get("/health", response_model=Health, tags=["service"], summary="Liveness (no key needed)")
    def health(request: Request) -> dict[str, Any]:
        store = store_of(request)
        return {
            "status": "ok",
            "version": VERSION,
            "store": store.engine.dialect.name,
            "warm_tier": bool(request.app.state.settings.warm_root),
        }

    # --- events ---

    @router.get(
        "/events",
        response_model=EventPage,
        responses=_listing_responses(EventPage),
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
            pages = ([downloads.event_row(e) for e in page] for page in _pages(fetch, queries.event_key, start))
            return downloads.stream(pages, downloads.WARM_SCHEMA, format, "events")
        return _page(request, "events", fetch(start, limit + 1), limit, queries.event_key)

    @router.get(
        "/events/cone",
        response_model=ConePage,
        responses=_listing_responses(ConePage),
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
            pages = ([downloads.event_row(e) for e in page] for page in _pages(fetch, key_of, None))
            return downloads.stream(pages, downloads.CONE_SCHEMA, format, "cone")
        return _page(request, "cone", fetch(None, limit + 1), limit, key_of)

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
        responses=_listing_responses(EventPage),
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

    # --- alerts ---

    @router.get(
        "/alerts",
        response_model=AlertPage,
        responses=_listing_responses(AlertPage),
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
            schema = downloads.arrow_schema(queries.ALERT_COLUMNS)
            return downloads.stream(_pages(fetch, _alert_key, start), schema, format, "alerts")
        page = _page(request, "alerts", fetch(start, limit + 1), limit, _alert_key)
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

    @router.post(
        "/alerts/{alert_id:path}/acknowledge",
        response_model=AlertDetail,
        responses={
            400: {"model": ErrorBody, "description": "The body is not JSON"},
            409: {"model": ErrorBody, "description": "The alert is not open (already acknowledged...)"},
        },
        tags=["alerts"],
        summary="Acknowledge an open alert (Operator keys): audited as the key's owner, as in the console",
    )
    def acknowledge(
        request: Request, alert_id: Ident, body: Acknowledge, key: ApiKey = Depends(requires("acknowledge_alerts"))
    ) -> Any:
        store = store_of(request)
        if queries.get_alert(store, alert_id) is None:
            raise not_found("alert", alert_id)
        try:
            # The console's own function: it re-checks the owner's role and writes the audit row.
            responses.alert_action(store, key.user_name, alert_id, "acknowledge", body.note)
        except roles.AccessError as exc:
            raise ApiError(409, str(exc), {"alert_id": alert_id}) from exc
        return get_alert(request, alert_id, key)

    @router.get(
        "/alerts/{alert_id:path}", response_model=AlertDetail, tags=["alerts"], summary="One alert and its history"
    )
    def get_alert(request: Request, alert_id: Ident, _key: ApiKey = AlertsReader) -> dict[str, Any]:
        store = store_of(request)
        row = queries.get_alert(store, alert_id)
        if row is None:
            raise not_found("alert", alert_id)
        return {**_alert(row), "history": responses.alert_history(store, alert_id)}

    # --- review queue, metrics ---

    @router.get("/review-queue", response_model=ReviewPage, tags=["review"], summary="The review queue (MEDIUM)")
    def review_queue(
        request: Request,
        status: ReviewStatus | None = None,
        source: Source | None = None,
        limit: Limit = PAGE_DEFAULT,
        cursor: Cursor = None,
        _key: ApiKey = QueueReader,
    ) -> dict[str, Any]:
        start = decode_cursor("review", cursor, queries.REVIEW_KEY)
        rows = queries.list_reviews(store_of(request), status, source, start, limit + 1)
        return _page(request, "review", rows, limit, lambda row: (row["created_at"], row["event_id"]))

    def windows(
        request: Request,
        listing: str,
        table: sa.Table,
        equals: dict[str, str | None],
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
        fmt: str,
    ) -> Any:
        """A page (or a download) of `metrics` or `agent_metrics` rows, by window start."""
        order = queries.WINDOW_ORDERS[table.name]
        start = decode_cursor(listing, cursor, queries.WINDOW_KEY)
        store = store_of(request)
        low, high = _utc(since), _utc(until)

        def fetch(after: Key | None, size: int) -> list[dict[str, Any]]:
            return queries.list_windows(store, table, order, equals, low, high, after, size)

        def key_of(row: dict[str, Any]) -> Key:
            return tuple(row[column.name] for column in order)

        if fmt != "json":
            return downloads.stream(_pages(fetch, key_of, start), downloads.arrow_schema(table.c), fmt, listing)
        return _page(request, listing, fetch(start, limit + 1), limit, key_of)

    @router.get(
        "/metrics",
        response_model=MetricsPage,
        responses=_listing_responses(MetricsPage),
        tags=["metrics"],
        summary="The five metrics per source and window: rate, latency, queue depth, error rate, alert volume",
    )
    def list_metrics(
        request: Request,
        source: Source | None = None,
        run_id: Text = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = PAGE_DEFAULT,
        cursor: Cursor = None,
        format: FormatParam = "json",
        _key: ApiKey = MetricsReader,
    ) -> Any:
        equals = {"source": source, "run_id": run_id}
        return windows(request, "metrics", metrics, equals, since, until, limit, cursor, format)

    @router.get(
        "/agent-metrics",
        response_model=AgentWindowPage,
        responses=_listing_responses(AgentWindowPage),
        tags=["metrics"],
        summary="Each agent's calls, latency against budget, timeouts, errors, skips and breaker, per window",
    )
    def list_agent_metrics(
        request: Request,
        agent: Text = None,
        run_id: Text = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = PAGE_DEFAULT,
        cursor: Cursor = None,
        format: FormatParam = "json",
        _key: ApiKey = MetricsReader,
    ) -> Any:
        equals = {"agent": agent, "run_id": run_id}
        return windows(request, "agent-metrics", agent_metrics, equals, since, until, limit, cursor, format)

    return router


def create_app(settings: ApiSettings) -> FastAPI:
    """The application over one hot store (and warm tier); nothing connects until it starts serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.store.ensure_schema()
        queries.ensure_indexes(app.state.store)
        yield
        app.state.store.close()

    app = FastAPI(
        title="Nightwatch external API",
        version=VERSION,
        description=DESCRIPTION,
        servers=[{"url": "https://api.events.facility.org", "description": "production"}],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = HotStore(settings.store_url)
    errors.install(app)
    app.include_router(build_router())
    return app


def openapi_text(app: FastAPI | None = None) -> str:
    """The OpenAPI description as committed in api/openapi.json (stable key order, trailing newline)."""
    import json

    app = app or create_app(ApiSettings(store_url="sqlite://"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
