"""Pydantic models for the YAML configuration, and the loader that validates it.

Every file carries a `version`; the filter and rules versions are recorded on each event they decide.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.environment import environment

CONFIG_DIR = Path(__file__).resolve().parent
CLASSES = ("critical", "significant", "interesting", "routine", "rejected")
SOURCES = ("ztf", "rubin", "gcn")

Op = Literal["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "between", "not_between"]


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and the field."""


def _only_known_sources(value: dict[str, Any]) -> dict[str, Any]:
    unknown = set(value) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; known: {SOURCES}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Condition(_Strict):
    """One comparison of an event value against a configured value."""

    op: Op
    value: Any

    @model_validator(mode="after")
    def _check_value(self) -> Condition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        if self.op in ("between", "not_between"):
            if not (isinstance(self.value, list) and len(self.value) == 2):
                raise ValueError(f"op {self.op!r} needs a [low, high] value")
        if self.op in ("<", "<=", ">", ">=") and not isinstance(self.value, (int, float)):
            raise ValueError(f"op {self.op!r} needs a number")
        return self

    def holds(self, actual: Any) -> bool:
        """Whether the actual value satisfies the condition; a missing or NaN value never does."""
        if actual is None or (isinstance(actual, float) and math.isnan(actual)):
            return False
        op, value = self.op, self.value
        try:
            if op == "==":
                return actual == value
            if op == "!=":
                return actual != value
            if op == "in":
                return actual in value
            if op == "not_in":
                return actual not in value
            if op == "<":
                return actual < value
            if op == "<=":
                return actual <= value
            if op == ">":
                return actual > value
            if op == ">=":
                return actual >= value
            low, high = value
            inside = low <= actual <= high
            return inside if op == "between" else not inside
        except TypeError:
            return False

    def describe(self) -> str:
        return f"{self.op} {self.value!r}"


class Cut(_Strict):
    """A per-source quality cut: an event must satisfy it or be rejected with `reason`."""

    name: str
    field: str
    op: Op
    value: Any
    reason: str
    if_missing: Literal["pass", "reject"] = "pass"

    @model_validator(mode="after")
    def _valid_condition(self) -> Cut:
        self.condition  # noqa: B018 - builds and so validates op and value together
        return self

    @cached_property
    def condition(self) -> Condition:
        return Condition(op=self.op, value=self.value)


class FiltersConfig(_Strict):
    version: str
    ztf: list[Cut] = Field(default_factory=list)
    rubin: list[Cut] = Field(default_factory=list)
    gcn: list[Cut] = Field(default_factory=list)

    def cuts_for(self, source: str) -> list[Cut]:
        return list(getattr(self, source, []) or [])


