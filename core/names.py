"""Names of counters, stages and metrics, spelled once.

Every step that counts (`counter(...)` in transforms/ and pipeline/) and every reader of the counts (the batch
summary and its accounting, the streaming drain and flow control, progress lines, agent tallies) builds its
names here, so a renamed counter cannot silently leave a reader at zero. A counter family is a function of
its part (`routed("alerts")` is "routed.alerts"); `parts(counts, routed)` reads the whole family back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# The Beam metrics namespace of every counter.
METRICS_NAMESPACE = "nightwatch"

# ---- Stages: where a dead letter comes from (DeadLetter.stage) ----
DECODE = "decode"
FILTER = "filter"
CLASSIFY = "classify"
ROUTE = "route"
DISPATCH = "dispatch"

# ---- Hot-store tables and tiers a sink writes ----
EVENTS = "events"
ALERTS = "alerts"
REVIEW = "review"
WARM = "warm"
ARCHIVE = "archive"
TIERS = (WARM, ARCHIVE)


def sink_stage(what: str) -> str:
    """The stage of a dead letter from a failed write to a hot-store table or tier."""
    return f"sink:{what}"


# Stages after which an event never reached the events table: these dead letters replace a class.
LOSING_STAGES = (DECODE, FILTER, CLASSIFY, ROUTE, sink_stage(EVENTS))

# ---- Counters: single names ----
INGESTED = "ingested"  # packets let into a streaming job (before decoding): what draining waits on
PACKETS = "packets"  # packets the decoder read
RECEIVED = "received"  # events out of the decoder (a packet may hold several), good or bad
DEAD_LETTERS = "dead_letters"  # every dead letter written
DEAD_LETTERS_FALLBACK = "dead_letters.fallback_file"  # dead letters the hot store could not take (in a file)
TIERS_INJECTED_SKIPPED = "tiers.injected_skipped"  # injected events, which never go to the tiers
ARCHIVE_REJECTED_SKIPPED = "archive.rejected_skipped"  # rejected events, which the retention table never archives
AGENTS_STEP_FAILED = "agents.step_failed"
AGENT_METRICS_WRITTEN = "agent_metrics.windows_written"
AGENT_METRICS_WRITE_FAILED = "agent_metrics.write_failed"
METRICS_WRITTEN = "metrics.windows_written"
METRICS_WRITE_FAILED = "metrics.write_failed"
ASSOCIATIONS_NEW = "associations.new"
ASSOCIATIONS_WRITE_FAILED = "associations.write_failed"


# ---- Counters: families, one name per part ----
def received(source: str) -> str:
    return f"{RECEIVED}.{source}"


def failed(stage: str) -> str:
    return f"failed.{stage}"


def filtered(source: str) -> str:
    return f"filtered.{source}"


def routed(destination: str) -> str:
    return f"routed.{destination}"


def stored(event_class: str) -> str:
    """An event of this class newly written to the events table (or already there: redeliveries count too)."""
    return f"stored.{event_class}"


def alert_level(level: str) -> str:
    return f"{ALERTS}.{level}"


def new(what: str) -> str:
    """Rows newly written to a hot-store table."""
    return f"{what}.new"


def already_stored(what: str) -> str:
    """Rows a hot-store table already held (redelivered or rerun)."""
    return f"{what}.already_stored"


def sink_failed(what: str) -> str:
    return f"sink_failed.{what}"


def dead_letters(stage: str) -> str:
    return f"{DEAD_LETTERS}.{stage}"


def handled(tier: str) -> str:
    """Events a tier writer took (written or dead-lettered)."""
    return f"{tier}.handled"


def rows(tier: str) -> str:
    return f"{tier}.rows"


def files(tier: str) -> str:
    return f"{tier}.files"


def agent_call(agent: str, status: str) -> str:
    """One agent call's outcome (agents.summary.STATUSES)."""
    return f"agents.{agent}.{status}"


def beyond_lateness(what: str) -> str:
    return f"{what}.beyond_lateness"


def notified(status: str) -> str:
    return f"notify.{status}"


# ---- Reading families back ----
def parts(counts: Mapping[str, int], family: Callable[[str], str]) -> dict[str, int]:
    """{part: count} of one family, e.g. parts(counts, stored) == {"critical": 3, ...} (sorted by part)."""
    prefix = family("")
    return {name.removeprefix(prefix): value for name, value in sorted(counts.items()) if name.startswith(prefix)}


def total(counts: Mapping[str, int], family: Callable[[str], str]) -> int:
    """The sum over one family, e.g. every event stored whatever its class."""
    return sum(parts(counts, family).values())


# --- Pub/Sub message attributes: what sources publish and the alerts topic carries -------------------------------

ATTR_SOURCE = "source"
ATTR_INJECTED = "injected"  # "true" on packets of the injection test and the canary
ATTR_DEDUP_KEY = "dedup_key"
