"""A simulated night: packets drawn by a mix of sources, spread over a span of time, a share of them corrupt."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from devtools.simulator.common import draw
from devtools.simulator.corrupt import corrupt
from devtools.simulator.designed import CLASS_WEIGHTS, design_packet
from devtools.simulator.packet import DEFAULT_START, SOURCES, UTC, SimulatedPacket, State
from devtools.simulator.schema import DEFAULT_RUBIN_VERSION, parse_version, rubin_schema, ztf_schema

RUBIN_WIRES = ("container", "confluent", "both")
DEFAULT_MIX: dict[str, float] = {"ztf": 0.6, "rubin": 0.35, "gcn": 0.05}
WINDOW_SECONDS = 3600.0


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``'ztf=0.6,rubin=0.35,gcn=0.05'`` into a normalised {source: fraction} dict.

    Sources not named get 0. Raises ValueError on malformed text, unknown or repeated
    sources, negative / non-finite weights, or weights summing to zero.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("mix is empty; expected e.g. 'ztf=0.6,rubin=0.35,gcn=0.05'")
    raw: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty entry in mix {text!r}")
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise ValueError(f"bad mix entry {part!r}: expected source=weight")
        if key not in SOURCES:
            raise ValueError(f"unknown source {key!r} in mix; known sources: {', '.join(SOURCES)}")
        if key in raw:
            raise ValueError(f"source {key!r} given twice in mix")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"bad weight {value.strip()!r} for source {key!r}") from None
        raw[key] = weight
    return _normalise_mix(raw)


def _normalise_mix(mix: dict[str, float]) -> dict[str, float]:
    for key, weight in mix.items():
        if key not in SOURCES:
            raise ValueError(f"unknown source {key!r} in mix; known sources: {', '.join(SOURCES)}")
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight for {key!r} must be a finite number >= 0, got {weight!r}")
    total = float(sum(mix.values()))
    if total <= 0:
        raise ValueError("mix weights sum to zero")
    return {src: float(mix.get(src, 0.0)) / total for src in SOURCES}


def generate_packets(
    count: int,
    *,
    seed: int = 0,
    mix: dict[str, float] | None = None,
    start: datetime | None = None,
    bad_fraction: float = 0.0,
    rubin_wire: str = "container",
    rubin_version: str = DEFAULT_RUBIN_VERSION,
    span_s: float = WINDOW_SECONDS,
    class_weights: dict[str, dict[str, float]] | None = None,
) -> Iterator[SimulatedPacket]:
    """Yield ``count`` simulated packets.

    Sources are drawn by ``mix`` (default ztf 0.6, rubin 0.35, gcn 0.05); event times are
    spread (sorted) over the ``span_s`` seconds (default an hour) after ``start`` (default
    2025-09-06T02:00Z; naive datetimes are taken as UTC); ``round(count * bad_fraction)``
    packets are deliberately corrupt (true_class 'bad'). ``rubin_wire`` is 'container',
    'confluent' or 'both' (alternating);
    ``rubin_version`` picks the Rubin alert schema (default 9.0); ``class_weights`` the classes per
    source (default the design weights, every class often; ``night.NIGHT_CLASS_WEIGHTS`` a real night's).
    Arguments are validated immediately; the packets are produced lazily. Same arguments -> identical bytes.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an int >= 0, got {count!r}")
    weights = _normalise_mix(DEFAULT_MIX if mix is None else dict(mix))
    if not isinstance(bad_fraction, (int, float)) or not 0.0 <= bad_fraction <= 1.0:
        raise ValueError(f"bad_fraction must be within 0..1, got {bad_fraction!r}")
    if rubin_wire not in RUBIN_WIRES:
        raise ValueError(f"rubin_wire must be one of {RUBIN_WIRES}, got {rubin_wire!r}")
    if not span_s >= 0:
        raise ValueError(f"span_s must be >= 0, got {span_s!r}")
    if start is None:
        start = DEFAULT_START
    elif start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    else:
        start = start.astimezone(UTC)
    major, minor = parse_version(rubin_version)
    if weights["rubin"] > 0:
        rubin_schema((major, minor))  # validates the version and warms the cache
    if weights["ztf"] > 0:
        ztf_schema()
    classes = {**CLASS_WEIGHTS, **(class_weights or {})}
    return _generate(count, seed, weights, start, bad_fraction, rubin_wire, major, minor, span_s, classes)


def _generate(
    count: int,
    seed: int,
    weights: dict[str, float],
    start: datetime,
    bad_fraction: float,
    rubin_wire: str,
    major: int,
    minor: int,
    span_s: float,
    classes: dict[str, dict[str, float]],
) -> Iterator[SimulatedPacket]:
    rng = random.Random(seed)
    # a random serial base keeps GCN names / ivorns apart between runs with different seeds
    st = State(rng=rng, rubin_major=major, rubin_minor=minor, serial=rng.randrange(100_000, 900_000))
    offsets = sorted(rng.uniform(0.0, span_s) for _ in range(count))
    n_bad = min(count, round(count * bad_fraction))
    bad = set(rng.sample(range(count), n_bad)) if n_bad else set()
    for i, offset in enumerate(offsets):
        t = start + timedelta(seconds=offset)
        source = draw(rng, weights)
        cls = draw(rng, classes[source])
        wire = rubin_wire
        if wire == "both":
            wire = "container" if st.rubin_count % 2 == 0 else "confluent"
        payload, name, meta = design_packet(st, source, cls, t, wire)
        if i in bad:
            payload = corrupt(st, source, payload, meta)
            cls = "bad"
        yield SimulatedPacket(source=source, payload=payload, name=name, true_class=cls, event_time=t)
