"""History: what was seen of the same object before this detection.

Two sources, combined: the packet's own history (ZTF `prv_candidates`, Rubin `prvDiaSources`, already
summarised by the decoders as `n_prior`, `days_since_first` and a rise rate) and the hot store's earlier
events of the same object. Gives the first-seen time, the detections so far, the last one, the rise (+) or
fade (-) rate in magnitudes per day in the same band, and a short light curve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from agents.base import Agent, Finding, register
from core.event import Event, as_utc
from store.hot import HotStore
from store.schema import events

LIGHT_CURVE_POINTS = 20
# A change slower than this (mag/day) is flat.
FLAT_RATE = 0.05


@register("history")
class HistoryAgent(Agent):
    def setup(self) -> None:
        self.store = HotStore(self.context.db_url) if self.context.db_url else None
        self.old_object_days = float(self.spec.options.get("old_object_days", 365.0))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def health(self) -> dict[str, Any]:
        if self.store is None:
            return {"ok": True, "hot_store": None}
        with self.store.engine.connect() as conn:
            conn.execute(sa.select(sa.literal(1)))
        return {"ok": True, "hot_store": self.store.engine.url.render_as_string(hide_password=True)}

    def find(self, batch: Sequence[Event], timeout_s: float | None = None) -> list[Finding]:
        stored = self._stored_detections(batch)
        return [self.summarise(event, stored.get(event.object_id or "", [])) for event in batch]

    def _stored_detections(self, batch: Sequence[Event]) -> dict[str, list[Any]]:
        objects = sorted({event.object_id for event in batch if event.object_id})
        if self.store is None or not objects:
            return {}
        query = (
            sa.select(events.c.object_id, events.c.event_id, events.c.event_time, events.c.mag, events.c.band)
            .where(events.c.object_id.in_(objects))
            .order_by(events.c.event_time)
        )
        found: dict[str, list[Any]] = defaultdict(list)
        with self.store.engine.connect() as conn:
            for row in conn.execute(query):
                found[row.object_id].append(row)
        return found

    def summarise(self, event: Event, stored: Sequence[Any]) -> Finding:
        earlier = [
            row for row in stored if row.event_id != event.event_id and as_utc(row.event_time) < event.event_time
        ]
        features = event.features
        packet_prior = int(features.get("n_prior") or 0)
        days_since_first = float(features.get("days_since_first") or 0.0)
        first_times = [event.event_time - timedelta(days=days_since_first)]
        first_times += [as_utc(row.event_time) for row in earlier]
        first_seen = min(first_times)
        rate, rate_from = self._rate(event, earlier)
        data: dict[str, Any] = {
            "object_id": event.object_id,
            "first_seen": first_seen.isoformat(),
            "days_known": round((event.event_time - first_seen).total_seconds() / 86400.0, 4),
            "prior_in_packet": packet_prior,
            "prior_in_store": len(earlier),
            "new_object": packet_prior == 0 and not earlier,
            "rate_mag_per_day": None if rate is None else round(rate, 4),
            "rate_from": rate_from,
            "trend": _trend(rate),
            "last_detection": _point(earlier[-1]) if earlier else None,
            "light_curve": [_point(row) for row in earlier[-LIGHT_CURVE_POINTS:]],
        }
        finding = Finding(data)
        if event.event_class == "critical" and data["days_known"] > self.old_object_days:
            finding.proposed_class = "significant"
            finding.reason = f"known for {data['days_known']:.0f} days: a long-lived variable, not a new transient"
        return finding

    @staticmethod
    def _rate(event: Event, earlier: Sequence[Any]) -> tuple[float | None, str | None]:
        """Brightening is positive: (last magnitude - this magnitude) / days, same band, else the packet's."""
        if event.mag is not None:
            for row in reversed(earlier):
                if row.mag is None or row.band != event.band:
                    continue
                days = (event.event_time - as_utc(row.event_time)).total_seconds() / 86400.0
                if days > 0:
                    return (row.mag - event.mag) / days, "hot store"
        packet_rate = event.features.get("rise_rate_mag_per_day")
        if isinstance(packet_rate, (int, float)):
            return float(packet_rate), "packet history"
        return None, None


def _trend(rate: float | None) -> str | None:
    if rate is None:
        return None
    if rate > FLAT_RATE:
        return "rising"
    if rate < -FLAT_RATE:
        return "fading"
    return "flat"


def _point(row: Any) -> dict[str, Any]:
    moment: datetime = as_utc(row.event_time)
    return {"event_id": row.event_id, "time": moment.isoformat(), "mag": row.mag, "band": row.band}
