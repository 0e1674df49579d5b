"""The policy for a new alert: on which channels it goes, and whether it is held back, in this order:

1. an injected event (the injection test) never pages anyone: every channel is recorded `suppressed`;
2. CRITICAL and HIGH are always sent at once: never throttled, never silenced. Their response times (15 min,
   1 hour) are shorter than a digest's period or a maintenance window, so any hold would be past them; the guide's
   "<50 alerts a night" is a normal range to watch (the alert-volume panel), not a cap on them;
3. during an active maintenance window that silences, MEDIUM and LOW are recorded `suppressed`;
4. beyond the nightly budget (`budget_per_night`, the alert's observing night), MEDIUM and LOW (the levels that
   throttle) are recorded `throttled` and go out in the next digest (`nightwatch notify digest`).
"""

from __future__ import annotations

import sqlalchemy as sa

from config.notifications import NEVER_HELD
from config.settings import NotificationsConfig
from ops.maintenance import active_window
from ops.notify.alerts import AlertInfo
from ops.notify.notice import REACHED, SUPPRESSED, THROTTLED, Clock
from store.hot import HotStore
from store.schema import deliveries


class Policy:
    """The channels of an alert's level, and the hold (suppressed, throttled) that keeps it from them."""

    def __init__(self, store: HotStore, settings: NotificationsConfig, clock: Clock):
        self.store = store
        self.settings = settings
        self.clock = clock

    def channels(self, alert: AlertInfo) -> list[str]:
        """The channels of the alert's level."""
        return self.settings.policy(alert.level).channels

    def reachable(self, alert: AlertInfo) -> list[str]:
        """The alert's channels that have a destination (a channel whose variables are unset sends nothing)."""
        return [name for name in self.channels(alert) if self.settings.channels[name].destination()]

    def hold(self, alert: AlertInfo) -> tuple[str, str] | None:
        """Why this alert is not sent now (status, reason), or None to send it."""
        if alert.injected:
            return SUPPRESSED, "injected event: the injection test never pages anyone"
        if alert.level in NEVER_HELD:
            return None
        window = active_window(self.store, self.clock())
        if window is not None and window.silence:
            return (
                SUPPRESSED,
                f"maintenance window #{window.window_id} ({window.kind}) until {window.ends_at:%H:%M} UTC",
            )
        budget = self.settings.budget_per_night
        if self.settings.policy(alert.level).throttle and self.sent_in_night(alert.night) >= budget:
            return THROTTLED, f"over the nightly budget of {budget} alerts (night {alert.night}): in the next digest"
        return None

    def sent_in_night(self, night: str | None) -> int:
        """Alerts of an observing night that were notified at once (not throttled, not suppressed)."""
        query = sa.select(sa.func.count(sa.distinct(deliveries.c.alert_id))).where(
            (deliveries.c.night == night) & (deliveries.c.action == "trigger") & deliveries.c.status.in_(REACHED)
        )
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
