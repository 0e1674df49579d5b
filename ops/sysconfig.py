"""System configuration documents: versioned in the hot store, validated by their pydantic models, audited, and
in force: the pipeline, `health`, notifications, on-call and scaling read them (store/configs.py).

A document kind is registered by naming its model (`register("agents", AgentsConfig, "agents.yaml")`); the
console's Admin page and `nightwatch config` list every registered kind, so adding one later is one line. Each
save is a new version (never an update), written with an audit row holding the version it replaces, and
committed to the configuration's Git history (ops/confighistory.py) with its author and reason. Until a kind has a
stored version, the one in force is the configuration folder's file. A rollback stores an earlier version again as
the newest; a restore stores every document of a Git commit that differs from the one in force.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ValidationError

from access import accounts, audit, roles
from config.settings import (
    CONFIG_DIR,
    AgentsConfig,
    ContactsConfig,
    MaintenanceConfig,
    NightwatchConfig,
    NotificationsConfig,
    OnCallConfig,
    RunbooksConfig,
    SourcesConfig,
    load_config,
)
from core.event import as_utc, utcnow
from ops import confighistory
from store.configs import in_force
from store.hot import HotStore
from store.schema import config_documents

log = logging.getLogger("nightwatch.config")


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[BaseModel]
    title: str
    shipped_file: str | None = None  # the YAML under config/ that is in force until a version is stored
    default: dict[str, Any] | None = None


REGISTRY: dict[str, Kind] = {}


def register(
    name: str, model: type[BaseModel], title: str, shipped_file: str | None = None, default: dict | None = None
) -> None:
    """Make a document kind editable in the console: its model validates every version."""
    REGISTRY[name] = Kind(name, model, title, shipped_file, default)


register("sources", SourcesConfig, "Sources and expected rates", "sources.yaml")
register("notifications", NotificationsConfig, "Notification channels", "notifications.yaml")
register("agents", AgentsConfig, "Agent budgets", "agents.yaml")
register("oncall", OnCallConfig, "On-call rotation", "oncall.yaml")
register("maintenance", MaintenanceConfig, "Maintenance windows", "maintenance.yaml")
register("contacts", ContactsConfig, "Contacts (teams, escalation, external)", "contacts.yaml")
register("runbooks", RunbooksConfig, "Runbooks", "runbooks.yaml")


@dataclass(frozen=True)
class Document:
    kind: str
    version: int | None  # None: the shipped file, never saved in the store
    data: dict[str, Any]
    author: str
    note: str
    created_at: datetime | None


def _kind(name: str) -> Kind:
    if name not in REGISTRY:
        raise roles.AccessError(f"unknown configuration kind {name!r}: one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def validate(kind: str, data: Any) -> BaseModel:
    """The document validated by its kind's model; ValueError naming each field at fault."""
    try:
        return _kind(kind).model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}" for error in exc.errors()
        )
        raise ValueError(f"invalid {kind} configuration: {problems}") from None


def parse_yaml(kind: str, text: str) -> BaseModel:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    return validate(kind, data)


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def shipped(kind: str, config_dir: Path = CONFIG_DIR) -> Document:
    spec = _kind(kind)
    if spec.shipped_file:
        data = yaml.safe_load((config_dir / spec.shipped_file).read_text(encoding="utf-8"))
    else:
        data = spec.default or {}
    return Document(
        kind, None, _dump(validate(kind, data)), "shipped", f"config/{spec.shipped_file or 'default'}", None
    )


