"""Stop and resume intake (Data recovery steps 2 and 6): `nightwatch intake pause|resume [--source S]`.

The command writes the `intake_state` row of a source (or "*" for every source), as an Operator or above, audited
in the same transaction. A running streaming job polls the rows every couple of seconds: a paused source's reader
stops pulling (what is queued stays on its subscription), what is in flight finishes, and the job's heartbeat
says `paused`; on resume it pulls again from where the subscription stands, so nothing is lost or doubled.

Production runners have no in-job pause: on Dataflow drain the job (`gcloud dataflow jobs drain JOB`) and launch
it again to resume; on Flink stop it with a savepoint (`flink stop --savepointPath s3://.../savepoints JOB`) and
resume from it (`flink run -s <savepoint> ...`). The commands print these lines for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from access import accounts, audit
from config.base import SOURCES
from core.event import utcnow
from store.hot import HotStore
from store.schema import intake_state

ALL = "*"
POLL_S = 2.0


class IntakeError(ValueError):
    """An intake change that cannot be made (an unknown source)."""


@dataclass(frozen=True)
class IntakeRow:
    source: str
    paused: bool
    changed_at: datetime
    changed_by: str
    reason: str | None


def rows(store: HotStore) -> list[IntakeRow]:
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(intake_state).order_by(intake_state.c.source)).mappings().all()
    return [IntakeRow(r["source"], bool(r["paused"]), r["changed_at"], r["changed_by"], r["reason"]) for r in found]


def paused_sources(store: HotStore, sources: tuple[str, ...] | list[str] = SOURCES) -> set[str]:
    """The sources whose intake is paused now ("*" pauses them all, a source's own row overrides it)."""
    state = {row.source: row.paused for row in rows(store)}
    everything = state.get(ALL, False)
    return {source for source in sources if state.get(source, everything)}


def set_paused(store: HotStore, actor: str, paused: bool, source: str | None = None, reason: str = "") -> IntakeRow:
    """Pause or resume one source's intake (or all of them): Operator or above, audited."""
    accounts.acting(store, actor, "run_operations")
    key = source or ALL
    if key != ALL and key not in SOURCES:
        raise IntakeError(f"unknown source {key!r}: one of {', '.join(SOURCES)}")
    now = utcnow()
    row = {"paused": paused, "changed_at": now, "changed_by": actor, "reason": reason.strip() or None}
    with store.engine.begin() as conn:
        before = conn.execute(sa.select(intake_state).where(intake_state.c.source == key)).mappings().first()
        if key == ALL and not paused:
            conn.execute(intake_state.delete().where(intake_state.c.source != ALL))  # resume all = all of them
        if before is None:
            conn.execute(intake_state.insert().values(source=key, **row))
        else:
            conn.execute(intake_state.update().where(intake_state.c.source == key).values(**row))
        audit.audit(
            conn,
            actor,
            "intake.pause" if paused else "intake.resume",
            f"intake:{key}",
            None if before is None else {"paused": bool(before["paused"])},
            {"paused": paused},
            reason.strip() or None,
        )
    return IntakeRow(key, paused, now, actor, row["reason"])


def describe(store: HotStore) -> str:
    paused = sorted(paused_sources(store))
    return f"intake paused: {', '.join(paused)}" if paused else "intake: every source pulling"


PRODUCTION = (
    "production runners: Dataflow has no in-job pause: drain (`gcloud dataflow jobs drain JOB_ID --region R`; "
    "what is queued stays on the subscriptions) and relaunch `nightwatch stream --runner dataflow ...` to resume. "
    "Flink: `flink stop --savepointPath s3://BUCKET/savepoints JOB_ID`, then resume with "
    "`flink run -s SAVEPOINT_PATH ...` (the Kafka offsets are in the savepoint)."
)
