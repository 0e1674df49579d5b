"""The alerts the notices are about, read from the hot store, and the notice of an alert."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.event import as_utc
from ops.notify.notice import Notice
from store.hot import HotStore
from store.schema import alert_actions, alerts, events


@dataclass(frozen=True)
class AlertInfo:
    alert_id: str
    event_id: str
    level: str
    status: str
    title: str
    score: float | None
    dedup_key: str
    injected: bool
    created_at: datetime
    night: str | None
    details: dict[str, Any]


def load_alert(store: HotStore, alert_id: str) -> AlertInfo | None:
    """An alert with what its notices say about the event."""
    query = (
        sa.select(alerts, events.c.source, events.c.kind, events.c.event_time, events.c.night, events.c.ra)
        .add_columns(events.c.dec, events.c.pos_error_deg, events.c.mag, events.c.band, events.c.reasons)
        .select_from(alerts.outerjoin(events, events.c.event_id == alerts.c.event_id))
        .where(alerts.c.alert_id == alert_id)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return _alert(row) if row else None


def _alert(row: Any) -> AlertInfo:
    details = {
        "event_id": row.event_id,
        "source": row.source,
        "kind": row.kind,
        "event_time": as_utc(row.event_time).isoformat() if row.event_time else None,
        "ra": row.ra,
        "dec": row.dec,
        "pos_error_deg": row.pos_error_deg,
        "mag": row.mag,
        "band": row.band,
        "score": row.score,
        "night": row.night,
        "reasons": json.loads(row.reasons)[:3] if row.reasons else [],
    }
    return AlertInfo(
        alert_id=row.alert_id,
        event_id=row.event_id,
        level=row.level,
        status=row.status,
        title=row.title or row.alert_id,
        score=row.score,
        dedup_key=row.dedup_key,
        injected=bool(row.injected),
        created_at=as_utc(row.created_at),
        night=row.night,
        details=details,
    )


def alert_notice(
    alert: AlertInfo, action: str, portal_url: str | None, summary: str | None = None, recipient: str | None = None
) -> Notice:
    link = f"{portal_url.rstrip('/')}/?alert={alert.alert_id}" if portal_url else None
    return Notice(
        key=alert.alert_id,
        action=action,
        title=alert.title,
        summary=summary or alert.title,
        dedup_key=alert.dedup_key,
        timestamp=alert.created_at.isoformat(),
        level=alert.level,
        source=f"nightwatch/{alert.details.get('source') or 'pipeline'}",
        details=alert.details,
        recipient=recipient,
        link=link,
    )


def acknowledged(store: HotStore, alert_ids: list[str]) -> set[str]:
    """Alerts someone has acknowledged or resolved in the portal."""
    query = sa.select(alert_actions.c.alert_id).where(
        alert_actions.c.alert_id.in_(alert_ids) & alert_actions.c.action.in_(("acknowledge", "resolve"))
    )
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())
