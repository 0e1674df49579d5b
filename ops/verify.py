"""Integrity check across the tiers: every stored event in the hot store, the warm tier and the archive.

The stream-versus-database check (as ALeRCE runs it), per source and observing night: the event ids each
tier holds, and which ids one tier has that another lacks, except where the retention table has taken an
event out of a tier. A mismatch makes `nightwatch verify` exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from config.settings import RetentionConfig
from core.event import as_utc, utcnow
from ops.retention import kept_in
from store.hot import HotStore
from store.schema import dead_letters, events
from store.tiers import archive_entries, warm_entries

Key = tuple[str, str]  # (source, night)


@dataclass
class TierCheck:
    source: str
    night: str
    hot: set[str] = field(default_factory=set)
    warm: set[str] = field(default_factory=set)
    archive: set[str] = field(default_factory=set)
    retired: dict[str, set[str]] = field(default_factory=dict)  # ids the retention table took out, per tier

    @property
    def missing(self) -> dict[str, list[str]]:
        """Ids a tier lacks that another tier holds and that the retention table still keeps there."""
        everything = self.hot | self.warm | self.archive
        gaps = {
            tier: sorted(everything - ids - self.retired.get(tier, set()))
            for tier, ids in (("hot", self.hot), ("warm", self.warm), ("archive", self.archive))
        }
        return {tier: ids for tier, ids in gaps.items() if ids}

    @property
    def ok(self) -> bool:
        return not self.missing


def verify(
    store: HotStore, warm_root: str, archive_root: str, table: RetentionConfig, now: datetime | None = None
) -> list[TierCheck]:
    """One check per source and night found in any tier, sorted."""
    now_s = (now or utcnow()).timestamp()
    known: dict[str, tuple[str, float]] = {}  # id -> (class, received unix time)
    checks: dict[Key, TierCheck] = {}

    def check(source: str, night: str) -> TierCheck:
        return checks.setdefault((source, night), TierCheck(source, night))

    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                events.c.event_id, events.c.source, events.c.night, events.c.event_class, events.c.received_time
            ).where(events.c.injected.is_(False))  # injected events never enter the warm tier or the archive
        ).all()
    for event_id, source, night, event_class, received in rows:
        check(source, night).hot.add(event_id)
        known[event_id] = (event_class, as_utc(received).timestamp())
    for tier, entries in (("warm", warm_entries(warm_root)), ("archive", archive_entries(archive_root))):
        for entry in entries:
            getattr(check(entry.source, entry.night), tier).add(entry.event_id)
            known.setdefault(entry.event_id, (entry.event_class, entry.received_s))

    for item in checks.values():
        for tier in ("hot", "warm", "archive"):
            item.retired[tier] = {
                event_id
                for event_id in item.hot | item.warm | item.archive
                if event_id in known and not kept_in(tier, known[event_id][0], now_s - known[event_id][1], table)
            }
    return [checks[key] for key in sorted(checks)]


def report(checks: list[TierCheck], limit: int = 3) -> str:
    lines = ["source  night       hot     warm    archive  status"]
    for check in checks:
        status = (
            "OK"
            if check.ok
            else "MISMATCH "
            + "; ".join(
                f"{tier} lacks {len(ids)} (e.g. {', '.join(ids[:limit])})" for tier, ids in check.missing.items()
            )
        )
        lines.append(
            f"{check.source:<7} {check.night:<10} {len(check.hot):>6} {len(check.warm):>8} "
            f"{len(check.archive):>8}  {status}"
        )
    bad = sum(not check.ok for check in checks)
    lines.append(f"{len(checks)} source-nights checked, {bad} with a mismatch")
    return "\n".join(lines)


def unresolved_write_failures(store: HotStore) -> int:
    """Dead letters from failed hot-store writes whose event has not been stored since (a rerun resolves them)."""
    query = (
        sa.select(sa.func.count())
        .select_from(dead_letters)
        .where(dead_letters.c.stage.startswith("sink:") & dead_letters.c.resolved_at.is_(None))
    )
    with store.engine.connect() as conn:
        return conn.execute(query).scalar() or 0
