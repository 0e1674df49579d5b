"""Designed packets: one per (source, class) asked for, each designed to land in that class (the injection
test's input)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from devtools.simulator.gcn import GCN_CLASS_WEIGHTS, gcn_packet
from devtools.simulator.packet import DEFAULT_START, UTC, SimulatedPacket, State
from devtools.simulator.rubin import RUBIN_CLASS_WEIGHTS, rubin_packet
from devtools.simulator.schema import DEFAULT_RUBIN_VERSION, parse_version
from devtools.simulator.ztf import ZTF_CLASS_WEIGHTS, ztf_packet


def classes_by_source() -> dict[str, tuple[str, ...]]:
    """Which designed classes each source's simulator can make."""
    return {
        "ztf": tuple(ZTF_CLASS_WEIGHTS),
        "rubin": tuple(RUBIN_CLASS_WEIGHTS),
        "gcn": tuple(GCN_CLASS_WEIGHTS),
    }


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
        if source == "ztf":
            payload, name, _meta = ztf_packet(st, cls, t)
        elif source == "rubin":
            st.rubin_count += 1
            payload, name, _meta = rubin_packet(st, cls, t, "container")
        else:
            payload, name, _meta = gcn_packet(st, cls, t)
        yield SimulatedPacket(source=source, payload=payload, name=name, true_class=cls, event_time=t)
