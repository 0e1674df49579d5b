"""The operations guide's retention table, enforced across the hot store, the warm tier and the archive.

| class       | hot       | warm      | archive |
| critical    | permanent | -         | -       |
| significant | 1 year    | permanent | -       |
| interesting | 90 days   | 5 years   | archive |
| routine     | 7 days    | 1 year    | archive |
| rejected    | 24 hours  | 30 days   | -       |

Age is counted from when Nightwatch received the event. A copy leaves a tier when its time there is over, and
only if the next tier the table keeps it in holds it: the last copy of anything the table says to keep is
never deleted. Rejected events are never archived (the pipeline does not write them there; one an older
Nightwatch archived leaves it at once) and leave the warm tier after 30 days; the bytes of a bad packet, which
recovery needs, are in the dead-letter store. The archive keeps the raw packets of
critical and significant events (the table asks nothing of the archive for them; they are what a replay needs).
Warm copies of critical events, written at ingest, are kept. Running twice does nothing the second time.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import fastavro
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from config.settings import RetentionConfig, parse_duration_hours
from core.event import as_utc
from store import files
from store.hot import HotStore
from store.lightcurves import drop_orphans
from store.schema import events
from store.tiers import TierEntry, archive_entries, warm_entries, write_atomically, write_avro_records

HOUR_S = 3600.0


def _limit_s(duration: str) -> float:
    """Seconds a copy stays: inf for permanent, 0 for none."""
    hours = parse_duration_hours(duration)
    return 0.0 if hours is None else hours * HOUR_S


def kept_in(tier: str, event_class: str, age_s: float, table: RetentionConfig) -> bool:
    """Whether the table keeps an event of this class and age in this tier."""
    rule = table.classes[event_class]
    hot, warm = _limit_s(rule.hot), _limit_s(rule.warm)
    if tier == "hot":
        return age_s < hot
    if tier == "warm":
        return age_s < warm or (event_class == "critical")  # the ingest copy of a critical event stays
    if rule.archive == "keep":
        return True
    # The table archives no rejected event: they are never written there, and one archived by an older
    # Nightwatch leaves at once. (A bad packet's bytes are in the dead-letter store, which recovery reads.)
    return event_class != "rejected"


@dataclass
class RetentionReport:
    dry_run: bool
    hot_deleted: Counter = field(default_factory=Counter)
    hot_kept_no_copy: Counter = field(default_factory=Counter)
    warm_deleted: Counter = field(default_factory=Counter)
    warm_kept_no_copy: Counter = field(default_factory=Counter)
    archive_deleted: Counter = field(default_factory=Counter)
    files_rewritten: int = 0
    lightcurve_points_deleted: int = 0  # hot points of objects whose last hot event left

    def table(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        lines = []
        for name, counts in (("hot", self.hot_deleted), ("warm", self.warm_deleted), ("archive", self.archive_deleted)):
            text = ", ".join(f"{cls} {n}" for cls, n in sorted(counts.items())) or "nothing"
            lines.append(f"{name:<8} {verb}: {text}")
        for name, counts in (("hot", self.hot_kept_no_copy), ("warm", self.warm_kept_no_copy)):
            if counts:
                text = ", ".join(f"{cls} {n}" for cls, n in sorted(counts.items()))
                lines.append(f"{name:<8} kept past their time, as the next tier lacks a copy: {text}")
        lines.append(f"files {'to rewrite' if self.dry_run else 'rewritten'}: {self.files_rewritten}")
        if self.lightcurve_points_deleted:
            gone = self.lightcurve_points_deleted
            lines.append(f"light-curve points {verb} (objects with no event left hot): {gone}")
        return "\n".join(lines)


def apply_retention(
    store: HotStore, warm_root: str, archive_root: str, table: RetentionConfig, now: datetime, dry_run: bool
) -> RetentionReport:
    report = RetentionReport(dry_run)
    now_s = now.timestamp()
    warm = {entry.event_id: entry for entry in warm_entries(warm_root)}
    archive = {entry.event_id: entry for entry in archive_entries(archive_root)}

    def held(tier: str, event_id: str) -> bool:
        return event_id in (warm if tier == "warm" else archive)

    # Hot: delete what is past its hot time, if the warm tier (or, past warm too, the archive) has a copy.
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.event_id, events.c.event_class, events.c.received_time)).all()
    doomed = []
    for event_id, event_class, received in rows:
        age = now_s - as_utc(received).timestamp()
        if kept_in("hot", event_class, age, table):
            continue
        needs = [tier for tier in ("warm", "archive") if kept_in(tier, event_class, age, table)]
        if needs and not any(held(tier, event_id) for tier in needs):
            report.hot_kept_no_copy[event_class] += 1
            continue
        doomed.append(event_id)
        report.hot_deleted[event_class] += 1
    if doomed and not dry_run:
        with store.engine.begin() as conn:
            for start in range(0, len(doomed), 500):
                conn.execute(events.delete().where(events.c.event_id.in_(doomed[start : start + 500])))
            # An object's light curve stays hot while one of its events does (a critical object's for good); the
            # warm tier keeps each packet's points with its event, under the warm rows' own retention.
            report.lightcurve_points_deleted = drop_orphans(conn)

    # Warm: drop rows past their warm time (the archive must hold those the table archives).
    expired_warm = []
    for entry in warm.values():
        age = now_s - entry.received_s
        if kept_in("warm", entry.event_class, age, table):
            continue
        if kept_in("archive", entry.event_class, age, table) and not held("archive", entry.event_id):
            report.warm_kept_no_copy[entry.event_class] += 1
            continue
        expired_warm.append(entry)
    _drop(expired_warm, _rewrite_parquet, report.warm_deleted, report, dry_run)

    # Archive: only what the table never keeps there (rejected events, archived by an older Nightwatch).
    expired_archive = [
        entry
        for entry in archive.values()
        if not kept_in("archive", entry.event_class, now_s - entry.received_s, table)
    ]
    _drop(expired_archive, _rewrite_avro, report.archive_deleted, report, dry_run)
    return report


def _drop(entries: list[TierEntry], rewrite, deleted: Counter, report: RetentionReport, dry_run: bool) -> None:
    """Take the entries out of their files, one rewrite per file; count them by class."""
    by_file: dict[str, set[str]] = {}
    for entry in entries:
        by_file.setdefault(entry.path, set()).add(entry.event_id)
        deleted[entry.event_class] += 1
    report.files_rewritten += len(by_file)
    if not dry_run:
        for path, ids in by_file.items():
            rewrite(path, ids)


def _rewrite_parquet(path: str, drop: set[str]) -> None:
    with files.open_input(path) as handle:
        table = pq.read_table(handle)
    kept = table.filter(pc.invert(pc.is_in(table.column("event_id"), value_set=pa.array(list(drop)))))
    if kept.num_rows == 0:
        files.delete(path)
        return
    buffer = io.BytesIO()
    pq.write_table(kept, buffer, compression="zstd")
    write_atomically(path, buffer.getvalue())


def _rewrite_avro(path: str, drop: set[str]) -> None:
    with files.open_input(path) as handle:
        records = [record for record in fastavro.reader(handle) if record["event_id"] not in drop]
    if not records:
        files.delete(path)
        return
    write_avro_records(path, records)
