"""Day and night: which sources are expected to send now, and which of them have been silent too long.

An optical survey (`expected_when: night` in config/sources.yaml) sends while it is dark at the site; a
satellite stream (`always`) around the clock. A source is *silent* when it is expected now, its intake is not
paused, and nothing from it has been stored for its `silent_after_min`. Health judges silence and event rate
only against the sources expected now, so a quiet afternoon is not "system down".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from config.sources import SourcesConfig
from core.event import as_utc
from core.night import is_dark, sun_altitude
from store.hot import HotStore
from store.schema import dead_letters, events, metrics


@dataclass(frozen=True)
class Expectation:
    """What one source is expected to do now, and what it did."""

    source: str
    expected: bool  # expected to send now
    rate_per_min: float  # the expected rate now (0 when not expected)
    silent_after: timedelta
    last_seen: datetime | None  # the last time anything of it was stored (an event, a window, a dead letter)
    paused: bool
    why: str  # "night at Cerro Pachon (Sun -27.0 deg)", "daytime at ...", "around the clock"

    def silent(self, now: datetime) -> bool:
        """Expected now, not paused, and nothing stored for longer than its `silent_after`."""
        if not self.expected or self.paused:
            return False
        return self.last_seen is None or now - self.last_seen > self.silent_after

    def describe(self, now: datetime) -> str:
        if self.paused:
            state = "intake paused"
        elif not self.expected:
            state = "not expected now"
        elif self.silent(now):
            state = f"SILENT (nothing for over {self.silent_after.total_seconds() / 60:g} min)"
        else:
            state = "expected, sending"
        return f"{state}: {self.why}"


def last_seen_by_source(store: HotStore, until: datetime) -> dict[str, datetime]:
    """When each source last had something stored up to `until`: an event, a stream window that received, a dead
    letter. (Health judged at a past moment does not see what came later.)"""
    queries = (
        sa.select(events.c.source, sa.func.max(events.c.stored_at))
        .where(events.c.stored_at <= until)
        .group_by(events.c.source),
        sa.select(metrics.c.source, sa.func.max(metrics.c.updated_at))
        .where((metrics.c.received > 0) & (metrics.c.updated_at <= until))
        .group_by(metrics.c.source),
        sa.select(dead_letters.c.source, sa.func.max(dead_letters.c.stored_at))
        .where(dead_letters.c.stored_at <= until)
        .group_by(dead_letters.c.source),
    )
    seen: dict[str, datetime] = {}
    with store.engine.connect() as conn:
        for query in queries:
            for source, moment in conn.execute(query):
                if source is None or moment is None:
                    continue
                moment = as_utc(moment)
                seen[source] = max(seen.get(source, moment), moment)
    return seen


def expectations(
    sources: SourcesConfig, now: datetime, last_seen: dict[str, datetime], paused: Iterable[str] = ()
) -> dict[str, Expectation]:
    """Each configured source's expectation at `now`."""
    site = sources.site
    paused = set(paused)
    altitude = sun_altitude(now, site.latitude_deg, site.longitude_deg)
    dark = is_dark(now, site.latitude_deg, site.longitude_deg, site.dark_sun_altitude_deg)
    out = {}
    for name, spec in sources.sources.items():
        if spec.expected_when == "always":
            expected, why = True, "around the clock"
        else:
            when = "night" if dark else "daytime"
            expected = dark
            why = f"{when} at {site.name} (Sun {altitude:+.1f} deg; observes below {site.dark_sun_altitude_deg:g})"
        out[name] = Expectation(
            source=name,
            expected=expected,
            rate_per_min=spec.expected_rate_per_min if expected else 0.0,
            silent_after=timedelta(minutes=spec.silent_after_min),
            last_seen=last_seen.get(name),
            paused=name in paused,
            why=why,
        )
    return out
