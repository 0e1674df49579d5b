"""Beam sinks: the hot store (events, alerts, review queue, dead letters), the warm and archive tiers.

Writers create their clients in setup() and close them in teardown(). A write that fails turns its
events into dead letters (stage `sink`); dead letters that cannot reach the hot store are written to
a JSON-lines file beside the outputs, so nothing is lost without a trace.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

from core import names
from core.event import DeadLetter, Event, utcnow
from core.isolate import isolate
from core.logs import log_event
from pipeline.io.batching import BatchPerKey
from store.errors import row_refused, store_unreachable
from store.events import alert_id_for
from store.tiers import PartitionIndex, join, write_archive_partition, write_warm_partition
from transforms.common import DEAD_LETTER, counter, dead_letter_for
from transforms.hotstore import HotStoreDoFn

BATCH = {"min_batch_size": 50, "max_batch_size": 500}

log = logging.getLogger("nightwatch.dead_letters")


class _HotStoreWriter(HotStoreDoFn):
    """Writes batches of events to one hot-store table; `what` names the table for metrics."""

    def __init__(self, url: str, what: str):
        super().__init__(url)
        self._what = what

    def _add(self, batch: list[Event]) -> set[str]:
        adders: dict[str, Callable[[list[Event]], set[str]]] = {
            names.EVENTS: self._store.add_events,
            names.ALERTS: self._store.add_alerts,
            names.REVIEW: self._store.add_reviews,
        }
        return adders[self._what](batch)

    def process(self, batch: list[Event]) -> Iterator[Any]:
        # One row the store refuses fails only itself: the batch is split until it stands alone.
        written, failures = isolate(batch, self._add, fatal=store_unreachable)
        new_keys = set().union(*written)
        failed = {id(event) for event, _ in failures}
        if failures:
            counter(names.sink_failed(self._what)).inc(len(failures))
        for event, exc in failures:
            yield dead_letter_for(event, names.sink_stage(self._what), exc, reason=row_refused(exc))
        batch = [event for event in batch if id(event) not in failed]
        stored_time = utcnow()
        counter(names.new(self._what)).inc(len(new_keys))
        counter(names.already_stored(self._what)).inc(len(batch) - len(new_keys))
        for event in batch:
            if self._what == names.EVENTS:
                counter(names.stored(event.event_class)).inc()
            elif self._what == names.ALERTS:
                counter(names.alert_level(event.alert_level)).inc()
            key = alert_id_for(event.event_id) if self._what == names.ALERTS else event.event_id
            if key in new_keys:  # a redelivered event is stored once and goes on once
                yield event.model_copy(update={"stored_time": stored_time})


class WriteHotTable(beam.PTransform):
    """Events into one hot-store table (`events`, `alerts` or `review`).

    Outputs `stored` (the events newly stored, with their stored time) and `dead_letter`.
    """

    def __init__(self, url: str, what: str):
        super().__init__()
        self._url = url
        self._what = what

    def expand(self, events: beam.PCollection) -> pvalue.DoOutputsTuple:
        return (
            events
            | "Batch" >> beam.BatchElements(**BATCH)
            | "Insert" >> beam.ParDo(_HotStoreWriter(self._url, self._what)).with_outputs(DEAD_LETTER, main="stored")
        )


class _DeadLetterWriter(HotStoreDoFn):
    def __init__(self, url: str, fallback_dir: str, run_id: str | None = None):
        super().__init__(url)
        self._fallback_dir = fallback_dir
        self._run_id = run_id

    def process(self, batch: list[DeadLetter]) -> Iterator[DeadLetter]:
        # A letter the store refuses (its event id too long, a NUL) is stored with its text made safe; if the
        # store is down, or it is refused even so, it goes to a file instead.
        _, failures = isolate(batch, self._store.add_dead_letters, fatal=store_unreachable)
        refused = []
        for letter, exc in failures:
            if store_unreachable(exc):
                refused.append((letter, exc))
                continue
            try:
                self._store.add_dead_letters([storable(letter)])
            except Exception as again:  # noqa: BLE001 - keep the letter in a file instead
                refused.append((letter, again))
        if refused:
            self._write_fallback(refused)
        for letter in batch:
            counter(names.dead_letters(letter.stage)).inc()
            counter(names.DEAD_LETTERS).inc()
            log_event(
                log,
                "dead_letter",
                f"dead letter from {letter.source} at {letter.stage}: {letter.reason[:300]}",
                level=logging.WARNING,
                run_id=self._run_id,
                source=letter.source,
                event_id=letter.event_id,
                stage=letter.stage,
                reason=letter.reason[:1000],
                origin=letter.origin,
                injected=letter.injected or None,
            )
            yield letter

    def _write_fallback(self, refused: list[tuple[DeadLetter, Exception]]) -> None:
        path = join(self._fallback_dir, f"dead-letters-{uuid.uuid4().hex}.jsonl")
        lines = []
        for letter, exc in refused:
            record = letter.model_dump(mode="json", exclude={"payload"})
            record["payload_base64"] = base64.b64encode(letter.payload).decode()
            record["store_error"] = f"{type(exc).__name__}: {exc}"
            lines.append(json.dumps(record, ensure_ascii=True))
        with FileSystems.create(path) as handle:  # if this fails too, the bundle fails loudly
            handle.write(("\n".join(lines) + "\n").encode())
        counter(names.DEAD_LETTERS_FALLBACK).inc(len(refused))


def _safe_text(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def storable(letter: DeadLetter) -> DeadLetter:
    """The letter with text every store takes: no NUL, no lone surrogate, the event id cut to its column."""
    return letter.model_copy(
        update={
            "event_id": _safe_text(letter.event_id, 256),
            "reason": _safe_text(letter.reason, 100_000),
            "origin": _safe_text(letter.origin, 100_000),
        }
    )


class WriteDeadLetters(beam.PTransform):
    """Dead letters into the hot store, or into JSON-lines files under `fallback_dir` if it is unreachable."""

    def __init__(self, url: str, fallback_dir: str, run_id: str | None = None):
        super().__init__()
        self._url = url
        self._fallback_dir = fallback_dir
        self._run_id = run_id

    def expand(self, letters: beam.PCollection) -> beam.PCollection:
        return (
            letters
            | "Batch" >> beam.BatchElements(**BATCH)
            | "Insert" >> beam.ParDo(_DeadLetterWriter(self._url, self._fallback_dir, self._run_id))
        )


PartitionWriter = Callable[..., tuple[str | None, int]]


class _PartitionWriterDoFn(beam.DoFn):
    def __init__(self, root: str, tier: str, write: PartitionWriter):
        self._root = root
        self._tier = tier
        self._write = write
        self._index: PartitionIndex | None = None

    def setup(self) -> None:
        # Which ids each partition holds, kept between bundles (a streaming job writes every few seconds).
        self._index = PartitionIndex(self._tier)

    def process(self, keyed: tuple[tuple[str, str, int], Iterable[Event]]) -> Iterator[Any]:
        sharded, events = keyed
        night, part, _shard = sharded
        events = list(events)  # a bounded batch (at most the tier's batch size), not a partition
        counter(names.handled(self._tier)).inc(len(events))
        # One event the tier cannot write fails only itself: the batch is split until it stands alone.
        written, failures = isolate(events, lambda chunk: self._write(self._root, night, part, chunk, self._index))
        if failures:
            counter(names.sink_failed(self._tier)).inc(len(failures))
        for event, exc in failures:
            yield dead_letter_for(event, names.sink_stage(self._tier), exc)
        for path, rows in written:
            counter(names.rows(self._tier)).inc(rows)
            if path:
                counter(names.files(self._tier)).inc()
                yield path


def shard_of(event_id: str, shards: int) -> int:
    """A stable shard for an event (the same on every worker and rerun: crc32, not Python's salted hash)."""
    return zlib.crc32(event_id.encode()) % shards


class WriteTier(beam.PTransform):
    """Events into a partitioned tier: `warm` (Parquet by night and class) or `archive` (Avro by night and source).

    Events are batched per partition (GroupIntoBatches semantics, `pipeline.io.batching`) over `shards` stable
    shards of each partition: a batch holds at most `batch_max` events (a file each), a night's routine events are
    spread over the shards instead of landing on one worker in one list, and events keep their timestamps and
    windows. Streaming flushes a batch at least every `buffering_s`.
    """

    def __init__(self, root: str, tier: str, batch_max: int = 1000, shards: int = 4, buffering_s: float | None = None):
        super().__init__()
        if tier not in names.TIERS:
            raise ValueError(f"unknown tier {tier!r}")
        self._root = root
        self._tier = tier
        self._batch_max = batch_max
        self._shards = shards
        self._buffering_s = buffering_s

    def expand(self, events: beam.PCollection) -> pvalue.DoOutputsTuple:
        shards = self._shards
        if self._tier == names.WARM:
            key, write = (lambda event: (event.night, event.event_class)), write_warm_partition
        else:
            key, write = (lambda event: (event.night, event.source)), write_archive_partition
        return (
            events
            | "KeyByPartition"
            >> beam.Map(lambda event: ((*key(event), shard_of(event.event_id, shards)), event)).with_output_types(
                tuple[tuple[str, str, int], Event]
            )
            | "BatchPerPartition" >> BatchPerKey(self._tier, self._batch_max, self._buffering_s)
            | "WritePartition"
            >> beam.ParDo(_PartitionWriterDoFn(self._root, self._tier, write)).with_outputs(DEAD_LETTER, main="files")
        )
