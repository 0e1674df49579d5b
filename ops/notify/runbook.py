"""The "Critical Alert Not Sent" runbook: find the CRITICAL alerts no channel delivered (`nightwatch alerts
check`), and send one by hand (`nightwatch alerts send`, step 4)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from access import accounts, audit
from config.settings import NightwatchConfig
from core.event import utcnow
from ops.notify.alerts import AlertInfo, alert_notice, load_alert
from ops.notify.notice import DELIVERED, PAGING_PREFIXES, Clock
from ops.notify.notifier import Notifier
from store.hot import HotStore
from store.schema import alerts, deliveries


def unsent_critical(store: HotStore) -> list[AlertInfo]:
    """CRITICAL alerts nobody has acknowledged that no channel has delivered (page, escalation or by hand)."""
    query = sa.select(alerts.c.alert_id).where(
        (alerts.c.level == "CRITICAL") & alerts.c.status.in_(("open", "escalated")) & alerts.c.injected.is_(False)
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
