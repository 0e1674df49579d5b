"""Integrity check across the tiers: every stored event in the hot store, the warm tier and the archive.

The stream-versus-database check (as ALeRCE runs it), per source and observing night: the event ids each
tier holds, and which ids one tier has that another lacks. A mismatch makes `nightwatch verify` exit 1.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow.parquet as pq
import sqlalchemy as sa
from apache_beam.io.filesystems import FileSystems

from pipeline.store import HotStore, events
from pipeline.tiers import ARCHIVE_IDS_KEY, join

Key = tuple[str, str]  # (source, night)


@dataclass
class TierCheck:
    source: str
    night: str
    hot: set[str] = field(default_factory=set)
    warm: set[str] = field(default_factory=set)
    archive: set[str] = field(default_factory=set)

    @property
    def missing(self) -> dict[str, list[str]]:
        """Ids a tier lacks that another tier holds."""
        everything = self.hot | self.warm | self.archive
        gaps = {
            tier: sorted(everything - ids)
            for tier, ids in (("hot", self.hot), ("warm", self.warm), ("archive", self.archive))
        }
        return {tier: ids for tier, ids in gaps.items() if ids}

    @property
    def ok(self) -> bool:
        return not self.missing


def _hot_ids(store: HotStore) -> dict[Key, set[str]]:
    found: dict[Key, set[str]] = defaultdict(set)
    with store.engine.connect() as conn:
        for event_id, source, night in conn.execute(sa.select(events.c.event_id, events.c.source, events.c.night)):
            found[(source, night)].add(event_id)
    return found


def _warm_ids(root: str) -> dict[Key, set[str]]:
    found: dict[Key, set[str]] = defaultdict(set)
    for match in FileSystems.match([join(root, "night=*", "class=*", "*.parquet")])[0].metadata_list:
        with FileSystems.open(match.path) as handle:
            table = pq.read_table(handle, columns=["event_id", "source", "night"])
        for event_id, source, night in zip(
            *(table.column(name).to_pylist() for name in ("event_id", "source", "night")), strict=True
        ):
            found[(source, night)].add(event_id)
    return found


def _archive_ids(root: str) -> dict[Key, set[str]]:
    import fastavro

    found: dict[Key, set[str]] = defaultdict(set)
    for match in FileSystems.match([join(root, "night=*", "source=*", "*.avro")])[0].metadata_list:
        night = match.path.split("night=")[1].split("/")[0]
        source = match.path.split("source=")[1].split("/")[0]
        with FileSystems.open(match.path) as handle:
            found[(source, night)].update(json.loads(fastavro.reader(handle).metadata.get(ARCHIVE_IDS_KEY, "[]")))
    return found


def verify(store: HotStore, warm_root: str, archive_root: str) -> list[TierCheck]:
    """One check per source and night found in any tier, sorted."""
    hot, warm, archive = _hot_ids(store), _warm_ids(warm_root), _archive_ids(archive_root)
    keys = sorted(set(hot) | set(warm) | set(archive))
    return [
        TierCheck(
            source,
            night,
            hot.get((source, night), set()),
            warm.get((source, night), set()),
            archive.get((source, night), set()),
        )
        for source, night in keys
    ]


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
