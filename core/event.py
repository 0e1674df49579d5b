"""The one event model every source decodes into, and the records that travel beside it."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EventClass = Literal["critical", "significant", "interesting", "routine", "rejected"]
AlertLevel = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE"]

# Earliest plausible event: the first GCN notices (BATSE) are from the 1990s.
EARLIEST_EVENT_TIME = datetime(1990, 1, 1, tzinfo=timezone.utc)
# How far ahead of the receiving clock an event time may be before it is impossible.
CLOCK_SKEW = timedelta(hours=1)

QualityValue = float | int | str | bool | None

# The guide's routing of classes to alert levels.
ALERT_LEVELS: dict[str, str] = {
    "critical": "CRITICAL",
    "significant": "HIGH",
    "interesting": "MEDIUM",
    "routine": "LOW",
    "rejected": "NONE",
}
_RAISABLE = ("routine", "interesting", "significant", "critical")


def raise_class(event_class: str) -> str:
    """One level up (a multi-messenger coincidence); critical stays critical, rejected stays rejected."""
    if event_class not in _RAISABLE:
        return event_class
    return _RAISABLE[min(_RAISABLE.index(event_class) + 1, len(_RAISABLE) - 1)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC time; a naive one (as SQLite returns them) is taken as UTC."""
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Packet(BaseModel):
    """Raw bytes as received from a source, before decoding."""

    model_config = ConfigDict(frozen=True)

    payload: bytes
    origin: str  # file path, message id, or simulator name: where the bytes came from
    source_hint: str | None = None  # the topic/source it arrived on, when known
    received_time: datetime = Field(default_factory=utcnow)
    published_time: datetime | None = None  # when the source published it (Pub/Sub publish time)
    injected: bool = False
    # Set when the bytes were not (all) read: a limit or a non-regular file; the packet becomes one dead letter.
    refused: str | None = None


class Event(BaseModel):
    """A decoded event from any source, in one shape.

    Positions are ICRS degrees; times are UTC. `raw` keeps the packet bytes exactly as received
    (for a multi-alert container, that alert alone re-encoded with the writer schema).
    """

    model_config = ConfigDict(validate_assignment=False)

    event_id: str
    source: Literal["ztf", "rubin", "gcn"]
    kind: str
    object_id: str | None = None
    event_time: datetime
    received_time: datetime
    published_time: datetime | None = None
    stored_time: datetime | None = None
    ra: float | None = None
    dec: float | None = None
    pos_error_deg: float | None = None
    mag: float | None = None
    mag_err: float | None = None
    band: str | None = None
    quality: dict[str, QualityValue] = Field(default_factory=dict)
    features: dict[str, QualityValue] = Field(default_factory=dict)
    raw: bytes = b""
    raw_format: str
    schema_version: str | None = None
    injected: bool = False
    origin: str = ""
    # Decided downstream.
    event_class: EventClass | None = None
    score: float | None = None
    alert_level: AlertLevel | None = None
    reasons: list[str] = Field(default_factory=list)
    matched_rules: list[str] = Field(default_factory=list)
    night: str | None = None
    lineage: dict[str, str] = Field(default_factory=dict)
    # What the agents found, by agent: {"status": ok|skipped|timeout|error, "latency_ms", "data", ...}.
    enrichments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # The object's light curve as this packet carries it (core/decoders/lightcurve.py): kept in a table of its own
    # in the hot store and as a column of the warm tier, not in the event's JSON (one point would be in every
    # later packet's copy).
    lightcurve: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("event_time", "received_time", "published_time", "stored_time")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("times must carry a time zone")
        return value.astimezone(timezone.utc)

    @field_validator("ra", "dec", "pos_error_deg", "mag", "mag_err")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _plausible(self) -> Event:
        if (self.ra is None) != (self.dec is None):
            raise ValueError("ra and dec must both be given or both be missing")
        if self.ra is not None and not 0.0 <= self.ra < 360.0:
            raise ValueError(f"ra {self.ra} out of range [0, 360)")
        if self.dec is not None and not -90.0 <= self.dec <= 90.0:
            raise ValueError(f"dec {self.dec} out of range [-90, 90]")
        if self.pos_error_deg is not None and not 0.0 <= self.pos_error_deg <= 180.0:
            raise ValueError(f"position error {self.pos_error_deg} deg out of range [0, 180]")
        if self.event_time < EARLIEST_EVENT_TIME:
            raise ValueError(f"event time {self.event_time.isoformat()} is before 1990")
        if self.event_time > self.received_time + CLOCK_SKEW:
            raise ValueError(
                f"event time {self.event_time.isoformat()} is after the time it was received "
                f"({self.received_time.isoformat()})"
            )
        return self

    def columns(self) -> dict[str, Any]:
        """The scalar fields every table of events keeps (hot store rows, warm Parquet rows)."""
        return {name: getattr(self, name) for name in SCALAR_COLUMNS}

    def summary_dict(self) -> dict[str, Any]:
        """The event without its raw bytes and light curve, JSON-ready: what the hot store and warm tier keep."""
        return self.model_dump(mode="json", exclude={"raw", "lightcurve"})

    def to_json(self) -> str:
        """The event without its raw bytes as JSON (what the hot store's `payload` and the archive keep), written by
        pydantic's own serialiser: about 4x cheaper than dumping to a dict and then to sorted JSON, twice an event."""
        return self.model_dump_json(exclude={"raw"})


SCALAR_COLUMNS = (
    "event_id",
    "source",
    "kind",
    "object_id",
    "event_class",
    "score",
    "alert_level",
    "event_time",
    "received_time",
    "night",
    "ra",
    "dec",
    "pos_error_deg",
    "mag",
    "mag_err",
    "band",
    "injected",
)


class DeadLetter(BaseModel):
    """Input that could not be processed: kept whole, with where and why it failed."""

    source: str
    stage: str  # decode | validate | filter | classify | route | sink
    reason: str
    payload: bytes
    origin: str = ""
    event_id: str | None = None
    received_time: datetime = Field(default_factory=utcnow)
    injected: bool = False

    @property
    def dead_letter_id(self) -> str:
        """Stable for the same bytes from the same origin failing at the same stage: a rerun adds no copy,
        while identical bytes from two origins (two files, two messages) stay two letters."""
        digest = hashlib.sha256(self.payload)
        digest.update(f"|{self.stage}|{self.origin}|{self.event_id or ''}".encode())
        return f"dl:{self.stage}:{digest.hexdigest()[:24]}"
