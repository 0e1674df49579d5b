"""The live alert feed: server-sent events, polling the hot store for new alerts.

Each alert is one SSE message whose `id` is a cursor (creation time, alert id); a client that reconnects
sends it back as `Last-Event-ID` (browsers' EventSource do so by themselves) and resumes after it.

Pipeline workers stamp an alert's creation time before their transaction commits, so an alert may become
visible after one with a later time has already been sent. Each poll therefore looks back `GRACE` behind the
newest alert sent and sends what it has not sent yet: a slow commit is late, never lost.
The feed also re-checks its key on every poll: a revoked key's feed ends with an `error` message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread

from api.cursors import Key, decode_cursor, encode_cursor
from api.errors import ApiError
from api.models import utc_iso
from api.queries import ALERT_KEY, AlertFilter, list_alerts
from core.event import utcnow
from store.hot import HotStore

GRACE = timedelta(seconds=30)
PAGE = 500
LISTING = "alerts"


def resume_key(last_event_id: str | None) -> Key | None:
    return decode_cursor(LISTING, last_event_id, ALERT_KEY) if last_event_id else None


def _json_value(value: Any) -> str:
    """Times as in every REST answer (ISO 8601 UTC with Z); anything else as text."""
    return utc_iso(value) if isinstance(value, datetime) else str(value)


def message(event: str, data: Any, event_id: str | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id else []
    lines += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'), default=_json_value)}"]
    return "\n".join(lines) + "\n\n"


async def alert_stream(
    store: HotStore,
    where: AlertFilter,
    start: Key | None,
    render: Callable[[dict[str, Any]], dict[str, Any]],
    still_allowed: Callable[[], None],
    poll_s: float,
    heartbeat_s: float,
) -> AsyncIterator[str]:
    """SSE text: alerts after `start` (or, without one, those created from now on), then new ones as they come."""
    origin: Key = start or (utcnow(), "")  # the client has everything up to here
    newest = origin
    sent: dict[str, datetime] = {}  # alert id -> creation time, for the alerts inside the grace window
    yield f"retry: {int(poll_s * 1000) + 1000}\n\n"
    idle = 0.0
    while True:
        try:
            await to_thread.run_sync(still_allowed)
        except ApiError as exc:
            yield message("error", {"error": {"code": exc.code, "message": exc.message, "details": exc.details}})
            return
        recent = dataclasses.replace(where, since=newest[0] - GRACE)
        fresh: list[dict[str, Any]] = []
        page_start: Key | None = None
        while True:  # every page of what is recent, not only the first
            batch = await to_thread.run_sync(list_alerts, store, recent, page_start, PAGE)
            fresh += [
                row for row in batch if row["alert_id"] not in sent and (row["created_at"], row["alert_id"]) > origin
            ]
            if len(batch) < PAGE:
                break
            page_start = (batch[-1]["created_at"], batch[-1]["alert_id"])
        for row in fresh:
            key = (row["created_at"], row["alert_id"])
            sent[row["alert_id"]] = row["created_at"]
            newest = max(newest, key)
            yield message("alert", render(row), encode_cursor(LISTING, key))
        sent = {alert_id: at for alert_id, at in sent.items() if at >= newest[0] - GRACE}
        idle = 0.0 if fresh else idle
        await asyncio.sleep(poll_s)
        idle += poll_s
        if idle >= heartbeat_s:
            idle = 0.0
            yield ": keep-alive\n\n"
