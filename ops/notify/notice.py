"""What is sent: a `Notice` (channel-neutral, no secrets), stored with its delivery and rendered at send time; the
delivery statuses; the notice of a maintenance window."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ops.maintenance import Window

DELIVERED, FAILED, RETRYING, SUPPRESSED, THROTTLED = "delivered", "failed", "retrying", "suppressed", "throttled"
# PagerDuty's severities for our levels.
SEVERITY = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning", "LOW": "info"}
# Actions that open a page (PagerDuty trigger): the first notice, an escalation step, a send by hand.
PAGING_PREFIXES = ("trigger", "escalate-", "manual-")
# Statuses that mean something may have reached the receiver, so an acknowledge/resolve should follow.
REACHED = (DELIVERED, RETRYING, FAILED)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Notice:
    """What a channel is asked to say; stored with the delivery (no secrets) and rendered at send time."""

    key: str  # the alert id (or digest:..., maintenance:...): the deliveries row's alert_id
    action: str  # trigger | acknowledge | resolve | escalate-N | manual-... | digest | announce | cancel
    title: str
    summary: str  # one line
    dedup_key: str
    timestamp: str  # ISO 8601, UTC
    level: str | None = None
    source: str = "nightwatch"
    details: dict[str, Any] = field(default_factory=dict)
    recipient: str | None = None  # a person's e-mail address or Slack handle (escalations)
    link: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Notice:
        return cls(**json.loads(text))

    @property
    def pages(self) -> bool:
        return is_page(self.action)


def is_page(action: str) -> bool:
    return action.startswith(PAGING_PREFIXES)


def announcement_notice(window: Window, title: str, action: str = "announce") -> Notice:
    """The announcement (or cancellation) of a window, for the maintenance channels."""
    verb = "cancelled" if action == "cancel" else "scheduled"
    return Notice(
        key=f"maintenance:{window.window_id}",
        action=action,
        title=f"Maintenance {verb}: {title} {window.starts_at:%a %d %b %H:%M}-{window.ends_at:%H:%M} UTC",
        summary=f"{title} {verb} from {window.starts_at:%Y-%m-%d %H:%M} to {window.ends_at:%Y-%m-%d %H:%M} UTC: "
        f"{window.reason}"
        + (". Non-critical pages are silenced meanwhile; CRITICAL alerts still page." if window.silence else "."),
        dedup_key=f"maintenance:{window.window_id}",
        timestamp=window.announced_at.isoformat(),
        details={key: str(value) for key, value in asdict(window).items()},
    )
