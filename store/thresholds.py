"""Live thresholds: filter cuts and classification rules versioned in the hot store.

Operators publish a new version (validated by the same pydantic models as the YAML); running jobs pick it
up within seconds. A DoFn holds a `LiveRules` that re-reads the latest version when its cached copy is older
than `refresh_s` (the slowly-updating side input does not work on the local runners; this works everywhere).
Each event records the version it was decided with, e.g. `2026.11.1+live.3`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError

from config.settings import ClassificationConfig, FiltersConfig
from core.decisions import decide
from core.decoders.common import validation_reason
from core.event import Event, utcnow
from store.hot import HotStore
from store.releases import SHIPPED, ReleaseStore, in_canary, release_label
from store.schema import thresholds

log = logging.getLogger("nightwatch.thresholds")

KINDS: dict[str, type[BaseModel]] = {"filters": FiltersConfig, "classification": ClassificationConfig}
Model = TypeVar("Model", FiltersConfig, ClassificationConfig)


def _labelled(model: Model, version: int, release_id: int | None = None) -> Model:
    """A stored version labelled for the events it decides: `+release.N` when a release put it in force."""
    if release_id == SHIPPED:
        return model
    if release_id is not None:
        return model.model_copy(update={"version": release_label(model.version, release_id)})
    return model.model_copy(update={"version": f"{model.version.split('+')[0]}+live.{version}"})


class ThresholdStore:
    """Versions of the filter cuts and classification rules, in the hot store's `thresholds` table."""

    def __init__(self, store: HotStore):
        self._store = store

    def close(self) -> None:
        self._store.close()

    def latest(self, kind: str) -> Any | None:
        """The newest version of `kind` as a validated model labelled with its version, or None."""
        query = (
            sa.select(thresholds.c.version, thresholds.c.document, thresholds.c.release_id)
            .where(thresholds.c.kind == kind)
            .order_by(thresholds.c.version.desc())
            .limit(1)
        )
        with self._store.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return _labelled(KINDS[kind].model_validate(json.loads(row.document)), row.version, row.release_id)

    def publish(self, model: FiltersConfig | ClassificationConfig, author: str, note: str = "") -> int:
        """Store a new version; returns its number. The model was validated when it was built."""
        kind = "filters" if isinstance(model, FiltersConfig) else "classification"
        document = json.dumps(model.model_dump(mode="json", by_alias=True), sort_keys=True)
        with self._store.engine.begin() as conn:
            result = conn.execute(
                thresholds.insert().values(kind=kind, document=document, author=author, note=note, created_at=utcnow())
            )
            return int(result.inserted_primary_key[0])

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        query = (
            sa.select(
                thresholds.c.version,
                thresholds.c.kind,
                thresholds.c.author,
                thresholds.c.note,
                thresholds.c.created_at,
                thresholds.c.release_id,
            )
            .order_by(thresholds.c.version.desc())
            .limit(limit)
        )
        with self._store.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def with_cut_value(filters: FiltersConfig, source: str, cut_name: str, value: Any) -> FiltersConfig:
    """The filters with one cut's value changed; ValueError naming what is wrong."""
    cuts = filters.cuts_for(source)
    names = [cut.name for cut in cuts]
    if cut_name not in names:
        raise ValueError(f"no cut {cut_name!r} for source {source!r}; cuts: {', '.join(names) or 'none'}")
    data = filters.model_dump(mode="json")
    data[source][names.index(cut_name)]["value"] = value
    try:
        return FiltersConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"invalid value {value!r} for {source}.{cut_name}: {validation_reason(exc)}") from None


