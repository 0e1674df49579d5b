"""Releases of the cuts and rules in the hot store: registered versions, their trials and the one in force.

A release is a whole filters or classification document, registered with its author and notes and kept for
good. On trial it runs in *shadow* (decided beside the version in force, recorded but never acted on) or in
*canary* (deciding a fixed share of events, chosen by a hash of the event id so an event always lands on the
same side). Promotion and rollback write a new row of the `thresholds` table naming the release: running jobs
already re-read that table every few seconds (`store.thresholds.LiveRules`), so they follow without a restart,
and every event records the version that decided it (`<shipped version>+release.<id>`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from config.settings import ClassificationConfig, FiltersConfig
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import releases, thresholds

KINDS: dict[str, type[FiltersConfig] | type[ClassificationConfig]] = {
    "filters": FiltersConfig,
    "classification": ClassificationConfig,
}
SHIPPED = 0  # `thresholds.release_id` of a rollback to the shipped files: events record the shipped version again
STATUSES = ("registered", "shadow", "canary", "promoted", "retired", "rolled_back")
TRIALS = ("shadow", "canary")


def release_label(base_version: str, release_id: int) -> str:
    """The version an event records when this release decided it."""
    return f"{base_version.split('+')[0]}+release.{release_id}"


def in_canary(event_id: str, share: float) -> bool:
    """Whether an event falls in a canary of `share`: a hash of its id, so every job and every retry agree."""
    bucket = int.from_bytes(hashlib.sha256(event_id.encode("utf-8")).digest()[:8], "big") / 2**64
    return bucket < share


def kind_of(model: FiltersConfig | ClassificationConfig) -> str:
    return "filters" if isinstance(model, FiltersConfig) else "classification"


@dataclass(frozen=True)
class Release:
    release_id: int
    kind: str
    author: str
    notes: str
    created_at: datetime
    status: str
    share: float | None
    trial_started_at: datetime | None
    document: str
    report: dict[str, Any] | None

    @property
    def model(self) -> Any:
        """The release's cuts or rules, labelled with the version events record."""
        model = KINDS[self.kind].model_validate(json.loads(self.document))
        return model.model_copy(update={"version": release_label(model.version, self.release_id)})

    @property
    def label(self) -> str:
        return self.model.version


def _release(row: Any) -> Release:
    return Release(
        release_id=row.release_id,
        kind=row.kind,
        author=row.author,
        notes=row.notes,
        created_at=as_utc(row.created_at),
        status=row.status,
        share=row.share,
        trial_started_at=as_utc(row.trial_started_at) if row.trial_started_at else None,
        document=row.document,
        report=json.loads(row.report) if row.report else None,
    )


def document_of(model: FiltersConfig | ClassificationConfig) -> str:
    return json.dumps(model.model_dump(mode="json", by_alias=True), sort_keys=True)


class ReleaseStore:
    """The `releases` table and the release rows of `thresholds`. No role checks here: ops.releases does them."""

    def __init__(self, store: HotStore):
        self._store = store

    def register(self, model: FiltersConfig | ClassificationConfig, author: str, notes: str) -> int:
        values = dict(
            kind=kind_of(model),
            document=document_of(model),
            author=author,
            notes=notes,
            created_at=utcnow(),
            status="registered",
        )
        with self._store.engine.begin() as conn:
            return int(conn.execute(releases.insert().values(**values)).inserted_primary_key[0])

    def get(self, release_id: int) -> Release | None:
        with self._store.engine.connect() as conn:
            row = conn.execute(sa.select(releases).where(releases.c.release_id == release_id)).first()
        return _release(row) if row else None

    def list(self, kind: str | None = None) -> list[Release]:
        query = sa.select(releases).order_by(releases.c.release_id.desc())
        if kind:
            query = query.where(releases.c.kind == kind)
        with self._store.engine.connect() as conn:
            return [_release(row) for row in conn.execute(query)]

    def trials(self) -> list[Release]:
        """The releases in shadow or canary now, oldest first."""
        query = sa.select(releases).where(releases.c.status.in_(TRIALS)).order_by(releases.c.release_id)
        with self._store.engine.connect() as conn:
            return [_release(row) for row in conn.execute(query)]

    def set_status(self, release_id: int, status: str, share: float | None = None, started: bool = False) -> None:
        values: dict[str, Any] = {"status": status, "share": share}
        if started:
            values["trial_started_at"] = utcnow()
        with self._store.engine.begin() as conn:
            conn.execute(releases.update().where(releases.c.release_id == release_id).values(**values))

    def save_report(self, release_id: int, report: dict[str, Any]) -> None:
        with self._store.engine.begin() as conn:
            conn.execute(
                releases.update()
                .where(releases.c.release_id == release_id)
                .values(report=json.dumps(report, default=str))
            )

    def in_force_rows(self, kind: str, limit: int = 2) -> list[Any]:
        """The newest `thresholds` rows of `kind` (the first is in force)."""
        query = (
            sa.select(thresholds).where(thresholds.c.kind == kind).order_by(thresholds.c.version.desc()).limit(limit)
        )
        with self._store.engine.connect() as conn:
            return list(conn.execute(query))

    def put_in_force(self, kind: str, document: str, release_id: int | None, author: str, note: str) -> int:
        """A new `thresholds` version (the one running jobs pick up), naming the release it came from."""
        values = dict(
            kind=kind, document=document, author=author, note=note, created_at=utcnow(), release_id=release_id
        )
        with self._store.engine.begin() as conn:
            version = int(conn.execute(thresholds.insert().values(**values)).inserted_primary_key[0])
            if release_id:  # a release (not the shipped files, not a live tuning)
                # The release it replaces in force is retired; this one is promoted.
                conn.execute(
                    releases.update()
                    .where(releases.c.kind == kind, releases.c.status == "promoted")
                    .values(status="retired")
                )
                conn.execute(
                    releases.update().where(releases.c.release_id == release_id).values(status="promoted", share=None)
                )
            return version
