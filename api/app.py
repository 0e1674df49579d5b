"""The external API (the guide's `api.events.facility.org`): events, alerts, review queue, metrics, lineage.

`create_app(settings)` builds the FastAPI application; `nightwatch api` serves it with uvicorn. Every route is
under /v1 (one router per resource, api/routers/), needs an API key (except /v1/health, the runbooks, also
served as pages at /runbooks/{key}, and the public status page, /status and /status.json: api/status.py), and
answers errors in one shape (api/errors.py).
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import errors, queries, status, telemetry
from api.auth import ApiSettings
from api.errors import COMMON_RESPONSES
from api.params import reject_unknown_parameters
from api.routers import alerts, cutouts, deadletters, events, health, incidents, metrics, objects, review, runbooks
from store.hot import HotStore

VERSION = "1.0.0"

DESCRIPTION = """\
Events, alerts, the review queue, metrics and decision lineage of Nightwatch, for scientists, partner brokers
and follow-up systems.

* **Keys**: send `Authorization: Bearer <key>`; keys come from `nightwatch api-keys create --user NAME --role ROLE`.
  Observer keys read; Operator keys may also acknowledge alerts and respond to incidents.
* **Pages**: listings return `data`, `next` (the next page's URL) and `next_cursor`; follow `next` until null.
* **Downloads**: `?format=parquet` or `?format=avro` on a listing streams every match as one file.
* **Live feed**: `GET /v1/alerts/stream` (server-sent events, resumable with `Last-Event-ID`).
* **Status page**: `GET /status` (HTML) and `GET /status.json` need no key: components, open incidents, notices.
* **Errors**: always `{"error": {"code", "message", "details"}}`; 429 carries `Retry-After`.
"""


def build_router() -> APIRouter:
    """Every route under /v1, in the order they are matched (a fixed path before the `{id:path}` that would
    swallow it); each answers the common errors and refuses unknown query parameters."""
    router = APIRouter(prefix="/v1", responses=COMMON_RESPONSES, dependencies=[Depends(reject_unknown_parameters)])
    # cutouts before events (whose `/events/{id:path}` would take them); objects after (whose `/objects/{id:path}`
    # would take `/objects/{id}/events`).
    for resource in (health, runbooks, cutouts, events, objects, alerts, review, metrics, incidents, deadletters):
        router.include_router(resource.router)
    return router


DOCS_ASSETS = "/docs-assets"  # Swagger UI and ReDoc, served from the fastapi-offline package: no CDN


def install_offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the scripts the `fastapi-offline` package ships, so the interactive
    documentation works in an air-gapped control room (FastAPI's defaults load them from a CDN)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    title = f"{app.title} - documentation"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get(app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


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
        docs_url=None,  # served by install_offline_docs, from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = HotStore(settings.store_url)
    errors.install(app)
    telemetry.install(app)
    app.include_router(build_router())
    app.include_router(runbooks.pages)
    app.include_router(status.router)  # the public status page: /status, /status.json (no key)
    install_offline_docs(app)
    return app


def openapi_text(app: FastAPI | None = None) -> str:
    """The OpenAPI description as committed in api/openapi.json (stable key order, trailing newline)."""
    app = app or create_app(ApiSettings(store_url="sqlite://"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
