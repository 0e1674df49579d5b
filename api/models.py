"""The API's response and request bodies: what the OpenAPI file describes and every response is checked against."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

Source = Literal["ztf", "rubin", "gcn"]
EventClass = Literal["critical", "significant", "interesting", "routine", "rejected"]
AlertLevel = Literal["CRITICAL", "HIGH"]
AlertStatus = Literal["open", "acknowledged", "escalated", "resolved"]
ReviewStatus = Literal["pending", "promoted", "rejected"]
Tier = Literal["hot", "warm", "all"]
Format = Literal["json", "parquet", "avro"]

T = TypeVar("T")


def utc_iso(moment: datetime) -> str:
    """The one time format of every answer, the live feed included: ISO 8601 in UTC with `Z`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


UtcTime = Annotated[
    datetime,
    PlainSerializer(utc_iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2025-09-06T02:00:00Z"]}),
]


class Page(BaseModel, Generic[T]):
    data: list[T]
    next: str | None = Field(None, description="The next page's URL; null on the last page")
    next_cursor: str | None = Field(None, description="The opaque cursor in `next`")


class Event(BaseModel):
    event_id: str
    source: str
    kind: str
    object_id: str | None = None
    event_class: str | None = None
    score: float | None = None
    alert_level: str | None = None
    event_time: UtcTime
    received_time: UtcTime
    night: str | None = None
    ra: float | None = Field(None, description="ICRS degrees")
    dec: float | None = Field(None, description="ICRS degrees")
    pos_error_deg: float | None = None
    mag: float | None = None
    mag_err: float | None = None
    band: str | None = None
    injected: bool = False
    reasons: list[str] = []
    matched_rules: list[str] = []
    raw_format: str | None = None
    schema_version: str | None = None
    quality: dict[str, Any] = {}
    features: dict[str, Any] = {}
    lineage: dict[str, Any] = Field({}, description="Filter, rules and pipeline versions, route, run, association")
    enrichments: dict[str, Any] = Field({}, description="What each agent found: status, latency_ms, data")
    tier: Literal["hot", "warm"] = Field(description="Where the event was read: the hot store or the warm tier")


class ConeHit(Event):
    separation_deg: float = Field(description="Angular distance from the cone's centre")


class EventPage(Page[Event]):
    pass


class ConePage(Page[ConeHit]):
    pass


class Alert(BaseModel):
    alert_id: str
    event_id: str
    level: str
    status: str
    score: float | None = None
    title: str | None = None
    dedup_key: str = Field(description="The same key as the alerts Pub/Sub topic's `dedup_key` attribute")
    injected: bool
    created_at: UtcTime
    respond_by: UtcTime = Field(description="The guide's response time: CRITICAL 15 min, HIGH 1 hour")
    source: str | None = None
    kind: str | None = None
    object_id: str | None = None
    event_time: UtcTime | None = None
    ra: float | None = None
    dec: float | None = None
    pos_error_deg: float | None = None
    mag: float | None = None


class AlertPage(Page[Alert]):
    pass


class AlertAction(BaseModel):
    action: str
    actor: str
    note: str
    at: UtcTime


class AlertDetail(Alert):
    history: list[AlertAction] = Field(description="Acknowledgements, escalations and resolutions, oldest first")


class LevelCount(BaseModel):
    level: str = Field(description="CRITICAL, HIGH, MEDIUM (the review queue) or LOW (routine, archived)")
    waiting: int = Field(description="not resolved (alerts) or pending (review queue)")
    total: int


class LevelCounts(BaseModel):
    levels: list[LevelCount]


NON_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"


class Acknowledge(BaseModel):
    # At least one non-blank character (the note goes into the audit log). `\s` differs between the OpenAPI
    # description's regex dialect (ECMA), Python's and pydantic's (Rust): the class leaves out the blanks of all.
    note: str = Field(min_length=1, max_length=2000, pattern=NON_BLANK, description="What was done, who was told")


class ReviewItem(BaseModel):
    event_id: str
    status: str
    score: float | None = None
    injected: bool
    created_at: UtcTime
    source: str | None = None
    kind: str | None = None
    object_id: str | None = None
    event_time: UtcTime | None = None
    ra: float | None = None
    dec: float | None = None
    pos_error_deg: float | None = None
    mag: float | None = None


class ReviewPage(Page[ReviewItem]):
    pass


class MetricsWindow(BaseModel):
    source: str
    window_start: UtcTime
    window_end: UtcTime
    run_id: str
    night: str | None = None
    received: int
    stored: int
    dead_letters: int
    alerts: int
    late: int
    rate_per_min: float
    expected_rate_per_min: float | None = None
    rate_deviation: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    error_rate: float | None = None
    queue_depth: int | None = None
    updated_at: UtcTime


class MetricsPage(Page[MetricsWindow]):
    pass


class AgentWindow(BaseModel):
    agent: str
    window_start: UtcTime
    window_end: UtcTime
    run_id: str
    calls: int
    ok: int
    timeouts: int
    errors: int
    skips: int
    over_budget: int
    retried: int
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_max_ms: float | None = None
    budget_ms: int
    breaker_state: str
    updated_at: UtcTime


class AgentWindowPage(Page[AgentWindow]):
    pass


class Association(BaseModel):
    trigger_id: str = Field(description="The satellite event")
    counterpart_id: str = Field(description="The optical event")
    separation_deg: float
    time_offset_s: float = Field(description="Counterpart time minus trigger time")
    created_at: UtcTime


class ReviewDecision(BaseModel):
    decision: str
    actor: str
    note: str
    at: UtcTime


class AlertState(BaseModel):
    alert_id: str
    level: str
    status: str
    history: list[AlertAction]


class ReviewState(BaseModel):
    status: str
    decisions: list[ReviewDecision]


class Lineage(BaseModel):
    """Why an event was decided as it was: versions, rules, reasons, what the agents found, associations."""

    event_id: str
    event_class: str | None
    alert_level: str | None
    score: float | None
    tier: Literal["hot", "warm"]
    decided_by: str | None = Field(description="The rule (or default) that gave the class")
    rules_version: str | None
    filter_version: str | None
    pipeline_version: str | None
    run_id: str | None
    route: str | None
    raised_from: str | None = Field(description="The class before a multi-messenger association raised it")
    matched_rules: list[str]
    reasons: list[str]
    lineage: dict[str, Any] = Field(description="Everything the pipeline recorded, as stored")
    enrichments: dict[str, Any]
    associations: list[Association]
    alert: AlertState | None
    review: ReviewState | None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    store: str = Field(description="The hot store's database kind")
    warm_tier: bool = Field(description="Whether a warm tier is configured")


class DeadLetter(BaseModel):
    dead_letter_id: str
    status: str = Field(description="open, or resolved (its event was stored after all, e.g. by a re-drive)")
    source: str
    stage: str = Field(description="where it failed: decode, filter, classify, route, sink:events, sink:warm, ...")
    reason: str
    night: str = Field(description="the observing night it was received in (site time)")
    origin: str | None = None
    event_id: str | None = None
    injected: bool
    payload_bytes: int = Field(description="size of the kept raw bytes")
    received_time: UtcTime
    stored_at: UtcTime
    resolved_at: UtcTime | None = None


class DeadLetterDetail(DeadLetter):
    payload_base64: str = Field(description="the raw bytes as received (or their first 64 KiB), base64")


class DeadLetterPage(Page[DeadLetter]):
    pass


class DeadLetterGroup(BaseModel):
    source: str | None = None
    stage: str | None = None
    reason: str | None = Field(None, description="the reason's kind: numbers and quoted values taken out")
    night: str | None = None
    count: int
    first: UtcTime
    last: UtcTime


class DeadLetterStats(BaseModel):
    data: list[DeadLetterGroup]
