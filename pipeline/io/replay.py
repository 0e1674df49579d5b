"""Replay for data recovery: re-read raw packets (from the archive tier or from files) through the same pipeline.

A replay is idempotent: every sink stores an id once, so replaying what is already stored adds nothing, and
an alert already raised is not raised (or published) again. The reconciliation says which events in the
time range were missing from the hot store before and which are present after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import apache_beam as beam
import fastavro
import sqlalchemy as sa
from apache_beam.io import fileio

from core.event import Packet, utcnow
from store import files
from store.hot import HotStore
from store.schema import events
from store.tiers import join


@dataclass(frozen=True)
class ReplayRange:
    start: datetime
    end: datetime
    source: str | None = None

    def holds(self, source: str, event_time: datetime) -> bool:
        return (self.source is None or source == self.source) and self.start <= event_time < self.end


def archive_pattern(root: str) -> str:
    return join(root, "night=*", "source=*", "*.avro")


def _archived(readable: fileio.ReadableFile, span: ReplayRange) -> Iterator[Packet]:
    with readable.open() as handle:
        for record in fastavro.reader(handle):
            if span.holds(record["source"], record["event_time"]):
                yield Packet(
                    payload=record["raw"],
                    origin=f"replay:archive:{record['event_id']}",
                    source_hint=record["source"],
                    received_time=utcnow(),
                )


class ReadArchive(beam.PTransform):
    """The raw packets archived for events in the range, as packets again."""

    def __init__(self, root: str, span: ReplayRange):
        super().__init__()
        self._root = root
        self._span = span

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pipeline
            | "MatchArchive" >> fileio.MatchFiles(archive_pattern(self._root))
            | "SpreadFiles" >> beam.Reshuffle()  # the files, not the pattern, are split among workers
            | "OpenArchive" >> fileio.ReadMatches()
            | "ArchivedPackets" >> beam.FlatMap(_archived, span=self._span)
        )


def archived_ids(root: str, span: ReplayRange) -> set[str]:
    """Ids of the archived events in the range (read on the driver, for the dry run and the reconciliation)."""
    found = set()
    for path in files.match(archive_pattern(root)):
        with files.open_input(path) as handle:
            for record in fastavro.reader(handle):
                if span.holds(record["source"], record["event_time"]):
                    found.add(record["event_id"])
    return found


def stored_ids(store: HotStore, span: ReplayRange) -> set[str]:
    query = sa.select(events.c.event_id).where((events.c.event_time >= span.start) & (events.c.event_time < span.end))
    if span.source:
        query = query.where(events.c.source == span.source)
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())
