"""Designed packets: a packet of a source designed to land in a class (what every simulated packet is made by),
and one such packet per (source, class) asked for (the injection test's input)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from devtools.simulator.gcn import GCN_CLASS_WEIGHTS, gcn_packet
from devtools.simulator.packet import DEFAULT_START, UTC, SimulatedPacket, State
from devtools.simulator.rubin import RUBIN_CLASS_WEIGHTS, rubin_packet
from devtools.simulator.schema import DEFAULT_RUBIN_VERSION, parse_version
from devtools.simulator.ztf import ZTF_CLASS_WEIGHTS, ztf_packet

# Class design weights per source (the "bad" share is set by bad_fraction on top).
CLASS_WEIGHTS: dict[str, dict[str, float]] = {
    "ztf": ZTF_CLASS_WEIGHTS,
    "rubin": RUBIN_CLASS_WEIGHTS,
    "gcn": GCN_CLASS_WEIGHTS,
}


def classes_by_source() -> dict[str, tuple[str, ...]]:
    """Which designed classes each source's simulator can make."""
    return {source: tuple(weights) for source, weights in CLASS_WEIGHTS.items()}


def design_packet(st: State, source: str, cls: str, t: datetime, rubin_wire: str) -> tuple[bytes, str, dict]:
    """A ``source`` packet designed to land in ``cls`` at ``t``: (payload, file name, what ``corrupt`` needs to
    spoil it). Rubin packets go out in ``rubin_wire`` ('container' or 'confluent')."""
    if source == "ztf":
        return ztf_packet(st, cls, t)
    if source == "rubin":
        st.rubin_count += 1
        return rubin_packet(st, cls, t, rubin_wire)
    return gcn_packet(st, cls, t)


def designed_packets(
    plan: Iterable[tuple[str, str]], *, seed: int = 0, start: datetime | None = None, span_s: float = 60.0
) -> Iterator[SimulatedPacket]:
    """One packet per (source, class) of `plan`, designed to land in that class (the injection test's input)."""
    plan = list(plan)
    possible = classes_by_source()
    for source, cls in plan:
        if cls not in possible.get(source, ()):
            raise ValueError(f"the simulator cannot make a {cls} {source} packet; it makes {possible.get(source)}")
    start = (start or DEFAULT_START).astimezone(UTC)
    rng = random.Random(seed)
    major, minor = parse_version(DEFAULT_RUBIN_VERSION)
    st = State(rng=rng, rubin_major=major, rubin_minor=minor, serial=rng.randrange(100_000, 900_000))
    offsets = sorted(rng.uniform(0.0, span_s) for _ in plan)
    for (source, cls), offset in zip(plan, offsets, strict=True):
        t = start + timedelta(seconds=offset)
        payload, name, _meta = design_packet(st, source, cls, t, "container")
        yield SimulatedPacket(source=source, payload=payload, name=name, true_class=cls, event_time=t)
