"""The configuration in force: the configuration files with the newest stored version of each document the
console and the CLI edit (table `config_documents`: sources, notifications, agents, on-call, maintenance,
contacts) laid over them; and `LiveConfig`, which running jobs re-read every few seconds.

The stored versions are numbered across kinds (the table's key), so the highest one names the whole set in force:
`config_version` (0 when nothing is stored and the files alone are in force). What decides records it: each event's
lineage (`config_version`), the health report, the notifier.

Like the live thresholds (store/thresholds.py), a job re-reads when its cached copy is older than `refresh_s`: the
slowly-updating side input does not work on the local runners, this works everywhere (BEAM-NOTES.md).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError

from config.settings import NightwatchConfig
from store.hot import HotStore
from store.schema import config_documents

log = logging.getLogger("nightwatch.config")


def stored_documents(store: HotStore) -> tuple[dict[str, tuple[int, Any]], int]:
    """The newest stored version of each kind ({kind: (version, document)}) and the highest version of all."""
    newest = (
        sa.select(config_documents.c.kind, sa.func.max(config_documents.c.version).label("version"))
        .group_by(config_documents.c.kind)
        .subquery()
    )
    query = sa.select(config_documents.c.kind, config_documents.c.version, config_documents.c.document).join(
        newest, (newest.c.kind == config_documents.c.kind) & (newest.c.version == config_documents.c.version)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    documents = {row.kind: (row.version, json.loads(row.document)) for row in rows}
    return documents, max((version for version, _ in documents.values()), default=0)


def overlay(base: NightwatchConfig, documents: dict[str, tuple[int, Any]], version: int) -> NightwatchConfig:
    """`base` with each stored document in place of its part; kinds that are not a part of the configuration
    (a kind a test registers) are left out. A document that no longer validates (a model changed since) raises
    ValueError naming it: the caller keeps its last good configuration."""
    update: dict[str, Any] = {"config_version": version}
    for kind, (number, document) in documents.items():
        field = NightwatchConfig.model_fields.get(kind)
        model = field.annotation if field else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        try:
            update[kind] = model.model_validate(document)
        except ValidationError as exc:
            raise ValueError(f"stored {kind} configuration version {number} is invalid: {exc}") from None
    return base.model_copy(update=update)


def latest_version(store: HotStore) -> int:
    """The highest stored version (0: none): versions only grow, a rollback included, so it changes exactly when
    the configuration in force does."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(config_documents.c.version))).scalar() or 0


def in_force(base: NightwatchConfig, store: HotStore) -> NightwatchConfig:
    """The configuration in force now: `base` (the files) with the stored documents laid over it."""
    documents, version = stored_documents(store)
    return overlay(base, documents, version)


class LiveConfig:
    """The configuration in force for a running job: re-read at most every `refresh_s` seconds; when the store
    cannot be read (or a stored document is invalid) the last good configuration stays, with a warning."""

    def __init__(self, base: NightwatchConfig, db_url: str | None, refresh_s: float = 2.0):
        self._base = base
        self._current = base
        self._store = HotStore(db_url) if db_url else None
        self._refresh_s = refresh_s
        self._checked = -float("inf")

    def get(self) -> NightwatchConfig:
        now = time.monotonic()
        if self._store is not None and now - self._checked >= self._refresh_s:
            self._checked = now
            try:
                # One small query each refresh; the documents are read and validated only when a version is new.
                if latest_version(self._store) == self._current.config_version:
                    return self._current
                latest = in_force(self._base, self._store)
            except Exception as exc:  # noqa: BLE001 - keep deciding with the last good configuration
                log.warning(
                    "cannot read the configuration in force (keeping v%s): %s", self._current.config_version, exc
                )
            else:
                if latest.config_version != self._current.config_version:
                    log.info("configuration in force now at version %s", latest.config_version)
                self._current = latest
        return self._current

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
