"""The "Critical Alert Not Sent" runbook: find every critical and significant event that has no alert, and every
CRITICAL or HIGH alert no channel delivered (`nightwatch alerts check`); send one by hand (`nightwatch alerts send`,
step 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from access import accounts, audit
from config.settings import NightwatchConfig
from core.event import as_utc, utcnow
from ops.notify.alerts import AlertInfo, alert_notice, load_alert
from ops.notify.notice import DELIVERED, PAGING_PREFIXES, Clock
from ops.notify.notifier import Notifier
from store.hot import HotStore
from store.schema import alerts, deliveries, events

# The event classes that must raise an alert, and the level each raises (the guide's routing).
ALERTING = {"critical": "CRITICAL", "significant": "HIGH"}
NO_ALERT, NOT_DELIVERED = "no alert", "not delivered"


@dataclass(frozen=True)
class Unsent:
    """One finding of `alerts check`: an event that should have reached someone and has not."""

    event_id: str
    level: str  # CRITICAL or HIGH
    problem: str  # NO_ALERT: the event has no alert row at all; NOT_DELIVERED: no channel delivered its alert
    at: datetime  # when the event was stored (NO_ALERT) or its alert created
    alert: AlertInfo | None = None


def unsent_alerts(store: HotStore) -> list[Unsent]:
    """Every critical and significant event checked against its alert and its deliveries (injected ones aside):
    the events with no alert row (the runbook's very symptom: "critical event detected but no alert"), then the
    CRITICAL and HIGH alerts nobody acknowledged that no channel delivered. CRITICAL first, oldest first."""
    missing = (
        sa.select(events.c.event_id, events.c.event_class, events.c.stored_at)
        .select_from(events.outerjoin(alerts, alerts.c.event_id == events.c.event_id))
        .where(events.c.event_class.in_(ALERTING) & events.c.injected.is_(False) & alerts.c.alert_id.is_(None))
    )
    with store.engine.connect() as conn:
        found = [
            Unsent(row.event_id, ALERTING[row.event_class], NO_ALERT, as_utc(row.stored_at))
            for row in conn.execute(missing)
        ]
    found += [
        Unsent(alert.event_id, alert.level, NOT_DELIVERED, alert.created_at, alert)
        for alert in _undelivered(store, tuple(ALERTING.values()))
    ]
    return sorted(found, key=lambda item: (item.level != "CRITICAL", item.at, item.event_id))


def unsent_critical(store: HotStore) -> list[AlertInfo]:
    """CRITICAL alerts nobody has acknowledged that no channel has delivered (page, escalation or by hand)."""
    return _undelivered(store, ("CRITICAL",))


def _undelivered(store: HotStore, levels: tuple[str, ...]) -> list[AlertInfo]:
    """Alerts of `levels` nobody has acknowledged that no channel has delivered (page, escalation or by hand)."""
    query = sa.select(alerts.c.alert_id).where(
        alerts.c.level.in_(levels) & alerts.c.status.in_(("open", "escalated")) & alerts.c.injected.is_(False)
    )
    with store.engine.connect() as conn:
        ids = list(conn.execute(query.order_by(alerts.c.created_at)).scalars())
        sent = set(
            conn.execute(
                sa.select(deliveries.c.alert_id).where(
                    deliveries.c.alert_id.in_(ids)
                    & (deliveries.c.status == DELIVERED)
                    & sa.or_(*(deliveries.c.action.startswith(prefix) for prefix in PAGING_PREFIXES))
                )
            ).scalars()
        )
    return [alert for alert_id in ids if alert_id not in sent and (alert := load_alert(store, alert_id))]


def send_by_hand(
    store: HotStore, config: NightwatchConfig, actor: str, alert_id: str, note: str = "", clock: Clock = utcnow
) -> list[dict[str, Any]]:
    """Runbook step 4, "manually send alert": every channel of the alert's level, now, whatever the budget or a
    maintenance window (Operator and above; audited). An injected test alert is refused: it never pages anyone."""
    accounts.acting(store, actor, "send_alerts")
    alert = load_alert(store, alert_id)
    if alert is None:
        raise ValueError(f"no alert {alert_id!r}")
    if alert.injected:
        raise ValueError(f"{alert_id} is an injected test alert: injected events never page anyone")
    settings = config.notifications
    names = settings.policy(alert.level).channels
    channels = [name for name in names if settings.channels[name].destination()]
    if not channels:
        missing = "; ".join(f"{name}: {settings.channels[name].missing()}" for name in names)
        raise ValueError(f"no channel for {alert.level} has a destination ({missing or 'none configured'})")
    notifier = Notifier(store, config, clock=clock)
    try:
        now = clock()
        notice = alert_notice(
            alert,
            f"manual-{now:%Y%m%dT%H%M%S}",
            settings.portal_url,
            summary=f"{alert.title} (sent by hand by {actor})",
        )
        results = [notifier.deliver(notice, name, night=alert.night) for name in channels]
    finally:
        notifier.close()
    outcome = {row["channel"]: row["status"] for row in results}
    audit.record(store, actor, "alert.send", alert_id, None, outcome, note or "sent by hand: Critical Alert Not Sent")
    return results
