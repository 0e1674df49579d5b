"""GET /v1/review-queue: the review queue (MEDIUM events), paged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from access.apikeys import ApiKey
from api import queries
from api.auth import requires
from api.cursors import decode_cursor
from api.models import ReviewPage, ReviewStatus, Source
from api.params import PAGE_DEFAULT, Cursor, Limit, one_page, store_of

router = APIRouter()
QueueReader = Depends(requires("view_review_queue"))


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
    return one_page(request, "review", rows, limit, lambda row: (row["created_at"], row["event_id"]))