def with_rule_condition(
    classification: ClassificationConfig, rule_name: str, field: str, op: str, value: Any
) -> ClassificationConfig:
    """The rules with one condition of one rule set (added or replaced); ValueError naming what is wrong."""
    data = classification.model_dump(mode="json", by_alias=True)
    rules = {rule["name"]: rule for rule in data["rules"]}
    if rule_name not in rules:
        raise ValueError(f"no rule {rule_name!r}; rules: {', '.join(rules)}")
    rules[rule_name]["when"][field] = {"op": op, "value": value}
    try:
        return ClassificationConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(
            f"invalid condition {field} {op} {value!r} for rule {rule_name}: {validation_reason(exc)}"
        ) from None


class LiveRules:
    """The filter cuts and rules in force: the shipped ones, replaced by the newest stored version; and the
    releases on trial (`store.releases`): a canary decides its share of events, a shadow is decided beside.

    Re-read at most every `refresh_s` seconds; if the store cannot be read, the last good version stays.
    """

    def __init__(
        self,
        filters: FiltersConfig,
        classification: ClassificationConfig,
        db_url: str | None,
        refresh_s: float = 2.0,
    ):
        self._base = {"filters": filters, "classification": classification}
        self._current = dict(self._base)
        self._hot = HotStore(db_url) if db_url else None
        self._store = ThresholdStore(self._hot) if self._hot else None
        self._releases = ReleaseStore(self._hot) if self._hot else None
        self._refresh_s = refresh_s
        self._checked = {kind: -float("inf") for kind in [*KINDS, "trials"]}
        self._canary: dict[str, tuple[Any, float]] = {}  # kind -> (model, share)
        self._shadow: dict[str, Any] = {}  # kind -> model

    def _due(self, what: str) -> bool:
        now = time.monotonic()
        if self._store is None or now - self._checked[what] < self._refresh_s:
            return False
        self._checked[what] = now
        return True

    def _get(self, kind: str) -> Any:
        if self._due(kind):
            try:
                stored = self._store.latest(kind)
            except Exception as exc:  # noqa: BLE001 - keep deciding with the last good version
                log.warning("cannot read live %s (keeping %s): %s", kind, self._current[kind].version, exc)
            else:
                latest = stored or self._base[kind]
                if latest.version != self._current[kind].version:
                    log.info("live %s now at version %s", kind, latest.version)
                self._current[kind] = latest
        return self._current[kind]

    def _trials(self) -> None:
        if not self._due("trials"):
            return
        try:
            trials = self._releases.trials()
        except Exception as exc:  # noqa: BLE001 - keep the trials last read
            log.warning("cannot read the releases on trial (keeping the last read): %s", exc)
            return
        canary = {r.kind: (r.model, r.share or 0.0) for r in trials if r.status == "canary"}
        shadow = {r.kind: r.model for r in trials if r.status == "shadow"}
        if {k: m.version for k, (m, _) in canary.items()} != {k: m.version for k, (m, _) in self._canary.items()}:
            log.info("canary now %s", {kind: (m.version, share) for kind, (m, share) in canary.items()} or "none")
        self._canary, self._shadow = canary, shadow

    def _for(self, kind: str, event_id: str | None) -> Any:
        in_force = self._get(kind)
        if event_id is None:
            return in_force
        self._trials()
        canary = self._canary.get(kind)
        return canary[0] if canary is not None and in_canary(event_id, canary[1]) else in_force

    def filters(self, event_id: str | None = None) -> FiltersConfig:
        """The cuts that decide `event_id`: a canary's if the event falls in its share, else those in force."""
        return self._for("filters", event_id)

    def classification(self, event_id: str | None = None) -> ClassificationConfig:
        return self._for("classification", event_id)

    def shadow(self, event: Event) -> dict[str, str]:
        """Lineage for a release in shadow: its version and the class it would have given (empty if none)."""
        self._trials()
        if not self._shadow:
            return {}
        filters = self._shadow.get("filters") or self.filters(event.event_id)
        rules = self._shadow.get("classification") or self.classification(event.event_id)
        label = ",".join(model.version for model in self._shadow.values())
        return {"shadow_version": label, "shadow_class": decide(event, filters, rules)}

    def close(self) -> None:
        if self._hot is not None:
            self._hot.close()
