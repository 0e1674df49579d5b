"""The external API (the guide's `api.events.facility.org`): events, alerts, review queue, metrics, lineage.

`create_app(settings)` builds the FastAPI application; `nightwatch api` serves it with uvicorn. Every route is
under /v1 (one router per resource, api/routers/), needs an API key (except /v1/health), and answers errors in
one shape (api/errors.py).
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from api import errors, queries, telemetry
from api.auth import ApiSettings
from api.errors import COMMON_RESPONSES
from api.params import reject_unknown_parameters
from api.routers import alerts, events, health, metrics, review
from store.hot import HotStore

VERSION = "1.0.0"

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


def build_router() -> APIRouter:
    """Every route under /v1, in the order they are matched (a fixed path before the `{id:path}` that would
    swallow it); each answers the common errors and refuses unknown query parameters."""
    router = APIRouter(prefix="/v1", responses=COMMON_RESPONSES, dependencies=[Depends(reject_unknown_parameters)])
    for resource in (health, events, alerts, review, metrics):
        router.include_router(resource.router)
    return router


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.store.ensure_schema()
    queries.ensure_indexes(app.state.store)
    yield
    app.state.store.close()


def create_app(settings: ApiSettings) -> FastAPI:
    """The application over one hot store (and warm tier); nothing connects until it starts serving."""
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
    telemetry.install(app)
    app.include_router(build_router())
    return app


def openapi_text(app: FastAPI | None = None) -> str:
    """The OpenAPI description as committed in api/openapi.json (stable key order, trailing newline)."""
    app = app or create_app(ApiSettings(store_url="sqlite://"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
