"""An incident's pages: the opening page on the configured channels, the escalation ladder of oncall.yaml (the
same ladder CRITICAL alerts climb) until someone acknowledges, and the acknowledge/resolve that follows the page.

A ladder step is an `escalations` row keyed "incident:<id>" (the row is the claim: two watchers page once), each
notice a `deliveries` row with the same key, so `nightwatch notify status` and the outbox's retries cover them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from config.settings import NightwatchConfig
from ops.incidents.records import Incident
from ops.notify import FAILED, Notice, Notifier
from ops.oncall import OnCall, claim_step, mark_failed, on_call


def incident_notice(
    incident: Incident, config: NightwatchConfig, action: str, summary: str, recipient: str | None = None
) -> Notice:
    """What a channel is told about an incident (no secrets, nothing beyond what the on-call needs)."""
    portal = config.notifications.portal_url
    return Notice(
        key=incident.key,
        action=action,
        title=f"{incident.name} {incident.severity}: {incident.title}",
        summary=summary,
        dedup_key=f"nightwatch-{incident.key.replace(':', '-')}",
        timestamp=incident.opened_at.isoformat(),
        level=config.incidents.page_level.get(incident.severity, "CRITICAL"),  # type: ignore[arg-type]
        source="nightwatch/health",
        details={
            "incident": incident.name,
            "severity": incident.severity,
            "status": incident.status,
            "reason": incident.reason,
            "procedure": incident.procedure,
            "opened_at": incident.opened_at.isoformat(),
        },
        recipient=recipient,
        link=f"{portal.rstrip('/')}/?page=Incidents&incident={incident.incident_id}" if portal else None,
    )


def opening_channels(config: NightwatchConfig) -> list[str]:
    """The configured opening channels that have a destination (an unset webhook URL or key sends nothing)."""
    channels = config.notifications.channels
    return [name for name in config.incidents.channels if name in channels and channels[name].destination()]


def page_opening(notifier: Notifier, config: NightwatchConfig, incident: Incident) -> list[dict[str, Any]]:
    summary = (
        f"{incident.severity} opened: {incident.reason}. Acknowledge: nightwatch incidents ack {incident.incident_id}"
    )
    notice = incident_notice(incident, config, "trigger", summary)
    return [notifier.deliver(notice, channel) for channel in opening_channels(config)]


def follow_up(notifier: Notifier, config: NightwatchConfig, incident: Incident, action: str, why: str) -> None:
    """An acknowledge or resolve on the channels the incident was paged on (PagerDuty: the same dedup_key)."""
    channels = set(opening_channels(config)) | {page["channel"] for page in incident.pages if page["status"] == "paged"}
    notice = incident_notice(incident, config, action, f"{incident.name} {action}d: {why}")
    for channel in sorted(channel for channel in channels if channel):
        notifier.deliver(notice, channel)


def due_steps(config: NightwatchConfig, incident: Incident, now: datetime) -> list[int]:
    """The ladder's steps the incident's age has reached that were not taken yet (none once acknowledged)."""
    if incident.status != "open":
        return []
    taken = {page["step"] for page in incident.pages}
    age = now - incident.opened_at
    return [
        index
        for index, step in enumerate(config.oncall.escalation.steps)
        if age >= timedelta(minutes=step.after_min) and index not in taken
    ]


def take_step(
    notifier: Notifier, config: NightwatchConfig, incident: Incident, index: int, now: datetime
) -> dict[str, Any] | None:
    """Page the person holding the step's role now (or record the step skipped when nobody covers the role at
    this hour: the ladder goes on). Returns the step's row, or None when another watcher took it."""
    step = config.oncall.escalation.steps[index]
    who: OnCall = on_call(config.oncall, now)[step.role]
    row = claim_step(notifier.store, incident.key, index, step, who, now)
    if row is None:
        return None
    if who.covered:
        minutes = (now - incident.opened_at).total_seconds() / 60
        summary = (
            f"{step.note or who.title}: {incident.name} {incident.severity} unacknowledged for {minutes:.0f} min "
            f"({incident.reason}). {who.person.name}, please respond: nightwatch incidents ack {incident.incident_id}"
        )
        notice = incident_notice(incident, config, f"escalate-{index}", summary, recipient=who.person.to)
        delivery = notifier.deliver(notice, who.person.channel)
        if delivery["status"] == FAILED:
            mark_failed(notifier.store, row, delivery.get("error"))
    return row
