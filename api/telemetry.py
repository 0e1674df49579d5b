"""The API's Prometheus metrics: requests by route template, method and status, and their duration.

A plain ASGI middleware (it never buffers a response, so the live feed streams as before). The route is the
matched template (`/v1/events/{event_id}`), never the raw path, so the label set stays bounded; a request no
route matches counts as `unmatched`. `GET /metrics` serves every metric of the process (core/telemetry.py).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response

from core import telemetry

UNMATCHED = "unmatched"


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's template with the prefixes of the routers it is included in (`/v1/events/{event_id}`).

    The route FastAPI puts in the scope knows its own template relative to its router; the prefix is the part of
    the request path in front of what the route matched.
    """
    route = scope.get("route")
    regex, template = getattr(route, "path_regex", None), getattr(route, "path_format", None)
    if regex is None or template is None:
        return UNMATCHED
    path = scope.get("path", "")
    for cut in [i for i, char in enumerate(path) if char == "/"]:
        if regex.match(path[cut:]):
            return path[:cut] + template
    return template


class MetricsMiddleware:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = route_template(scope)
            method = scope.get("method", "GET")
            telemetry.API_REQUESTS.labels(template, method, str(status["code"])).inc()
            telemetry.API_LATENCY.labels(template, method).observe(time.perf_counter() - started)


def install(app: FastAPI) -> None:
    """Count every request, and serve `/metrics` (outside /v1, no key: what Prometheus scrapes)."""
    app.add_middleware(MetricsMiddleware)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body, content_type = telemetry.exposition()
        return Response(body, media_type=content_type)
