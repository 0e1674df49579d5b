"""Observing nights: named by the site's local date at the start of the night (local noon to noon), and whether
it is dark at the site now (the Sun below the twilight the surveys start observing at)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from core.sky import DARK_SUN_ALTITUDE_DEG, altitude_deg, julian_date, sun_position


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def observing_night(moment: datetime, timezone_name: str) -> str:
    """'YYYY-MM-DD' of the local night holding `moment`: 03:00 local on the 7th belongs to the night of the 6th."""
    local = moment.astimezone(_zone(timezone_name))
    return (local - timedelta(hours=12)).date().isoformat()


def sun_altitude(moment: datetime, latitude_deg: float, longitude_deg: float) -> float:
    """The Sun's altitude in degrees seen from the site at `moment` (geometric, good to a fraction of a degree)."""
    jd = julian_date(np.array([moment.timestamp()]))
    ra, dec = sun_position(jd)
    return float(altitude_deg(ra, dec, jd, latitude_deg, longitude_deg)[0])


def is_dark(
    moment: datetime, latitude_deg: float, longitude_deg: float, sun_below_deg: float = DARK_SUN_ALTITUDE_DEG
) -> bool:
    """True while the Sun is below `sun_below_deg` at the site: an optical survey is observing (weather aside)."""
    return sun_altitude(moment, latitude_deg, longitude_deg) < sun_below_deg
