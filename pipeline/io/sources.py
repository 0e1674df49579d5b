"""Where packets come from in a batch run: files matching a glob, or the built-in simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import apache_beam as beam
from apache_beam.io import fileio

from core.event import Packet, utcnow

# The simulator makes its packets on the workers, in shards, so nothing large is pickled into the graph.
SIMULATOR_SHARD = 250


def packet_from_file(readable: fileio.ReadableFile, injected: bool = False) -> Packet:
    return Packet(payload=readable.read(), origin=readable.metadata.path, received_time=utcnow(), injected=injected)


class ReadPacketFiles(beam.PTransform):
    """Every file matching the glob, one packet per file (flagged injected for the injection test)."""

    def __init__(self, pattern: str, injected: bool = False):
        super().__init__()
        self._pattern = pattern
        self._injected = injected

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pipeline
            | "Match" >> fileio.MatchFiles(self._pattern)
            | "Open" >> fileio.ReadMatches()
            | "ToPacket" >> beam.Map(packet_from_file, injected=self._injected)
        )


def _simulate_shard(
    shard: tuple[int, int], seed: int, mix: dict[str, float] | None, start: datetime | None, bad_fraction: float
) -> Iterator[Packet]:
    from devtools.simulator import generate_packets

    index, count = shard
    for packet in generate_packets(count, seed=seed * 100_003 + index, mix=mix, start=start, bad_fraction=bad_fraction):
        yield Packet(
            payload=packet.payload,
            origin=f"simulator:{packet.name}",
            source_hint=packet.source,
            received_time=utcnow(),
        )


class SimulatedPackets(beam.PTransform):
    """`count` realistic packets in the real formats, made on the workers in shards."""

    def __init__(
        self,
        count: int,
        seed: int = 0,
        mix: dict[str, float] | None = None,
        start: datetime | None = None,
        bad_fraction: float = 0.01,
    ):
        super().__init__()
        self._count = count
        self._seed = seed
        self._mix = mix
        self._start = start
        self._bad_fraction = bad_fraction

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        shards = [
            (index, min(SIMULATOR_SHARD, self._count - offset))
            for index, offset in enumerate(range(0, self._count, SIMULATOR_SHARD))
        ]
        return (
            pipeline
            | "Shards" >> beam.Create(shards)
            | "Generate"
            >> beam.FlatMap(
                _simulate_shard, seed=self._seed, mix=self._mix, start=self._start, bad_fraction=self._bad_fraction
            )
        )