class Rule(_Strict):
    """A classification rule: every condition in `when` must hold for the rule to match."""

    name: str
    description: str = ""
    when: dict[str, Condition]
    event_class: str = Field(alias="class")
    score: float = Field(ge=0.0, le=1.0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("when", mode="before")
    @classmethod
    def _expand_shorthand(cls, when: Any) -> Any:
        """`field: value` means `field: {"==": value}`; `field: {op: value}` names the operator."""
        if not isinstance(when, dict) or not when:
            raise ValueError("`when` must be a non-empty mapping of field to condition")
        expanded = {}
        for field_name, spec in when.items():
            if isinstance(spec, dict) and set(spec) == {"op", "value"}:  # the long form, as model_dump writes it
                expanded[field_name] = spec
            elif isinstance(spec, dict):
                if len(spec) != 1:
                    raise ValueError(f"condition on {field_name!r} must have exactly one operator")
                ((op, value),) = spec.items()
                expanded[field_name] = {"op": op, "value": value}
            else:
                expanded[field_name] = {"op": "==", "value": spec}
        return expanded

    @field_validator("event_class")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in CLASSES[:-1]:
            raise ValueError(f"class must be one of {CLASSES[:-1]} (rejected comes from the filter)")
        return value


class DefaultClass(_Strict):
    event_class: str = Field(alias="class")
    score: float = Field(ge=0.0, le=1.0)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ClassificationConfig(_Strict):
    version: str
    default: DefaultClass
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_names(self) -> ClassificationConfig:
        names = [rule.name for rule in self.rules]
        duplicated = {name for name in names if names.count(name) > 1}
        if duplicated:
            raise ValueError(f"rule names must be unique, repeated: {sorted(duplicated)}")
        return self


class Site(_Strict):
    name: str
    timezone: str
    latitude_deg: float = Field(ge=-90, le=90)
    longitude_deg: float = Field(ge=-180, le=180)
    height_m: float = 0.0

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class SourceSpec(_Strict):
    role: str
    format: str
    expected_rate_per_min: float = Field(ge=0)
    schema_dir: str = ""


class SourcesConfig(_Strict):
    version: str
    site: Site
    sources: dict[str, SourceSpec]
    gcn_kinds: dict[str, list[str]]

    _known_sources = field_validator("sources")(lambda value: _only_known_sources(value))

    def gcn_kind(self, mission: str, instrument: str) -> str:
        """The kind of a GCN notice from its mission and instrument, or `notice` when unknown."""
        text = f"{mission} {instrument}".lower().strip()
        squashed = re.sub(r"[^a-z0-9]+", " ", text)
        for kind, needles in self.gcn_kinds.items():
            if any(needle in text or needle in squashed for needle in needles):
                return kind
        return "notice"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([hdy])$")


def parse_duration_hours(text: str) -> float | None:
    """'24h' -> 24, '90d' -> 2160, '1y' -> 8766; 'permanent' -> inf; 'none' -> None."""
    text = text.strip().lower()
    if text == "permanent":
        return math.inf
    if text == "none":
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use permanent, none, or a number with h, d or y")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"h": 1, "d": 24, "y": 24 * 365.25}[unit]


class Retention(_Strict):
    hot: str
    warm: str
    archive: Literal["keep", "none"]

    @field_validator("hot", "warm")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration_hours(value)
        return value


class RetentionConfig(_Strict):
    version: str
    classes: dict[str, Retention]

    @field_validator("classes")
    @classmethod
    def _every_class(cls, value: dict[str, Retention]) -> dict[str, Retention]:
        missing = set(CLASSES) - set(value)
        if missing:
            raise ValueError(f"retention missing for classes {sorted(missing)}")
        return value


class PubSubSpec(_Strict):
    project: str
    topics: dict[str, str]
    subscription_suffix: str = "-pipeline"
    alerts_topic: str
    event_time_attribute: str = "event_time"

    _known_sources = field_validator("topics")(lambda value: _only_known_sources(value))

    def subscription(self, source: str) -> str:
        return f"{self.topics[source]}{self.subscription_suffix}"


class WindowSpec(_Strict):
    metrics_s: int = Field(60, gt=0)
    allowed_lateness_s: int = Field(600, ge=0)
    tier_batch_s: int = Field(10, gt=0)


class AssociationSpec(_Strict):
    window_s: int = Field(3600, gt=0)
    max_separation_deg: float = Field(15.0, gt=0, le=180)
    error_scale: float = Field(1.0, gt=0)


class ThresholdRefresh(_Strict):
    refresh_s: float = Field(2.0, gt=0)


class StreamingConfig(_Strict):
    version: str
    pubsub: PubSubSpec
    windows: WindowSpec = WindowSpec()
    association: AssociationSpec = AssociationSpec()
    thresholds: ThresholdRefresh = ThresholdRefresh()


BUILTIN_AGENT_KINDS = ("catalogue", "history", "followup", "remote")


class BreakerSpec(_Strict):
    failure_threshold: int = Field(5, ge=1)  # consecutive failed calls that open the breaker
    reset_after_s: float = Field(30.0, gt=0)  # how long it stays open before one probe call is let through


class AgentSpec(_Strict):
    """One agent: what it takes, how long an event may wait for it, and how hard to try."""

    kind: str  # a built-in kind (catalogue, history, followup, remote) or "package.module:ClassName"
    enabled: bool = True
    classes: list[Literal["critical", "significant", "interesting", "routine", "rejected"]] = Field(
        default_factory=lambda: ["critical", "significant", "interesting"]
    )
    sources: list[str] = Field(default_factory=lambda: list(SOURCES))
    budget_ms: int = Field(1000, gt=0)  # the longest an event waits for this agent, retries included
    timeout_ms: int = Field(500, gt=0)  # one call
    retries: int = Field(2, ge=0)  # extra attempts within the budget (never for critical events)
    backoff_ms: int = Field(50, ge=0)  # first pause between attempts; doubles each time
    concurrency: int = Field(4, ge=1, le=64)  # calls in flight at once
    batch_size: int = Field(50, ge=1, le=1000)  # events per call
    breaker: BreakerSpec = BreakerSpec()
    url: str | None = None  # remote agents: the agent server's base URL
    options: dict[str, Any] = Field(default_factory=dict)  # the agent's own settings

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        _only_known_sources(dict.fromkeys(value))
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in BUILTIN_AGENT_KINDS and not re.fullmatch(r"[\w.]+:\w+", value):
            raise ValueError(f"kind {value!r}: one of {', '.join(BUILTIN_AGENT_KINDS)} or 'package.module:ClassName'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AgentSpec:
        if self.kind == "remote" and not self.url:
            raise ValueError("a remote agent needs a url (the agent server, e.g. http://127.0.0.1:8601)")
        if self.timeout_ms > self.budget_ms:
            raise ValueError(f"timeout_ms {self.timeout_ms} is longer than budget_ms {self.budget_ms}")
        return self


class AgentsConfig(_Strict):
    version: str
    agents: dict[str, AgentSpec]

    @field_validator("agents")
    @classmethod
    def _names(cls, value: dict[str, AgentSpec]) -> dict[str, AgentSpec]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,47}", name):
                raise ValueError(f"agent name {name!r}: lower-case letters, digits, - and _, up to 48")
        return value

    def enabled(self) -> dict[str, AgentSpec]:
        return {name: spec for name, spec in self.agents.items() if spec.enabled}


# --- notifications, on-call, maintenance ---
# config/notifications.yaml, config/oncall.yaml and config/maintenance.yaml (ops/notify.py, ops/oncall.py,
# ops/maintenance.py). Secrets (routing keys, webhook URLs, SMTP passwords) are never written in the YAML:
# only the names of the environment variables that hold them.

LEVELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _clock(value: str | None) -> str | None:
    if value is not None and not _CLOCK.fullmatch(value):
        raise ValueError(f"time {value!r}: HH:MM, 24-hour")
    return value


class ChannelSpec(_Strict):
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


class LevelPolicy(_Strict):
    channels: list[str] = Field(default_factory=list)  # sent at once
    throttle: bool = True  # beyond the nightly budget, into the digest instead (never for CRITICAL)


class DigestSpec(_Strict):
    channels: list[str] = Field(default_factory=list)
    every_min: int = Field(60, ge=1)  # the pending digest (over-budget alerts, new MEDIUM items) at most this often
    business_day_at: str = "09:00"  # LOW: the next business day's digest, at this site-local time

    @field_validator("business_day_at")
    @classmethod
    def _time(cls, value: str) -> str:
        return _clock(value)  # type: ignore[return-value]


class RetrySpec(_Strict):
    max_attempts: int = Field(8, ge=1)
    backoff_s: float = Field(30.0, gt=0)  # doubles after each failed attempt
    max_backoff_s: float = Field(1800.0, gt=0)


class NotificationsConfig(_Strict):
    version: str
    channels: dict[str, ChannelSpec]
    levels: dict[Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"], LevelPolicy]
    budget_per_night: int = Field(50, ge=0)  # the guide's alert volume: < 50 a night
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
        if "CRITICAL" in self.levels and self.levels["CRITICAL"].throttle:
            raise ValueError("levels.CRITICAL.throttle must be false: CRITICAL is never throttled")
        paged = [name for name in self.digest.channels if self.channels[name].kind == "pagerduty"]
        if paged:
            raise ValueError(f"digest channels {paged}: a digest is not a page; use slack, webhook or email")
        return self

    def policy(self, level: str) -> LevelPolicy:
        return self.levels.get(level, LevelPolicy())  # type: ignore[call-overload]


class Person(_Strict):
    name: str
    channel: str  # a channel of notifications.yaml
    to: str | None = None  # the e-mail address or Slack handle on that channel, if it is not the channel's own


class RotaRole(_Strict):
    title: str
    coverage: Literal["24/7", "business_hours"]
    people: list[str] = Field(min_length=1)  # in rotation order, one a week from rotation_start
    response_min: int | None = None


class BusinessHours(_Strict):
    days: list[Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]] = Field(
        default_factory=lambda: list(WEEKDAYS[:5])
    )
    start: str = "09:00"
    end: str = "17:00"
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _times(cls, value: str) -> str:
        return _clock(value)  # type: ignore[return-value]


class EscalationStep(_Strict):
    after_min: int = Field(ge=0)
    role: str
    note: str = ""


class EscalationSpec(_Strict):
    levels: list[Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]] = Field(default_factory=lambda: ["CRITICAL"])
    steps: list[EscalationStep]
    give_up_after_h: float = Field(12.0, gt=0)  # older unacknowledged alerts are left to the handoff

    @field_validator("steps")
    @classmethod
    def _in_order(cls, value: list[EscalationStep]) -> list[EscalationStep]:
        times = [step.after_min for step in value]
        if times != sorted(set(times)):
            raise ValueError(f"steps must climb: after_min {times} must increase")
        return value