def history(store: HotStore, kind: str, limit: int = 50) -> list[Document]:
    query = (
        sa.select(config_documents)
        .where(config_documents.c.kind == kind)
        .order_by(config_documents.c.version.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Document(row.kind, row.version, json.loads(row.document), row.author, row.note or "", as_utc(row.created_at))
        for row in rows
    ]


def current(store: HotStore, kind: str, base: NightwatchConfig | None = None) -> Document:
    """The newest stored version, else the configuration folder's (`base`: the files it was loaded from), else
    the shipped one."""
    stored = history(store, kind, limit=1)
    if stored:
        return stored[0]
    if base is not None and kind in NightwatchConfig.model_fields:
        return Document(kind, None, _dump(getattr(base, kind)), "files", f"{kind} of the configuration folder", None)
    return shipped(kind)


def version(store: HotStore, kind: str, number: int) -> Document:
    """One stored version of a kind; AccessError when there is none."""
    query = sa.select(config_documents).where(
        (config_documents.c.kind == kind) & (config_documents.c.version == number)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise roles.AccessError(f"no stored {kind} version {number} (nightwatch config versions {kind})")
    return Document(row.kind, row.version, json.loads(row.document), row.author, row.note or "", as_utc(row.created_at))


def save(
    store: HotStore,
    actor: str,
    kind: str,
    data: Any,
    note: str,
    base: NightwatchConfig | None = None,
    action: str = "",
    commit: bool = True,
) -> Document:
    """Store a new version (Admin and above), validated, with an audit row holding the version it replaces, and
    commit the configuration in force to its Git history (`base`: the configuration folder's files, default
    $NIGHTWATCH_CONFIG_DIR's)."""
    accounts.acting(store, actor, "configure_system")
    if not note.strip():
        raise roles.AccessError("say what changes and why")
    model = validate(kind, data)
    base = base or load_config()
    before = current(store, kind, base)
    document = _dump(model)
    if document == before.data:
        raise roles.AccessError("nothing changed: the document is the one in force")
    with store.engine.begin() as conn:
        number = conn.execute(
            config_documents.insert().values(
                kind=kind,
                document=json.dumps(document, sort_keys=True),
                author=actor,
                note=note.strip(),
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
        audit.audit(
            conn, actor, action or f"config.{kind}", f"config:{kind}:v{number}", before.data, document, note.strip()
        )
    if commit:
        record_change(store, base, actor, f"{kind} version {number}: {note.strip()}")
    return current(store, kind, base)


def record_change(store: HotStore, base: NightwatchConfig, author: str, reason: str) -> str | None:
    """Commit the configuration in force (`base` with the stored documents over it) to the Git history."""
    return _commit(store, in_force(base, store), author, reason)


def record_files(store: HotStore, config: NightwatchConfig) -> str | None:
    """A change of the configuration files themselves (author `files`) in the configuration in force `config`,
    committed when one is found (`nightwatch health`, `nightwatch config`)."""
    return _commit(store, config, "files", "the configuration files changed")


def _commit(store: HotStore, config: NightwatchConfig, author: str, reason: str) -> str | None:
    """Never fails the change or the reading: the hot store has every version, and the next commit catches the
    history up."""
    try:
        return confighistory.record(store, config, author, reason)
    except Exception as exc:  # noqa: BLE001
        log.error("configuration history not updated: %s", exc)
        return None


def rollback(
    store: HotStore, actor: str, kind: str, number: int, reason: str, base: NightwatchConfig | None = None
) -> Document:
    """Put an earlier stored version back in force (Admin and above, audited as `config.<kind>.rollback`): it is
    stored again as the newest version, so the history shows the rollback too."""
    accounts.acting(store, actor, "configure_system")
    earlier = version(store, kind, number)
    note = f"rollback to version {number}: {reason.strip()}" if reason.strip() else ""
    return save(store, actor, kind, earlier.data, note, base, action=f"config.{kind}.rollback")


def restore(
    store: HotStore, actor: str, commit_id: str, reason: str, base: NightwatchConfig | None = None
) -> tuple[str, list[Document]]:
    """Put the configuration of a Git history commit back in force (Admin and above, audited as `config.restore`):
    each registered document that differs from the one in force is stored as a new version; one commit records
    the restore. Returns the full commit id and the documents stored."""
    accounts.acting(store, actor, "configure_system")
    if not reason.strip():
        raise roles.AccessError("say why the configuration is restored")
    base = base or load_config()
    full, documents = confighistory.files_at(store, commit_id)
    note = f"restore {full[:12]}: {reason.strip()}"
    stored = []
    for kind in REGISTRY:
        if kind in documents and _dump(validate(kind, documents[kind])) != current(store, kind, base).data:
            stored.append(save(store, actor, kind, documents[kind], note, base, commit=False))
    audit.record(store, actor, "config.restore", f"config:{full}", None, {"stored": [d.version for d in stored]}, note)
    if stored:
        record_change(store, base, actor, note)
    return full, stored
