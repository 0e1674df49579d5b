"""Events across the hot store and the warm tier: listings merged in key order, lookups, the cone search.

An event in both tiers is returned once, from the hot store: association raises and review decisions update
the hot copy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from api import queries, warm
from api.cursors import Key
from api.queries import EventFilter
from core.sky import separation_deg
from store.hot import HotStore

Tier = Literal["hot", "warm", "all"]


@dataclass(frozen=True)
class Tiers:
    store: HotStore
    warm_root: str | None

    def events(self, tier: Tier, where: EventFilter, start: Key | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` events after `start` in (event time, id) order.

        Each tier gives its first `limit` rows after the cursor; the merged first `limit` distinct ids are
        then exactly the first `limit` of the union, because no tier can contribute more than `limit` of them.
        """
        found: dict[str, dict[str, Any]] = {}
        if tier in ("hot", "all"):
            found.update((e["event_id"], e) for e in queries.hot_events(self.store, where, start, limit))
        if tier in ("warm", "all"):
            for event in warm.warm_events(self.warm_root, where, start, limit):
                found.setdefault(event["event_id"], event)
        return sorted(found.values(), key=queries.event_key)[:limit]

    def event(self, event_id: str) -> dict[str, Any] | None:
        hot = queries.hot_events_by_id(self.store, [event_id])
        return hot.get(event_id) or warm.warm_events_by_id(self.warm_root, [event_id]).get(event_id)

    def events_by_id(self, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        found = queries.hot_events_by_id(self.store, event_ids)
        missing = [event_id for event_id in event_ids if event_id not in found]
        return {**warm.warm_events_by_id(self.warm_root, missing), **found}

    def cone(self, tier: Tier, where: EventFilter, ra: float, dec: float, radius: float) -> list[tuple[float, str]]:
        """(separation, event id) of every event within `radius` degrees, nearest first.

        The bounding box (an indexed range query on dec and ra in SQL, a filter in Parquet) keeps the exact
        great-circle test to the few events near the cone.
        """
        box = queries.cone_box(ra, dec, radius)
        candidates: dict[str, tuple[float, float]] = {}
        if tier in ("hot", "all"):
            candidates.update((i, (r, d)) for i, r, d in queries.hot_positions(self.store, where, box))
        if tier in ("warm", "all"):
            for event_id, r, d in warm.warm_positions(self.warm_root, where, box):
                candidates.setdefault(event_id, (r, d))
        if not candidates:
            return []
        ras, decs = zip(*candidates.values(), strict=True)
        apart = separation_deg(ra, dec, ras, decs).tolist()
        return sorted((s, event_id) for s, event_id in zip(apart, candidates, strict=True) if s <= radius)
