"""Notifications: alerts out to PagerDuty, Slack, webhooks and e-mail, with retries, a nightly budget and digests.

What is sent is a `Notice` (channel-neutral, no secrets), rendered per channel at send time: PagerDuty Events API v2,
Slack (text + blocks), a JSON webhook, or an e-mail. Every delivery is a `deliveries` row, written *before* the
first attempt: its unique key (alert, channel, action, level) is the claim that makes a redelivered alert send once,
and a crash mid-send leaves a `retrying` row that `nightwatch notify run` picks up. Failed attempts are retried with
exponential backoff until `retry.max_attempts`, then the row is `failed` (`nightwatch notify status`).

Policy for a new alert (`Notifier.notify_alert`), in this order:
1. an injected event (the injection test) never pages anyone: every channel is recorded `suppressed`;
2. CRITICAL is always sent: never throttled, never silenced;
3. during an active maintenance window that silences, other levels are recorded `suppressed`;
4. beyond the nightly budget (`budget_per_night`, the alert's observing night), levels that throttle are recorded
   `throttled` and go out in the next digest (`nightwatch notify digest`).

Nothing here raises to its caller on a channel failure: a failure is a recorded delivery, never a lost alert.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

from config.settings import ChannelSpec, NightwatchConfig
from core.event import as_utc, utcnow
from ops.maintenance import Window, active_window
from store.hot import HotStore
from store.schema import alert_actions, alerts, deliveries, events, review_queue

log = logging.getLogger("nightwatch.notify")

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


# --- rendering: one function per channel kind --------------------------------------------------------------


def pagerduty_body(notice: Notice, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event. The dedup_key is the alert's, so acknowledge/resolve find the incident."""
    event_action = notice.action if notice.action in ("acknowledge", "resolve") else "trigger"
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": event_action, "dedup_key": notice.dedup_key}
    if event_action == "trigger":
        body["payload"] = {
            "summary": notice.summary[:1024],  # PagerDuty's limit
            "source": notice.source,
            "severity": SEVERITY.get(notice.level or "", "info"),
            "timestamp": notice.timestamp,
            "custom_details": notice.details,
        }
        if notice.link:
            body["links"] = [{"href": notice.link, "text": "Alert portal"}]
    return body


