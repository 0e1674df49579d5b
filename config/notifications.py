"""Notifications (notifications.yaml): channels, per-level policy, digests, retries.

Secrets (routing keys, webhook URLs, SMTP passwords) are never written in the YAML: only the names of the
environment variables that hold them."""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import Strict

LEVELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
# Levels never held back (budget, digest, maintenance silencing): any hold would outlast their response time.
NEVER_HELD = ("CRITICAL", "HIGH")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def clock(value: str | None) -> str | None:
    if value is not None and not _CLOCK.fullmatch(value):
        raise ValueError(f"time {value!r}: HH:MM, 24-hour")
    return value


class ChannelSpec(Strict):
    """One notification channel. Fields ending in `_env` name an environment variable; the channel has no
    destination (and sends nothing) until its variables are set."""

    kind: Literal["slack", "pagerduty", "webhook", "email"]
    enabled: bool = True
    url: str | None = None  # pagerduty only: the Events API v2 endpoint (not a secret)
    url_env: str | None = None  # slack, webhook: the webhook URL (a secret); pagerduty: overrides url
    routing_key_env: str | None = None  # pagerduty: the integration's routing key
    host: str | None = None  # email: the SMTP server
    host_env: str | None = None  # email: or the variable naming it
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    sender: str = "nightwatch@events.facility.org"
    to: list[str] = Field(default_factory=list)  # email recipients (a person's contact may name another)

    @model_validator(mode="after")
    def _consistent(self) -> ChannelSpec:
        for name in ("url_env", "routing_key_env", "host_env", "username_env", "password_env"):
            value = getattr(self, name)
            if value is not None and not _ENV_NAME.fullmatch(value):
                raise ValueError(f"{name} {value!r} must name an environment variable (e.g. NIGHTWATCH_SLACK_URL)")
        if self.kind in ("slack", "webhook"):
            if self.url is not None:
                raise ValueError(f"a {self.kind} URL is a secret: name its environment variable with url_env")
            if not self.url_env:
                raise ValueError(f"a {self.kind} channel needs url_env")
        if self.kind == "pagerduty" and not self.routing_key_env:
            raise ValueError("a pagerduty channel needs routing_key_env (the integration's routing key)")
        if self.kind == "email" and not (self.host or self.host_env):
            raise ValueError("an email channel needs host or host_env")
        return self

    def env(self, name: str | None) -> str | None:
        return (os.environ.get(name) or None) if name else None

    def destination(self) -> str | None:
        """Where this channel sends now (URL or SMTP host), or None if disabled or its variables are unset."""
        if not self.enabled:
            return None
        if self.kind == "pagerduty":
            if not self.env(self.routing_key_env):
                return None
            return self.env(self.url_env) or self.url or PAGERDUTY_EVENTS_URL
        if self.kind == "email":
            return self.env(self.host_env) or self.host
        return self.env(self.url_env)

    def missing(self) -> str:
        """Why the channel has no destination, for `notify status`."""
        if not self.enabled:
            return "disabled"
        wanted = [self.routing_key_env] if self.kind == "pagerduty" else [self.url_env or self.host_env]
        return "set " + ", ".join(f"${name}" for name in wanted if name)


class LevelPolicy(Strict):
    channels: list[str] = Field(default_factory=list)  # sent at once
    throttle: bool = True  # beyond the nightly budget, into the digest instead (never for CRITICAL or HIGH)


class DigestSpec(Strict):
    channels: list[str] = Field(default_factory=list)
    every_min: int = Field(60, ge=1)  # the pending digest (over-budget alerts, new MEDIUM items) at most this often
    business_day_at: str = "09:00"  # LOW: the next business day's digest, at this site-local time

    @field_validator("business_day_at")
    @classmethod
    def _time(cls, value: str) -> str:
        return clock(value)  # type: ignore[return-value]


class RetrySpec(Strict):
    max_attempts: int = Field(8, ge=1)
    backoff_s: float = Field(30.0, gt=0)  # doubles after each failed attempt
    max_backoff_s: float = Field(1800.0, gt=0)


class NotificationsConfig(Strict):
    version: str
    channels: dict[str, ChannelSpec]
    levels: dict[Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"], LevelPolicy]
    budget_per_night: int = Field(50, ge=0)  # the guide's alert volume (< 50 a night): beyond it MEDIUM/LOW digest
    digest: DigestSpec = DigestSpec()
    retry: RetrySpec = RetrySpec()
    pipeline_timeout_s: float = Field(2.0, gt=0)  # a send from inside the pipeline: short, then left to retries
    timeout_s: float = Field(10.0, gt=0)  # a send from `nightwatch notify run` or by hand
    poll_s: float = Field(10.0, gt=0)  # how often `notify run` looks for due retries, digests and escalations
    portal_url: str | None = None  # the alert portal, linked from messages

    @model_validator(mode="after")
    def _references(self) -> NotificationsConfig:
        named = [c for policy in self.levels.values() for c in policy.channels] + self.digest.channels
        unknown = sorted(set(named) - set(self.channels))
        if unknown:
            raise ValueError(f"unknown channels {unknown}; configured: {sorted(self.channels)}")
        for level in NEVER_HELD:
            # Written `throttle: true` is refused; left out, it is simply not applied to these levels (ops/notify).
            spec = self.levels.get(level)  # type: ignore[call-overload]
            if spec is not None and "throttle" in spec.model_fields_set and spec.throttle:
                raise ValueError(
                    f"levels.{level}.throttle must be false: {level} is never throttled (a digest would hold it past "
                    "its response time)"
                )
        paged = [name for name in self.digest.channels if self.channels[name].kind == "pagerduty"]
        if paged:
            raise ValueError(f"digest channels {paged}: a digest is not a page; use slack, webhook or email")
        return self

    def policy(self, level: str) -> LevelPolicy:
        return self.levels.get(level, LevelPolicy())  # type: ignore[call-overload]
