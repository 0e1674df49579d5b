"""The `Notifier`: ties the policy, the outbox, the channels and the digests together for one process (or Beam
worker); and the portal's hook that sends an acknowledge or resolve to the pager."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from config.settings import NightwatchConfig, load_config
from core.event import utcnow
from ops.notify.alerts import AlertInfo, alert_notice, load_alert
from ops.notify.channels import Sender
from ops.notify.digests import Digests
from ops.notify.notice import Clock, Notice
from ops.notify.outbox import Outbox, mark_notified, pending_alerts
from ops.notify.policy import Policy
from store.configs import LiveConfig, in_force
from store.hot import HotStore

log = logging.getLogger("nightwatch.notify")


class Notifier:
    """Decides, records and sends. One per process (or Beam worker); `clock` is replaceable for tests."""

    def __init__(
        self, store: HotStore, config: NightwatchConfig, timeout_s: float | None = None, clock: Clock = utcnow
    ):
        self.store = store
        self.config = config
        self.settings = config.notifications
        self.timeout_s = timeout_s or self.settings.timeout_s
        self.sender = Sender(self.settings.channels, self.timeout_s)
        self.clock = clock
        self.policy = Policy(store, self.settings, clock)
        self.outbox = Outbox(store, self.sender, self.settings.retry, self.timeout_s, clock)
        self.digests = Digests(
            store, self.outbox, self.settings.digest, config.sources.site.timezone, self.settings.portal_url, clock
        )

    def close(self) -> None:
        self.sender.close()

    def notify_alert(self, alert_id: str) -> list[dict[str, Any]]:
        """The first notification of a newly stored alert, on every channel of its level. Idempotent."""
        alert = load_alert(self.store, alert_id)
        if alert is None:
            return []
        channels = self.policy.channels(alert)
        # A channel with no destination (its variables unset) sends nothing; `notify status` says so and
        # `alerts check` lists a critical alert that reached nobody. Nothing to send: no more queries.
        reachable = self.policy.reachable(alert)
        if not reachable and not alert.injected:
            return []
        hold = self.policy.hold(alert)
        notice = alert_notice(alert, "trigger", self.settings.portal_url)
        if hold is None:
            channels = reachable
        return [self.outbox.deliver(notice, name, night=alert.night, hold=hold) for name in channels]

    def notify_stored(self, alert_id: str) -> list[dict[str, Any]]:
        """`notify_alert`, then the alert's outbox row is done. A crash before the end leaves it pending, and the
        next pass sends what was not sent (the `deliveries` claim keeps what was sent from going twice)."""
        results = self.notify_alert(alert_id)
        mark_notified(self.store, alert_id, self.clock())
        return results

    def notify_pending(self, limit: int = 200) -> list[dict[str, Any]]:
        """Every alert stored but not yet notified (after a crash, or by a worker that died): notified now."""
        results: list[dict[str, Any]] = []
        for alert_id in pending_alerts(self.store, limit):
            try:
                results += self.notify_stored(alert_id)
            except Exception:  # noqa: BLE001 - one alert's failure must not hold the others; it stays pending
                log.exception("could not notify pending alert %s", alert_id)
        return results

    def follow_up(self, alert_id: str, action: str) -> list[dict[str, Any]]:
        """Acknowledge or resolve the pages sent for an alert (PagerDuty: same dedup_key).

        A page still waiting for a retry is not sent after the acknowledgement: it would open the incident again.
        """
        alert = load_alert(self.store, alert_id)
        if alert is None or action not in ("acknowledge", "resolve"):
            return []
        paged = [kind for kind in self.settings.channels if self.settings.channels[kind].kind == "pagerduty"]
        reached = self.outbox.withdraw_pages(alert_id, action, paged)
        notice = alert_notice(alert, action, self.settings.portal_url, summary=f"{action}d in the alert portal")
        return [self.outbox.deliver(notice, channel, night=alert.night) for channel in reached]

    # --- the parts, under the names the callers use -------------------------------------------------------

    def hold(self, alert: AlertInfo) -> tuple[str, str] | None:
        return self.policy.hold(alert)

    def sent_in_night(self, night: str | None) -> int:
        return self.policy.sent_in_night(night)

    def deliver(
        self, notice: Notice, channel: str, night: str | None = None, hold: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        return self.outbox.deliver(notice, channel, night=night, hold=hold)

    def broadcast(self, notice: Notice, channels: list[str], night: str | None = None) -> list[dict[str, Any]]:
        return self.outbox.broadcast(notice, channels, night=night)

    def backoff(self, attempt: int) -> timedelta:
        return self.outbox.backoff(attempt)

    def send_due(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.outbox.send_due(limit)

    def last_digest_at(self, prefix: str = "digest:") -> datetime | None:
        return self.digests.last_digest_at(prefix)

    def pending_digest(self) -> dict[str, Any]:
        return self.digests.pending_digest()

    def send_digest(self) -> tuple[Notice | None, list[dict[str, Any]]]:
        return self.digests.send_digest()

    def send_low_digest(self) -> tuple[Notice | None, list[dict[str, Any]]]:
        return self.digests.send_low_digest()

    def digests_due(self) -> list[dict[str, Any]]:
        return self.digests.digests_due()


class NotifierInForce:
    """A `Notifier` built from the configuration in force (store/configs.py), rebuilt when its version changes:
    a channel, level or budget changed in the console or the CLI takes effect within `refresh_s`, no restart."""

    def __init__(
        self,
        store: HotStore,
        base: NightwatchConfig,
        timeout_s: float | None = None,
        clock: Clock = utcnow,
        pipeline: bool = False,
    ):
        self.store = store
        self._live = LiveConfig(base, store.url, base.streaming.thresholds.refresh_s)
        self._timeout_s = timeout_s
        self._clock = clock
        self._pipeline = pipeline  # the pipeline's short timeout, from the configuration in force
        self._notifier: Notifier | None = None

    def get(self) -> Notifier:
        config = self._live.get()
        if self._notifier is None or self._notifier.config.config_version != config.config_version:
            if self._notifier is not None:
                self._notifier.close()
            timeout = config.notifications.pipeline_timeout_s if self._pipeline else self._timeout_s
            self._notifier = Notifier(self.store, config, timeout_s=timeout, clock=self._clock)
        return self._notifier

    def close(self) -> None:
        if self._notifier is not None:
            self._notifier.close()
        self._live.close()


def alert_action_hook(store: HotStore, alert_id: str, action: str, config: NightwatchConfig | None = None) -> None:
    """Called by `responses.alert_action` after it commits: an acknowledge or resolve in the alert portal is sent to
    PagerDuty for the same dedup_key. Never raises: the portal action stands whatever the pager says, and a failed
    send is a `retrying` delivery. Without `config`, the configuration is read now ($NIGHTWATCH_CONFIG_DIR)."""
    if action not in ("acknowledge", "resolve"):
        return
    try:
        config = config or in_force(load_config(), store)
        notifier = Notifier(store, config, timeout_s=config.notifications.pipeline_timeout_s)
        try:
            notifier.follow_up(alert_id, action)
        finally:
            notifier.close()
    except Exception:  # noqa: BLE001
        log.exception("could not send the %s of %s to the pager", action, alert_id)


def new_alert_hook(store: HotStore, alert_id: str, config: NightwatchConfig | None = None) -> None:
    """Called after a person raises an event to an alert (a review-queue promotion): the alert is notified as
    a newly stored one would be. Never raises: the decision stands; a failed send is a `retrying` delivery."""
    try:
        config = config or in_force(load_config(), store)
        notifier = Notifier(store, config, timeout_s=config.notifications.pipeline_timeout_s)
        try:
            notifier.notify_alert(alert_id)
        finally:
            notifier.close()
    except Exception:  # noqa: BLE001
        log.exception("could not notify the promoted alert %s", alert_id)
