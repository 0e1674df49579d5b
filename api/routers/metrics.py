"""Metric windows: the five metrics per source (/v1/metrics) and each agent's (/v1/agent-metrics), paged or
downloaded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request

from access.apikeys import ApiKey
from api import downloads, queries
from api.auth import requires
from api.cursors import Key, decode_cursor
from api.models import AgentWindowPage, MetricsPage, Source
from api.params import (
    PAGE_DEFAULT,
    Cursor,
    FormatParam,
    Limit,
    Since,
    Text,
    Until,
    every_page,
    listing_responses,
    one_page,
    store_of,
    utc,
)
from store.schema import agent_metrics, metrics

router = APIRouter()
MetricsReader = Depends(requires("view_dashboard"))


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
    low, high = utc(since), utc(until)

    def fetch(after: Key | None, size: int) -> list[dict[str, Any]]:
        return queries.list_windows(store, table, order, equals, low, high, after, size)

    def key_of(row: dict[str, Any]) -> Key:
        return tuple(row[column.name] for column in order)

    if fmt != "json":
        return downloads.stream(every_page(fetch, key_of, start), downloads.arrow_schema(table.c), fmt, listing)
    return one_page(request, listing, fetch(start, limit + 1), limit, key_of)


@router.get(
    "/metrics",
    response_model=MetricsPage,
    responses=listing_responses(MetricsPage),
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
    responses=listing_responses(AgentWindowPage),
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
