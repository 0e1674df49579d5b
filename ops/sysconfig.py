"""System configuration documents: versioned in the hot store, validated by their pydantic models, audited.

A document kind is registered by naming its model (`register("agents", AgentsConfig, "agents.yaml")`); the
console's Admin page lists every registered kind, so adding one later is one line. Each save is a new version
(never an update), written with an audit row holding the version it replaces. Until a kind has a stored
version, the one in force is the shipped YAML file.
"""

from __future__ import annotations

import json
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
    MaintenanceConfig,
    NotificationsConfig,
    OnCallConfig,
    SourcesConfig,
)
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import config_documents


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


def current(store: HotStore, kind: str) -> Document:
    """The newest stored version, else the shipped one."""
    stored = history(store, kind, limit=1)
    return stored[0] if stored else shipped(kind)


def save(store: HotStore, actor: str, kind: str, data: Any, note: str) -> Document:
    """Store a new version (Admin and above), validated, with an audit row holding the version it replaces."""
    accounts.acting(store, actor, "configure_system")
    if not note.strip():
        raise roles.AccessError("say what changes and why")
    model = validate(kind, data)
    before = current(store, kind)
    document = _dump(model)
    if document == before.data:
        raise roles.AccessError("nothing changed: the document is the one in force")
    with store.engine.begin() as conn:
        version = conn.execute(
            config_documents.insert().values(
                kind=kind,
                document=json.dumps(document, sort_keys=True),
                author=actor,
                note=note.strip(),
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
        audit.audit(conn, actor, f"config.{kind}", f"config:{kind}:v{version}", before.data, document, note.strip())
    return current(store, kind)