def slack_body(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the notification's fallback) and Block Kit `blocks`."""
    mention = f"{notice.recipient} " if notice.recipient else ""
    fields = [
        {"type": "mrkdwn", "text": f"*{name}*\n{_short(value)}"}
        for name, value in notice.details.items()
        if value not in (None, "", [], {})
    ][:10]  # Slack allows ten fields in a section
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{mention}{notice.summary}"[:3000]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    context = f"{notice.action} · {notice.dedup_key} · {notice.timestamp}"
    if notice.link:
        context += f" · <{notice.link}|alert portal>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"{mention}{notice.title}: {notice.summary}"[:3000], "blocks": blocks}


def webhook_body(notice: Notice) -> dict[str, Any]:
    """The generic webhook: the notice itself, with the alert id under its usual name."""
    body = asdict(notice)
    body["alert_id"] = body.pop("key")
    return body


def email_message(notice: Notice, sender: str, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[Nightwatch {notice.level or notice.action}] {notice.title}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    lines = [notice.summary, ""]
    lines += [f"{name}: {_short(value, 500)}" for name, value in notice.details.items() if value not in (None, "")]
    lines += ["", f"{notice.action} · {notice.dedup_key} · {notice.timestamp}"]
    if notice.link:
        lines.append(notice.link)
    message.set_content("\n".join(lines))
    return message


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- sending ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    code: int | None = None
    error: str | None = None
    permanent: bool = False  # retrying cannot help (a 4xx such as a wrong routing key)


class Sender:
    """Sends notices on the configured channels. One pooled HTTP session; never raises."""

    def __init__(self, channels: dict[str, ChannelSpec], timeout_s: float):
        self.channels = channels
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def send(self, channel: str, notice: Notice) -> Outcome:
        spec = self.channels.get(channel)
        if spec is None:
            return Outcome(False, error=f"unknown channel {channel!r}", permanent=True)
        destination = spec.destination()
        if destination is None:
            return Outcome(False, error=f"channel {channel} has no destination ({spec.missing()})", permanent=True)
        try:
            if spec.kind == "email":
                return self._email(spec, destination, notice)
            if spec.kind == "pagerduty":
                if not notice.pages and notice.action not in ("acknowledge", "resolve"):
                    return Outcome(False, error=f"PagerDuty takes pages, not a {notice.action}", permanent=True)
                body = pagerduty_body(notice, spec.env(spec.routing_key_env) or "")
            elif spec.kind == "slack":
                body = slack_body(notice)
            else:
                body = webhook_body(notice)
            return self._post(destination, body)
        except Exception as exc:  # noqa: BLE001 - any failure is a recorded, retried delivery
            return Outcome(False, error=_redact(f"{type(exc).__name__}: {exc}", spec)[:500])

    def _post(self, url: str, body: dict[str, Any]) -> Outcome:
        spec_secrets = [url]
        try:
            response = self.session.post(url, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            return Outcome(False, error=_scrub(f"{type(exc).__name__}: {exc}", spec_secrets)[:500])
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code)
        # 408 and 429 (PagerDuty's rate limit) and 5xx may pass later; any other 4xx will not.
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        text = _scrub(response.text.strip(), spec_secrets)[:300]
        return Outcome(False, response.status_code, f"HTTP {response.status_code}: {text}", permanent)

    def _email(self, spec: ChannelSpec, host: str, notice: Notice) -> Outcome:
        recipients = [notice.recipient] if notice.recipient and "@" in notice.recipient else list(spec.to)
        if not recipients:
            return Outcome(False, error="no e-mail recipients", permanent=True)
        message = email_message(notice, spec.sender, recipients)
        with smtplib.SMTP(host, spec.port, timeout=self.timeout_s) as smtp:
            smtp.ehlo()
            if spec.starttls:
                # Required when configured: a password or an alert is never sent in the clear by accident.
                if not smtp.has_extn("starttls"):
                    return Outcome(False, error=f"SMTP server {host}:{spec.port} does not offer STARTTLS")
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            user = spec.env(spec.username_env)
            if user:
                smtp.login(user, spec.env(spec.password_env) or "")
            refused = smtp.send_message(message)
        if refused:
            return Outcome(False, error=f"recipients refused: {sorted(refused)}", permanent=True)
        return Outcome(True, 250)


def _secrets(spec: ChannelSpec) -> list[str]:
    return [value for name in (spec.url_env, spec.routing_key_env, spec.password_env) if (value := spec.env(name))]


def _scrub(text: str, secrets: list[str]) -> str:
    """Errors are stored and shown: take out webhook URLs (and their paths, which hold the token) and keys."""
    for secret in secrets:
        parts = urlsplit(secret)
        for piece in (secret, parts.path if len(parts.path) > 1 else "", parts.query):
            if piece:
                text = text.replace(piece, "***")
    return text


def _redact(text: str, spec: ChannelSpec) -> str:
    return _scrub(text, _secrets(spec))


# --- the store side: alerts, deliveries ---------------------------------------------------------------------


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


def delivery_key(notice: Notice, channel: str) -> str:
    return "|".join((notice.key, channel, notice.action, notice.level or ""))


def insert_once(store: HotStore, table: sa.Table, row: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on `keys`; True if this call inserted the row (the claim)."""
    dialect = store.engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values(**row).on_conflict_do_nothing(index_elements=keys)
    with store.engine.begin() as conn:
        return conn.execute(statement).rowcount == 1


def _row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for name in ("created_at", "updated_at", "next_attempt_at"):
        if data.get(name) is not None:
            data[name] = as_utc(data[name])
    data["history"] = json.loads(data["history"])
    return data


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

    def close(self) -> None:
        self.sender.close()

    # --- new alerts -------------------------------------------------------------------------------------

    def notify_alert(self, alert_id: str) -> list[dict[str, Any]]:
        """The first notification of a newly stored alert, on every channel of its level. Idempotent."""
        alert = load_alert(self.store, alert_id)
        if alert is None:
            return []
        channels = self.settings.policy(alert.level).channels
        # A channel with no destination (its variables unset) sends nothing; `notify status` says so and
        # `alerts check` lists a critical alert that reached nobody. Nothing to send: no more queries.
        reachable = [name for name in channels if self.settings.channels[name].destination()]
        if not reachable and not alert.injected:
            return []
        hold = self.hold(alert)
        notice = alert_notice(alert, "trigger", self.settings.portal_url)
        if hold is None:
            channels = reachable
        return [self.deliver(notice, name, night=alert.night, hold=hold) for name in channels]

    def hold(self, alert: AlertInfo) -> tuple[str, str] | None:
        """Why this alert is not sent now (status, reason), or None to send it."""

        if alert.injected:
            return SUPPRESSED, "injected event: the injection test never pages anyone"
        if alert.level == "CRITICAL":
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

    # --- one delivery -----------------------------------------------------------------------------------

    def deliver(
        self, notice: Notice, channel: str, night: str | None = None, hold: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Record a delivery and make its first attempt (none if held: suppressed or throttled).

        The row is written first, as `retrying` with a lease, so a crash mid-send is retried by `notify run` and a
        second worker handling the same alert finds the row and sends nothing.
        """
        now = self.clock()
        key = delivery_key(notice, channel)
        status, reason = hold if hold else (RETRYING, None)
        row = {
            "delivery_key": key,
            "alert_id": notice.key,
            "channel": channel,
            "action": notice.action,
            "level": notice.level,
            "night": night,
            "recipient": notice.recipient,
            "status": status,
            "attempt": 0,
            "error": reason,
            "next_attempt_at": None if hold else now + self._lease(),
            "notice": notice.to_json(),
            "history": "[]",
            "created_at": now,
            "updated_at": now,
        }
        if insert_once(self.store, deliveries, row, ["delivery_key"]) and not hold:
            return self._attempt(self._get(key))
        return self._get(key)

    def _lease(self) -> timedelta:
        # Long enough for one attempt to finish: nobody else picks the row up meanwhile.
        return timedelta(seconds=self.timeout_s + 60)

    def backoff(self, attempt: int) -> timedelta:
        retry = self.settings.retry
        return timedelta(seconds=min(retry.backoff_s * 2 ** (attempt - 1), retry.max_backoff_s))

    def _get(self, key: str) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            return _row(conn.execute(sa.select(deliveries).where(deliveries.c.delivery_key == key)).one())

    def _attempt(self, row: dict[str, Any]) -> dict[str, Any]:
        notice = Notice.from_json(row["notice"])
        outcome = self.sender.send(row["channel"], notice)
        now = self.clock()
        attempt = row["attempt"] + 1
        if outcome.ok:
            status, next_at = DELIVERED, None
        elif outcome.permanent or attempt >= self.settings.retry.max_attempts:
            status, next_at = FAILED, None
        else:
            status, next_at = RETRYING, now + self.backoff(attempt)
        history = [*row["history"], {"attempt": attempt, "at": now.isoformat(), "status": status}]
        history[-1] |= {"code": outcome.code, "error": outcome.error}
        values = {
            "status": status,
            "attempt": attempt,
            "response_code": outcome.code,
            "error": outcome.error,
            "next_attempt_at": next_at,
            "history": json.dumps(history),
            "updated_at": now,
        }
        with self.store.engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.delivery_id == row["delivery_id"]).values(**values))
        if status != DELIVERED:
            log.warning("%s on %s: %s (%s)", notice.key, row["channel"], status, outcome.error)
        return {**row, **values, "history": history}

    def broadcast(self, notice: Notice, channels: list[str], night: str | None = None) -> list[dict[str, Any]]:
        """Send a notice on every channel that has a destination (announcements, digests)."""
        return [
            self.deliver(notice, name, night=night)
            for name in channels
            if self.settings.channels[name].destination() is not None
        ]

    # --- retries ----------------------------------------------------------------------------------------

    def send_due(self, limit: int = 200) -> list[dict[str, Any]]:
        """Make the next attempt of every delivery whose backoff has passed (and of any left mid-send)."""
        now = self.clock()
        query = (
            sa.select(deliveries)
            .where((deliveries.c.status == RETRYING) & (deliveries.c.next_attempt_at <= now))
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            due = [_row(row) for row in conn.execute(query)]
        done = []
        for row in due:
            # Claim the attempt: only one runner moves the lease forward from this exact state.
            claim = (
                deliveries.update()
                .where(
                    (deliveries.c.delivery_id == row["delivery_id"])
                    & (deliveries.c.status == RETRYING)
                    & (deliveries.c.attempt == row["attempt"])
                    & (deliveries.c.next_attempt_at <= now)
                )
                .values(next_attempt_at=now + self._lease())
            )
            with self.store.engine.begin() as conn:
                if conn.execute(claim).rowcount != 1:
                    continue
            done.append(self._attempt(row))
        return done

    # --- acknowledge / resolve from the alert portal ----------------------------------------------------

    def follow_up(self, alert_id: str, action: str) -> list[dict[str, Any]]:
        """Acknowledge or resolve the pages sent for an alert (PagerDuty: same dedup_key).

        A page still waiting for a retry is not sent after the acknowledgement: it would open the incident again.
        """
        alert = load_alert(self.store, alert_id)
        if alert is None or action not in ("acknowledge", "resolve"):
            return []
        paged = [kind for kind in self.settings.channels if self.settings.channels[kind].kind == "pagerduty"]
        with self.store.engine.begin() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.channel, deliveries.c.action, deliveries.c.status).where(
                    (deliveries.c.alert_id == alert_id) & deliveries.c.channel.in_(paged)
                )
            ).all()
            conn.execute(
                deliveries.update()
                .where(
                    (deliveries.c.alert_id == alert_id)
                    & (deliveries.c.status == RETRYING)
                    & sa.or_(*(deliveries.c.action.startswith(prefix) for prefix in PAGING_PREFIXES))
                )
                .values(status=SUPPRESSED, error=f"alert {action}d before this page went out", next_attempt_at=None)
            )
        reached = sorted({row.channel for row in rows if is_page(row.action) and row.status in REACHED})
        notice = alert_notice(alert, action, self.settings.portal_url, summary=f"{action}d in the alert portal")
        return [self.deliver(notice, channel, night=alert.night) for channel in reached]

    # --- digests ----------------------------------------------------------------------------------------

    def last_digest_at(self, prefix: str = "digest:") -> datetime | None:
        query = sa.select(sa.func.max(deliveries.c.created_at)).where(deliveries.c.alert_id.startswith(prefix))
        with self.store.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return as_utc(value) if value else None

    def pending_digest(self) -> dict[str, Any]:
        """What the next digest would carry: throttled alerts not yet in a digest, and new MEDIUM review items."""
        since = self.last_digest_at() or (self.clock() - timedelta(days=1))
        with self.store.engine.connect() as conn:
            throttled = conn.execute(
                sa.select(deliveries.c.alert_id, alerts.c.title)
                .join(alerts, alerts.c.alert_id == deliveries.c.alert_id)
                .where((deliveries.c.status == THROTTLED) & deliveries.c.digest_id.is_(None))
                .distinct()
                .order_by(deliveries.c.alert_id)
            ).all()
            review = conn.execute(
                sa.select(review_queue.c.event_id)
                .where(
                    (review_queue.c.created_at > since)
                    & (review_queue.c.status == "pending")
                    & review_queue.c.injected.is_(False)
                )
                .order_by(review_queue.c.score.desc())
            ).scalars()
            review = list(review)
        return {"alerts": [(row.alert_id, row.title) for row in throttled], "review": review, "since": since}

    def send_digest(self) -> tuple[Notice | None, list[dict[str, Any]]]:
        """Send the pending digest now (over-budget alerts, new review-queue items); (None, []) if nothing is due."""
        pending = self.pending_digest()
        if not pending["alerts"] and not pending["review"]:
            return None, []
        now = self.clock()
        digest_id = f"digest:{now:%Y%m%dT%H%M%S}Z"
        n_alerts, n_review = len(pending["alerts"]), len(pending["review"])
        notice = Notice(
            key=digest_id,
            action="digest",
            title=f"Nightwatch digest: {n_alerts} alerts over the nightly budget, {n_review} new for review",
            summary=f"Since {pending['since']:%Y-%m-%d %H:%M} UTC: {n_alerts} alerts held back by the budget, "
            f"{n_review} MEDIUM events in the review queue (respond within 4 hours).",
            dedup_key=digest_id,
            timestamp=now.isoformat(),
            details={
                "alerts": [title for _id, title in pending["alerts"][:20]],
                "review_queue": pending["review"][:20],
            },
            link=self.settings.portal_url,
        )
        results = self.broadcast(notice, self.settings.digest.channels)
        if results:  # only a digest that went somewhere carries the alerts; otherwise they stay pending
            ids = [alert_id for alert_id, _title in pending["alerts"]]
            with self.store.engine.begin() as conn:
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.alert_id.in_(ids) & (deliveries.c.status == THROTTLED))
                    .values(digest_id=digest_id, updated_at=now)
                )
        return notice, results

    def send_low_digest(self) -> tuple[Notice | None, list[dict[str, Any]]]:
        """The next-business-day digest of LOW (routine) events since the last one, once per site-local day."""
        now = self.clock()
        local_day = now.astimezone(_zone(self.config.sources.site.timezone)).date()
        digest_id = f"digest-low:{local_day.isoformat()}"
        since = self.last_digest_at("digest-low:") or self._previous_business_slot(now)
        query = (
            sa.select(events.c.source, sa.func.count())
            .where((events.c.event_class == "routine") & (events.c.stored_at > since) & events.c.injected.is_(False))
            .group_by(events.c.source)
        )
        with self.store.engine.connect() as conn:
            counts = {source: int(n) for source, n in conn.execute(query)}
        notice = Notice(
            key=digest_id,
            action="digest",
            title=f"Nightwatch LOW digest for {local_day}: {sum(counts.values())} routine events",
            summary=f"Routine (LOW) events since {since:%Y-%m-%d %H:%M} UTC, archived: "
            + (", ".join(f"{source} {n}" for source, n in sorted(counts.items())) or "none"),
            dedup_key=digest_id,
            timestamp=now.isoformat(),
            level="LOW",
            details={"routine_by_source": counts},
        )
        return notice, self.broadcast(notice, self.settings.digest.channels)

    def _previous_business_slot(self, now: datetime) -> datetime:
        """The LOW digest's slot on the business day before `now`: on a Monday, Friday's (the weekend included)."""
        local = now.astimezone(_zone(self.config.sources.site.timezone))
        hours, minutes = (int(part) for part in self.settings.digest.business_day_at.split(":"))
        day = local - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day.replace(hour=hours, minute=minutes, second=0, microsecond=0)

    def digests_due(self) -> list[dict[str, Any]]:
        """What `notify run` sends on its own: the pending digest every `every_min`, the LOW digest on business
        days after `business_day_at` (site-local)."""
        now, spec = self.clock(), self.settings.digest
        sent: list[dict[str, Any]] = []
        last = self.last_digest_at()
        if last is None or now - last >= timedelta(minutes=spec.every_min):
            sent += self.send_digest()[1]
        local = now.astimezone(_zone(self.config.sources.site.timezone))
        if local.weekday() < 5 and f"{local:%H:%M}" >= spec.business_day_at:
            with self.store.engine.connect() as conn:
                done = conn.execute(
                    sa.select(deliveries.c.delivery_id).where(deliveries.c.alert_id == f"digest-low:{local.date()}")
                ).first()
            if done is None:
                sent += self.send_low_digest()[1]
        return sent


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


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