class OnCallConfig(_Strict):
    version: str
    rotation_start: datetime  # weeks are counted from here; each role moves to its next person every 7 days
    business_hours: BusinessHours = BusinessHours()
    roles: dict[str, RotaRole]
    people: dict[str, Person]
    escalation: EscalationSpec

    @model_validator(mode="after")
    def _references(self) -> OnCallConfig:
        if self.rotation_start.tzinfo is None:
            raise ValueError("rotation_start needs a time zone, e.g. 2026-01-05T09:00:00Z")
        missing = sorted({p for role in self.roles.values() for p in role.people} - set(self.people))
        if missing:
            raise ValueError(f"people {missing} are in the rotation but not under people")
        unknown = sorted({step.role for step in self.escalation.steps} - set(self.roles))
        if unknown:
            raise ValueError(f"escalation roles {unknown} are not rotation roles ({sorted(self.roles)})")
        return self


class WindowType(_Strict):
    title: str
    weekdays: list[Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]] | None = (
        None  # None: any day
    )
    start: str | None = None  # UTC HH:MM; None: any time
    end: str | None = None
    notice_h: float = Field(0.0, ge=0)  # how far ahead it must be announced
    silence: bool = True  # non-critical pages are suppressed while it is active
    default_duration_min: int = Field(60, gt=0)  # when announced without --end and without a fixed end

    @field_validator("start", "end")
    @classmethod
    def _times(cls, value: str | None) -> str | None:
        return _clock(value)


