"""Re-drive dead letters: after a fix (a decoder update, a relaxed limit), push the kept raw bytes back through
the batch pipeline (the same graph as `run`), then reconcile: re-driven, now stored, still dead.

Idempotent: only open letters are taken; every sink stores an id once, so an event stored by an earlier re-drive
(or run) is not stored, alerted or published again; a letter whose event is now where its stage failed to put
it is marked resolved, so the next re-drive does not take it again. A re-driven packet carries the origin
`redrive:<letter id>`; if it fails again its new letter is an attempt (resolved at once: the original letter,
still open, stands for the packet) whose reason the report shows.

Which event a letter stands for: the one it names (`event_id`), or, for a packet that could not be decoded, the
events the decoder now reads from its bytes with the configuration in force (read on the driver, which is also
what `--dry-run` reports). Warm-tier letters carry no bytes (the warm tier keeps none): their packet comes from
the archive tier when it holds one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import sqlalchemy as sa

from access.audit import record
from config.settings import NightwatchConfig
from core import names
from core.decoders import DecodeFailure, PacketDecoder
from core.event import Event, Packet, utcnow
from pipeline.batch import RunSummary, counters_of, pipeline_options
from pipeline.graph import build_pipeline
from store import deadletters
from store.hot import HotStore
from store.layout import Outputs
from store.schema import alerts, events, review_queue
from store.tiers import archive_entries, read_archive, warm_entries

# Where each stage's letter expects its event to be once the fix works.
_TABLE_OF_STAGE = {
    names.sink_stage(names.ALERTS): alerts,
    names.sink_stage(names.REVIEW): review_queue,
}
_WARM, _ARCHIVE = names.sink_stage(names.WARM), names.sink_stage(names.ARCHIVE)


@dataclass
class LetterPlan:
    """One letter to re-drive: its bytes, and the events it should yield (None: not known before the run)."""

    letter: dict[str, Any]
    payload: bytes
    expected: list[str] | None
    problem: str | None = None  # why it cannot be re-driven or still fails on the driver (decode)


@dataclass
class RedriveReport:
    selected: int
    redriven: int = 0
    now_stored: list[str] = field(default_factory=list)
    still_dead: dict[str, str] = field(default_factory=dict)  # letter id -> the latest reason
    dry_run: bool = False
    run_id: str | None = None
    summary: RunSummary | None = None

    def figures(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "redriven": self.redriven,
            "now_stored": len(self.now_stored),
            "still_dead": len(self.still_dead),
            "run_id": self.run_id,
        }

    def table(self) -> str:
        title = "re-drive (dry run: nothing pushed)" if self.dry_run else f"re-drive {self.run_id}"
        stored_word = "would now be stored" if self.dry_run else "now stored"
        lines = [
            title,
            f"letters selected                 {self.selected}",
            f"re-driven                        {self.redriven}",
            f"{stored_word:<33}{len(self.now_stored)}",
            f"still dead                       {len(self.still_dead)}",
        ]
        if self.summary is not None:
            data = self.summary.as_dict()
            lines.append(
                f"events new / already stored      {data['events_new']} / {data['events_already_stored']}"
                f"  (alerts new {data['alerts']['new']})"
            )
        kinds: dict[str, int] = {}
        for reason in self.still_dead.values():
            kinds[deadletters.reason_kind(reason)] = kinds.get(deadletters.reason_kind(reason), 0) + 1
        lines += [f"  still dead: {count} x {kind}" for kind, count in sorted(kinds.items(), key=lambda i: -i[1])]
        return "\n".join(lines)


def _archived_raw(outputs: Outputs, event_ids: set[str]) -> dict[str, bytes]:
    """Raw packets the archive tier holds for these events (a warm-tier letter has no bytes of its own)."""
    if not event_ids:
        return {}
    return {row["event_id"]: row["raw"] for row in read_archive(outputs.archive_root) if row["event_id"] in event_ids}


def plan(letters: list[dict[str, Any]], config: NightwatchConfig, outputs: Outputs) -> list[LetterPlan]:
    """What each letter would push, and (for undecodable packets) what the decoder now makes of its bytes."""
    decoder = PacketDecoder(config.sources, config.limits.input)
    warm_raw = _archived_raw(outputs, {row["event_id"] for row in letters if row["stage"] == _WARM and row["event_id"]})
    plans = []
    for letter in letters:
        payload = letter["payload"] or warm_raw.get(letter["event_id"] or "", b"")
        if not payload:
            plans.append(LetterPlan(letter, b"", None, "no bytes kept for this letter (and no archived copy)"))
            continue
        if letter["stage"] != names.DECODE and letter["event_id"]:
            plans.append(LetterPlan(letter, payload, [letter["event_id"]]))
            continue
        results = decoder.decode(_packet(letter, payload))
        failures = [result.reason for result in results if isinstance(result, DecodeFailure)]
        ids = [result.event_id for result in results if isinstance(result, Event)]
        plans.append(LetterPlan(letter, payload, ids, failures[0] if failures or not ids else None))
        if not ids and not failures:
            plans[-1].problem = "the packet holds no event"
    return plans


def _packet(letter: dict[str, Any], payload: bytes) -> Packet:
    return Packet(
        payload=payload,
        origin=deadletters.REDRIVE_ORIGIN + letter["dead_letter_id"],
        source_hint=letter["source"],
        received_time=utcnow(),
        injected=bool(letter["injected"]),
    )


def _present(store: HotStore, outputs: Outputs, plans: list[LetterPlan]) -> set[str]:
    """Letter ids whose events are now where their stage failed to put them."""
    wanted = {event_id for item in plans for event_id in item.expected or []}
    tables: dict[str, set[str]] = {}
    with store.engine.connect() as conn:
        for name, table in (("events", events), *((stage, t) for stage, t in _TABLE_OF_STAGE.items())):
            found: set[str] = set()
            ids = sorted(wanted)
            for start in range(0, len(ids), 500):
                query = sa.select(table.c.event_id).where(table.c.event_id.in_(ids[start : start + 500]))
                found |= set(conn.execute(query).scalars())
            tables[name] = found
    stages = {item.letter["stage"] for item in plans}
    if _WARM in stages:
        tables[_WARM] = {entry.event_id for entry in warm_entries(outputs.warm_root)}
    if _ARCHIVE in stages:
        tables[_ARCHIVE] = {entry.event_id for entry in archive_entries(outputs.archive_root)}
    done = set()
    for item in plans:
        if item.problem or not item.expected:
            continue
        where = tables.get(item.letter["stage"], tables["events"])
        if all(event_id in where and event_id in tables["events"] for event_id in item.expected):
            done.add(item.letter["dead_letter_id"])
    return done


def redrive(
    store: HotStore,
    outputs: Outputs,
    config: NightwatchConfig,
    where: deadletters.LetterFilter,
    actor: str,
    dry_run: bool = False,
    beam_args: list[str] | None = None,
) -> RedriveReport:
    """Re-drive the open letters `where` selects (the caller has checked `actor` may: run_operations)."""
    letters = deadletters.letters_with_payload(store, where)
    plans = plan(letters, config, outputs)
    report = RedriveReport(selected=len(letters), dry_run=dry_run)
    pushed = [item for item in plans if item.payload and not (dry_run and item.problem)]
    if dry_run:
        report.redriven = len(pushed)
        report.now_stored = [item.letter["dead_letter_id"] for item in pushed if item.expected]
        report.still_dead = {item.letter["dead_letter_id"]: item.problem for item in plans if item.problem}
        return report
    report.run_id = f"redrive-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report.redriven = len(pushed)
    if pushed:
        report.summary = _run(pushed, config, outputs, report.run_id, beam_args or [])
    # Redriven packets that failed again: their reasons, then the attempts resolved (the original stands).
    attempts = deadletters.attempts_of(store, [item.letter["dead_letter_id"] for item in plans])
    deadletters.resolve(store, [row["dead_letter_id"] for rows in attempts.values() for row in rows])
    done = _present(store, outputs, plans)
    deadletters.resolve(store, sorted(done))
    report.now_stored = sorted(done)
    for item in plans:
        letter_id = item.letter["dead_letter_id"]
        if letter_id not in done:
            latest = max(attempts.get(letter_id, []), key=lambda row: row["stored_at"], default=None)
            report.still_dead[letter_id] = latest["reason"] if latest else (item.problem or item.letter["reason"])
    record(store, actor, "dead_letters.redrive", report.run_id, _described(where), report.figures(), "cli")
    return report


def _described(where: deadletters.LetterFilter) -> dict[str, Any]:
    return {name: getattr(where, name) for name in ("source", "stage", "reason", "night") if getattr(where, name)}


def _run(plans: list[LetterPlan], config: NightwatchConfig, outputs: Outputs, run_id: str, beam_args: list[str]):
    """The batch graph over the letters' packets, on the in-process batch runner unless told otherwise."""
    packets = [_packet(item.letter, item.payload) for item in plans]
    started = utcnow()
    options = pipeline_options(beam_args)
    with beam.Pipeline(options=options) as p:
        build_pipeline(p | "RedrivenPackets" >> beam.Create(packets), config, outputs, run_id)
    summary = RunSummary(
        run_id=run_id,
        counters=counters_of(p.result),
        outputs={"hot store": outputs.db_url},
        started_at=started.isoformat(),
        finished_at=utcnow().isoformat(),
    )
    store = HotStore(outputs.db_url)
    store.record_run(run_id, started, utcnow(), summary.as_dict())
    store.close()
    return summary
