"""The simulator's packet, the state one run of the generator carries, and writing packets to files."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

UTC = timezone.utc
SOURCES = ("ztf", "rubin", "gcn")
CLASSES = ("critical", "significant", "interesting", "routine", "rejected", "bad")
DEFAULT_START = datetime(2025, 9, 6, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SimulatedPacket:
    """One simulated packet: its bytes in the real wire format plus the designed class."""

    source: str
    payload: bytes
    name: str
    true_class: str
    event_time: datetime | None = None  # when the event happened (what a publisher puts in `event_time`)


def write_packets(packets: Iterable[SimulatedPacket], out_dir: Path) -> int:
    """Write each packet to ``out_dir/<packet.name>``; return how many were written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for packet in packets:
        name = packet.name
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"unsafe packet file name {name!r}")
        (out / name).write_bytes(packet.payload)
        written += 1
    return written


@dataclass
class State:
    """What one run of the generator carries from packet to packet: its random source, the Rubin schema
    version, the ids already used (kept unique within a run) and a serial number."""

    rng: random.Random
    rubin_major: int
    rubin_minor: int
    used: set[Any] = field(default_factory=set)
    serial: int = 0
    rubin_count: int = 0

    def unique(self, value: Any, bump: Any = 1) -> Any:
        """Return ``value`` or the next free one (``value + bump`` ...)."""
        while value in self.used:
            value = value + bump
        self.used.add(value)
        return value

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial
