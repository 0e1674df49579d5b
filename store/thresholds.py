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
from core.decoders.common import validation_reason
from core.event import utcnow
from store.hot import HotStore
from store.schema import thresholds

log = logging.getLogger("nightwatch.thresholds")

KINDS: dict[str, type[BaseModel]] = {"filters": FiltersConfig, "classification": ClassificationConfig}
Model = TypeVar("Model", FiltersConfig, ClassificationConfig)


def _labelled(model: Model, version: int) -> Model:
    return model.model_copy(update={"version": f"{model.version.split('+live.')[0]}+live.{version}"})


class ThresholdStore:
    """Versions of the filter cuts and classification rules, in the hot store's `thresholds` table."""

    def __init__(self, store: HotStore):
        self._store = store

    def close(self) -> None:
        self._store.close()

    def latest(self, kind: str) -> Any | None:
        """The newest version of `kind` as a validated model labelled with its version, or None."""
        query = (
            sa.select(thresholds.c.version, thresholds.c.document)
            .where(thresholds.c.kind == kind)
            .order_by(thresholds.c.version.desc())
            .limit(1)
        )
        with self._store.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return _labelled(KINDS[kind].model_validate(json.loads(row.document)), row.version)

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
                thresholds.c.version, thresholds.c.kind, thresholds.c.author, thresholds.c.note, thresholds.c.created_at
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
    """The filter cuts and rules in force: the shipped ones, replaced by the newest stored version.

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
        self._store = ThresholdStore(HotStore(db_url)) if db_url else None
        self._refresh_s = refresh_s
        self._checked = {kind: -float("inf") for kind in KINDS}

    def _get(self, kind: str) -> Any:
        now = time.monotonic()
        if self._store is not None and now - self._checked[kind] >= self._refresh_s:
            self._checked[kind] = now
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

    def filters(self) -> FiltersConfig:
        return self._get("filters")

    def classification(self) -> ClassificationConfig:
        return self._get("classification")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
