"""What a proposed threshold change would do: recent events from the hot store, decided twice.

The comparison itself (`core.decision_diff`) is shared with the release shadow report.
"""

from __future__ import annotations

import sqlalchemy as sa

from core.decision_diff import Preview, preview  # noqa: F401 - the console's names for them
from core.event import Event
from store.hot import HotStore
from store.schema import events


def recent_events(store: HotStore, limit: int = 2000) -> list[Event]:
    query = sa.select(events.c.payload).order_by(events.c.received_time.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [Event.model_validate_json(payload) for payload in conn.execute(query).scalars()]
