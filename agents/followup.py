"""Follow-up advice for critical and significant events: can the site see it tonight, how urgent, which filters.

Visibility is computed from the site in config/sources.yaml over the 24 hours after the event, on a grid
(`step_minutes`): the target's altitude and the Sun's, from sidereal time and a low-precision solar position
(the Astronomical Almanac's, good to 0.01 degree; no network, no IERS tables). A target is observable when
the Sun is below -12 degrees (nautical twilight) and the target above `min_altitude_deg` (30: airmass 2).
The Moon is not taken into account.

Why not astropy here: its AltAz frame needs the IERS-A Earth-orientation table, which it downloads; offline it
raises for any date past the bundled table (measured), and a grid of 145 times costs tens of milliseconds
against the agent's 600 ms timeout. These vectorised formulas need neither; tests/test_agents.py checks the
altitudes of a target and of the Sun against astropy's (within half a degree).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from agents.base import Agent, Finding, register
from core.event import Event
from core.sky import DARK_SUN_ALTITUDE_DEG, altitude_deg, julian_date, sun_position

# Filters to ask for, by what the event is: afterglows are red and fade fast; a wide region needs tiling.
FILTERS_BY_KIND = {
    "grb": ["r", "i", "z"],
    "xray_transient": ["r", "i", "z"],
    "gravitational_wave": ["g", "r", "i"],
    "neutrino": ["g", "r", "i"],
    "frb": ["g", "r"],
}
PRIORITY_BY_CLASS = {"critical": 1, "significant": 2}


def airmass(altitude: float) -> float | None:
    return None if altitude <= 0 else round(1.0 / np.sin(np.radians(altitude)), 3)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


@register("followup")
class FollowUpAgent(Agent):
    def setup(self) -> None:
        site = self.context.config.sources.site
        self.site = site
        self.min_altitude = float(self.spec.options.get("min_altitude_deg", 30.0))
        self.step_s = float(self.spec.options.get("step_minutes", 10.0)) * 60.0

    def find(self, batch: Sequence[Event], timeout_s: float | None = None) -> list[Finding]:
        return [self.advise(event) for event in batch]

    def visibility(self, ra: float, dec: float, start: datetime) -> dict[str, Any]:
        """When, in the 24 hours from `start`, the position is up while the site is dark."""
        times = start.timestamp() + np.arange(0.0, 86400.0 + self.step_s, self.step_s)
        jd = julian_date(times)
        site = self.site
        target = altitude_deg(ra, dec, jd, site.latitude_deg, site.longitude_deg)
        sun_ra, sun_dec = sun_position(jd)
        sun = altitude_deg(sun_ra, sun_dec, jd, site.latitude_deg, site.longitude_deg)
        dark = sun < DARK_SUN_ALTITUDE_DEG
        good = dark & (target >= self.min_altitude)
        result: dict[str, Any] = {
            "site": site.name,
            "altitude_now_deg": round(float(target[0]), 2),
            "sun_altitude_now_deg": round(float(sun[0]), 2),
            "observable_now": bool(good[0]),
            "observable_tonight": bool(good.any()),
            "hours_observable": round(float(good.sum()) * self.step_s / 3600.0, 2),
        }
        if good.any():
            first = int(np.argmax(good))
            last = first + int(np.argmin(good[first:])) - 1 if not good[first:].all() else len(good) - 1
            best = int(np.argmax(np.where(dark, target, -90.0)))
            result.update(
                window_start=_iso(times[first]),
                window_end=_iso(times[last]),
                best_time=_iso(times[best]),
                max_altitude_deg=round(float(target[best]), 2),
                min_airmass=airmass(float(target[best])),
            )
        elif dark.any():
            best = int(np.argmax(np.where(dark, target, -90.0)))
            result["max_altitude_deg"] = round(float(target[best]), 2)
        return result

    def advise(self, event: Event) -> Finding:
        if event.ra is None or event.dec is None:
            return Finding({"advice": "no position: follow up from the refined localisation when it comes"})
        # Tonight is the night of a live event; for an old one (a replay), the coming night.
        now = datetime.now(timezone.utc)
        start = event.event_time if now - event.event_time < timedelta(hours=12) else now
        seen = self.visibility(event.ra, event.dec, start)
        priority = PRIORITY_BY_CLASS.get(event.event_class or "", 3)
        if not seen["observable_tonight"]:
            priority += 1
        filters = FILTERS_BY_KIND.get(event.kind, ["g", "r", "i"])
        if event.kind == "optical_transient" and event.features.get("rising_or_new"):
            filters = ["g", "r"]  # a young, rising transient: colour first
        advice = _advice(event, seen)
        data = {**seen, "priority": priority, "suggested_filters": filters, "advice": advice}
        if event.mag is not None:
            data["depth_needed_mag"] = round(event.mag + 1.0, 2)
        if event.pos_error_deg and event.pos_error_deg > 0.5:
            data["tiling_needed"] = True
        return Finding(data)


def _advice(event: Event, seen: dict[str, Any]) -> str:
    if seen["observable_now"]:
        return "observable now: trigger follow-up at once"
    if seen["observable_tonight"]:
        return f"observable from {seen['window_start'][11:16]} to {seen['window_end'][11:16]} UTC"
    if seen.get("max_altitude_deg", -90) > 0:
        return f"stays below {seen['max_altitude_deg']:.0f} deg while dark: hand over to another site"
    return "not visible from this site tonight: hand over to another site"