class MaintenanceConfig(_Strict):
    version: str
    announce_channels: list[str] = Field(default_factory=list)  # channels of notifications.yaml
    types: dict[str, WindowType]


class NightwatchConfig(_Strict):
    """Everything the pipeline reads from config/, plus a fingerprint of the files it came from."""

    sources: SourcesConfig
    filters: FiltersConfig
    classification: ClassificationConfig
    retention: RetentionConfig
    streaming: StreamingConfig
    agents: AgentsConfig
    notifications: NotificationsConfig
    oncall: OnCallConfig
    maintenance: MaintenanceConfig
    fingerprint: str


_FILES = {
    "sources": ("sources.yaml", SourcesConfig),
    "filters": ("filters.yaml", FiltersConfig),
    "classification": ("classification.yaml", ClassificationConfig),
    "retention": ("retention.yaml", RetentionConfig),
    "streaming": ("streaming.yaml", StreamingConfig),
    "agents": ("agents.yaml", AgentsConfig),
    "notifications": ("notifications.yaml", NotificationsConfig),
    "oncall": ("oncall.yaml", OnCallConfig),
    "maintenance": ("maintenance.yaml", MaintenanceConfig),
}


def load_config(config_dir: str | Path | None = None) -> NightwatchConfig:
    """Read and validate every YAML file; a bad file raises ConfigError naming the file and field.

    The folder is `config_dir`, else $NIGHTWATCH_CONFIG_DIR, else the shipped defaults.
    """
    folder = Path(config_dir or environment().config_dir or CONFIG_DIR)
    parts: dict[str, Any] = {}
    digest = hashlib.sha256()
    for key, (file_name, model) in _FILES.items():
        path = folder / file_name
        if not path.is_file():
            path = CONFIG_DIR / file_name  # a partial override folder falls back to the defaults
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc
        try:
            parts[key] = model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{path}: invalid configuration: {problems}") from exc
        digest.update(text.encode("utf-8"))
    return NightwatchConfig(**parts, fingerprint=digest.hexdigest()[:12])
