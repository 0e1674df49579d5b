"""A guide procedure run as one command: its steps in order, each passed or failed with its evidence, printed
as it goes and stored (`procedure_runs`) so the console shows the last results. `nightwatch deploy` and
`nightwatch system-test` are procedures.
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import procedure_runs


@dataclass
class StepResult:
    name: str
    passed: bool
    evidence: str
    seconds: float
    skipped: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        verdict = "SKIP" if self.skipped else ("PASS" if self.passed else "FAIL")
        return f"[{verdict}] {self.name} ({self.seconds:.1f} s): {self.evidence}"


class StepFailed(Exception):
    """A step's own refusal: the message is its evidence."""


@dataclass
class Outcome:
    """What a step function returns: whether it passed, the evidence, and data for the report."""

    passed: bool
    evidence: str
    data: dict[str, Any] = field(default_factory=dict)


class Procedure:
    """Run steps in order and record each; `stop_on_failure` ends the run at the first failed step."""

    def __init__(
        self,
        store: HotStore,
        kind: str,
        actor: str,
        progress: Callable[[str], None] = print,
        stop_on_failure: bool = True,
        details: dict[str, Any] | None = None,
    ):
        self.store, self.kind, self.actor, self.progress = store, kind, actor, progress
        self.stop_on_failure = stop_on_failure
        self.run_id = f"{kind}-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.steps: list[StepResult] = []
        self.details = details or {}
        self.started_at = utcnow()
        with store.engine.begin() as conn:
            conn.execute(
                procedure_runs.insert().values(
                    run_id=self.run_id, kind=kind, actor=actor, started_at=self.started_at, report=self._report()
                )
            )

    @property
    def failed(self) -> bool:
        return any(not step.passed and not step.skipped for step in self.steps)

    def step(self, name: str, action: Callable[[], Outcome]) -> StepResult:
        """Run one step (unless an earlier one failed and the run stops there) and record it."""
        if self.failed and self.stop_on_failure:
            result = StepResult(name, False, "not run: an earlier step failed", 0.0, skipped=True)
        else:
            self.progress(f"... {name}")
            began = time.monotonic()
            try:
                outcome = action()
            except StepFailed as exc:
                outcome = Outcome(False, str(exc))
            except Exception as exc:  # noqa: BLE001 - a step's crash is that step's failure, with its evidence
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                outcome = Outcome(False, f"crashed: {last}")
            result = StepResult(name, outcome.passed, outcome.evidence, time.monotonic() - began, data=outcome.data)
        self.steps.append(result)
        self.progress(result.line())
        self._save(finished=False)
        return result

    def finish(self) -> bool:
        self._save(finished=True)
        passed = not self.failed
        self.progress(f"{self.kind} {self.run_id}: {'PASSED' if passed else 'FAILED'}")
        return passed

    def _report(self) -> str:
        return json.dumps({"details": self.details, "steps": [asdict(step) for step in self.steps]}, default=str)

    def _save(self, finished: bool) -> None:
        values: dict[str, Any] = {"report": self._report()}
        if finished:
            values |= {"finished_at": utcnow(), "passed": not self.failed}
        with self.store.engine.begin() as conn:
            conn.execute(procedure_runs.update().where(procedure_runs.c.run_id == self.run_id).values(**values))


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    kind: str
    actor: str
    started_at: datetime
    finished_at: datetime | None
    passed: bool | None
    steps: list[dict[str, Any]]
    details: dict[str, Any]


def last_runs(store: HotStore, kind: str, limit: int = 5) -> list[RunRecord]:
    """The newest runs of a procedure, newest first (the console's page reads these)."""
    query = (
        sa.select(procedure_runs)
        .where(procedure_runs.c.kind == kind)
        .order_by(procedure_runs.c.started_at.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    records = []
    for row in rows:
        report = json.loads(row.report)
        records.append(
            RunRecord(
                run_id=row.run_id,
                kind=row.kind,
                actor=row.actor,
                started_at=as_utc(row.started_at),
                finished_at=as_utc(row.finished_at) if row.finished_at else None,
                passed=row.passed,
                steps=report["steps"],
                details=report["details"],
            )
        )
    return records
