"""Tuning: a new version of the filter cuts or classification rules published by an operator, audited."""

from __future__ import annotations

from typing import Any

from access.accounts import acting
from access.audit import record
from access.roles import AccessError
from config.settings import FiltersConfig
from store.hot import HotStore
from store.thresholds import ThresholdStore

# --- thresholds ----------------------------------------------------------------------------------------------


def publish_thresholds(store: HotStore, actor: str, model: Any, replacing: Any, note: str) -> int:
    """Publish a new version of the filter cuts or classification rules (Operator and above), audited with the
    version in force it replaces. Running pipelines pick it up through ThresholdStore within seconds."""
    acting(store, actor, "adjust_thresholds")
    if not note.strip():
        raise AccessError("say why the thresholds change")
    if replacing is not None and model.model_dump(exclude={"version"}) == replacing.model_dump(exclude={"version"}):
        raise AccessError("nothing changed: the proposal is the version in force")
    kind = "filters" if isinstance(model, FiltersConfig) else "classification"
    version = ThresholdStore(store).publish(model, author=actor, note=note.strip())
    record(
        store,
        actor,
        f"thresholds.{kind}",
        f"thresholds:{kind}:v{version}",
        replacing.model_dump(mode="json", by_alias=True) if replacing is not None else None,
        model.model_dump(mode="json", by_alias=True),
        note.strip(),
    )
    return version
