"""Notifications: alerts out to PagerDuty, Slack, webhooks and e-mail, with retries, a nightly budget and digests.

What is sent is a `Notice` (channel-neutral, no secrets), rendered per channel at send time: PagerDuty Events API v2,
Slack (text + blocks), a JSON webhook, or an e-mail. Every delivery is a `deliveries` row, written *before* the
first attempt: its unique key (alert, channel, action, level) is the claim that makes a redelivered alert send once,
and a crash mid-send leaves a `retrying` row that `nightwatch notify run` picks up. Failed attempts are retried with
exponential backoff until `retry.max_attempts`, then the row is `failed` (`nightwatch notify status`).

Policy for a new alert (`Notifier.notify_alert`): see `policy` (injected never pages; CRITICAL and HIGH are never
held; MEDIUM and LOW are silenced by maintenance and digested beyond the nightly budget).

Nothing here raises to its caller on a channel failure: a failure is a recorded delivery, never a lost alert.

One job per module: `notice` (the Notice, statuses), `channels` (rendering per channel, the Sender), `alerts` (the
alert a notice is about), `policy` (which channels, maintenance silencing, the budget), `outbox` (the
`deliveries` rows: claim, attempts, retries), `digests`, `notifier` (the Notifier that ties them, the portal's
acknowledge hook) and `runbook` (Critical Alert Not Sent: `unsent_alerts`, `send_by_hand`).
"""

from ops.notify.alerts import AlertInfo, acknowledged, alert_notice, load_alert
from ops.notify.channels import Outcome, Sender, email_message, pagerduty_body, slack_body, webhook_body
from ops.notify.digests import Digests
from ops.notify.notice import (
    DELIVERED,
    FAILED,
    PAGING_PREFIXES,
    REACHED,
    RETRYING,
    SEVERITY,
    SUPPRESSED,
    THROTTLED,
    Clock,
    Notice,
    announcement_notice,
    is_page,
)
from ops.notify.notifier import Notifier, NotifierInForce, alert_action_hook
from ops.notify.outbox import Outbox, deliveries_for, delivery_key, insert_once
from ops.notify.policy import Policy
from ops.notify.runbook import Unsent, send_by_hand, unsent_alerts, unsent_critical

__all__ = [
    "DELIVERED",
    "FAILED",
    "PAGING_PREFIXES",
    "REACHED",
    "RETRYING",
    "SEVERITY",
    "SUPPRESSED",
    "THROTTLED",
    "AlertInfo",
    "Clock",
    "Digests",
    "Notice",
    "Notifier",
    "NotifierInForce",
    "Outbox",
    "Outcome",
    "Policy",
    "Sender",
    "acknowledged",
    "alert_action_hook",
    "alert_notice",
    "announcement_notice",
    "deliveries_for",
    "delivery_key",
    "email_message",
    "insert_once",
    "is_page",
    "load_alert",
    "pagerduty_body",
    "send_by_hand",
    "slack_body",
    "Unsent",
    "unsent_alerts",
    "unsent_critical",
    "webhook_body",
]
