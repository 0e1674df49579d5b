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


def night_bounds(night: str, timezone_name: str) -> tuple[datetime, datetime]:
    """The UTC start and end of night 'YYYY-MM-DD' (local noon to the next local noon): what `observing_night`
    names `night` lies in [start, end). At the ends of the calendar (year 1, year 9999) a bound that UTC cannot
    hold is the earliest or latest time there is."""
    day = datetime.fromisoformat(night).date()
    zone = _zone(timezone_name)
    start = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    try:
        end = start + timedelta(days=1)  # wall-clock noon to noon, across a daylight-saving change too
    except OverflowError:
        end = datetime.max.replace(tzinfo=zone)
    return _utc(start), _utc(end)


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(_UTC)
    except OverflowError:
        return (datetime.min if moment.year < 5000 else datetime.max).replace(tzinfo=_UTC)


_UTC = ZoneInfo("UTC")
