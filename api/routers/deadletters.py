"""GET /v1/dead-letters (paged), /v1/dead-letters/stats and /v1/dead-letters/{id}: dead-letter triage, read-only.
Re-driving is a job (`nightwatch dead-letters redrive`), not an API call."""

from __future__ import annotations

import base64
import functools
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from access.apikeys import ApiKey
from api.auth import requires
from api.cursors import decode_cursor
from api.errors import ApiError
from api.models import DeadLetterDetail, DeadLetterPage, DeadLetterStats, Source
from api.params import PAGE_DEFAULT, Cursor, Ident, Limit, Text, one_page, store_of
from config.environment import environment
from config.settings import load_config
from store import deadletters

router = APIRouter()
# Dead letters hold raw packets, as events do: whoever may read events may read them.
Reader = Depends(requires("view_events"))
LETTER_KEY = (datetime, str)  # (stored_at, id): newest first
Night = Annotated[date | None, Query(description="the observing night received in (YYYY-MM-DD, site time)")]
Status = Annotated[Literal["open", "resolved", "all"], Query(description="open (default), resolved, or all")]
GroupBy = Annotated[str, Query(pattern=r"^(source|stage|reason|night)(,(source|stage|reason|night))*$")]


@functools.lru_cache(maxsize=1)
def _timezone() -> str:
    return load_config(environment().config_dir).sources.site.timezone


def letter_filter(
    source: Source | None = None,
    stage: Text = None,
    reason: Text = None,
    night: Night = None,
    status: Status = "open",
) -> deadletters.LetterFilter:
    """The filters both listings take: source, stage, a part of the reason, the night, open or resolved."""
    try:
        return deadletters.LetterFilter(
            source=source,
            stage=stage,
            reason=reason,
            night=night.isoformat() if night else None,
            status=status,
            timezone=_timezone(),
        )
    except ValueError as exc:  # a night that is no date (2026-13-45) or beyond what a store holds
        raise ApiError(422, str(exc), [{"location": "query.night", "message": str(exc)}]) from exc


Where = Annotated[deadletters.LetterFilter, Depends(letter_filter)]


@router.get("/dead-letters", response_model=DeadLetterPage, tags=["dead letters"], summary="Dead letters, newest first")
def list_dead_letters(
    request: Request,
    where: Where,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    _key: ApiKey = Reader,
) -> dict[str, Any]:
    start = decode_cursor("dead-letters", cursor, LETTER_KEY)
    after = (start[0], start[1]) if start is not None else None
    rows = deadletters.list_letters(store_of(request), where, limit + 1, after)
    return one_page(request, "dead-letters", rows, limit, lambda row: (row["stored_at"], row["dead_letter_id"]))


@router.get(
    "/dead-letters/stats", response_model=DeadLetterStats, tags=["dead letters"], summary="Dead letters counted"
)
def dead_letter_stats(
    request: Request,
    where: Where,
    by: GroupBy = "source,stage,reason,night",
    _key: ApiKey = Reader,
) -> dict[str, Any]:
    return {"data": deadletters.stats(store_of(request), where, tuple(by.split(",")))}


@router.get(
    "/dead-letters/{dead_letter_id}", response_model=DeadLetterDetail, tags=["dead letters"], summary="One letter"
)
def dead_letter(request: Request, dead_letter_id: Ident, _key: ApiKey = Reader) -> dict[str, Any]:
    row = deadletters.get_letter(store_of(request), dead_letter_id, _timezone())
    if row is None:
        raise ApiError(404, f"no dead letter {dead_letter_id!r}", {"dead_letter_id": dead_letter_id})
    row["payload_base64"] = base64.b64encode(row.pop("payload")).decode()
    return row
