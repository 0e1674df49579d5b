"""GET /v1/health: liveness, the one route that needs no key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.models import Health
from api.params import store_of

router = APIRouter()


@router.get("/health", response_model=Health, tags=["service"], summary="Liveness (no key needed)")
def health(request: Request) -> dict[str, Any]:
    store = store_of(request)
    return {
        "status": "ok",
        "version": request.app.version,
        "store": store.engine.dialect.name,
        "warm_tier": bool(request.app.state.settings.warm_root),
    }