def acknowledged(store: HotStore, alert_ids: list[str]) -> set[str]:
    """Alerts someone has acknowledged or resolved in the portal."""
    query = sa.select(alert_actions.c.alert_id).where(
        alert_actions.c.alert_id.in_(alert_ids) & alert_actions.c.action.in_(("acknowledge", "resolve"))
    )
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def alert_action_hook(store: HotStore, alert_id: str, action: str, config: NightwatchConfig | None = None) -> None:
    """Called by `responses.alert_action` after it commits: an acknowledge or resolve in the alert portal is sent to
    PagerDuty for the same dedup_key. Never raises: the portal action stands whatever the pager says, and a failed
    send is a `retrying` delivery."""
    if action not in ("acknowledge", "resolve"):
        return
    try:
        from config.settings import load_config

        config = config or load_config()
        notifier = Notifier(store, config, timeout_s=config.notifications.pipeline_timeout_s)
        try:
            notifier.follow_up(alert_id, action)
        finally:
            notifier.close()
    except Exception:  # noqa: BLE001
        log.exception("could not send the %s of %s to the pager", action, alert_id)


# --- the "Critical Alert Not Sent" runbook ---------------------------------------------------------------------


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
    from access import accounts, audit

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


def deliveries_for(store: HotStore, alert_id: str | None = None, statuses: tuple[str, ...] = ()) -> list[dict]:
    query = sa.select(deliveries).order_by(deliveries.c.delivery_id)
    if alert_id is not None:
        query = query.where(deliveries.c.alert_id == alert_id)
    if statuses:
        query = query.where(deliveries.c.status.in_(statuses))
    with store.engine.connect() as conn:
        return [_row(row) for row in conn.execute(query)]
