"""Observing nights: named by the site's local date at the start of the night (local noon to noon)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def observing_night(moment: datetime, timezone_name: str) -> str:
    """'YYYY-MM-DD' of the local night holding `moment`: 03:00 local on the 7th belongs to the night of the 6th."""
    local = moment.astimezone(_zone(timezone_name))
    return (local - timedelta(hours=12)).date().isoformat()
