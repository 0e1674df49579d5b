"""The channels: a `Notice` rendered per channel kind (PagerDuty Events API v2, Slack, a JSON webhook, e-mail) and
the `Sender` that sends it. A failure is an `Outcome`, never an exception; errors are stored with the secrets
(webhook URLs, keys) taken out."""

from __future__ import annotations

import json
import smtplib
import ssl
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import requests

from config.settings import ChannelSpec
from ops.notify.notice import SEVERITY, Notice

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
