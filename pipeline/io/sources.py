"""Where packets come from in a batch run: files matching a glob, or the built-in simulator."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import datetime

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from config.limits import InputLimits
from core.event import Packet, utcnow

# The simulator makes its packets on the workers, in shards, so nothing large is pickled into the graph.
SIMULATOR_SHARD = 250


_GLOB_CHARS = set("*?[")
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def input_root(pattern: str) -> str:
    """The folder a glob reads under: its leading components without wildcards (made absolute, resolved)."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return os.path.realpath(os.sep.join(fixed) or ".")


def _refused(path: str, reason: str, injected: bool, prefix: bytes = b"") -> Packet:
    return Packet(payload=prefix, origin=path, received_time=utcnow(), injected=injected, refused=reason)


def _read_at_most(read, limit: int) -> bytes:
    parts, total = [], 0
    while total <= limit:
        chunk = read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def read_packet_file(path: str, root: str | None, limits: InputLimits, injected: bool = False) -> Iterator[Packet]:
    """One packet from a file, reading at most the packet limit; a non-regular file, a symlink out of the input
    root or an oversized file becomes a refused packet (one dead letter at decode). Folders are skipped."""
    if "://" in path:  # an object store: every object is a regular file; only the size is bounded
        with FileSystems.open(path) as handle:
            payload = _read_at_most(handle.read, limits.max_packet_bytes)
        yield _sized(path, payload, limits, injected)
        return
    try:
        link = os.lstat(path)
        target = os.path.realpath(path)
        if stat.S_ISLNK(link.st_mode) and root is not None and os.path.commonpath([root, target]) != root:
            yield _refused(path, f"refused: a symlink to {target}, outside the input root {root}", injected)
            return
        info = os.stat(target)
        if stat.S_ISDIR(info.st_mode):
            return
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            yield _refused(path, f"refused: {target} is {kind}, not a regular file", injected)
            return
        # O_NONBLOCK: a file swapped for a FIFO after the check cannot block the open; fstat checks again.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                yield _refused(path, f"refused: {target} is not a regular file", injected)
                return
            payload = _read_at_most(handle.read, limits.max_packet_bytes)
    except OSError as exc:
        yield _refused(path, f"cannot read the file: {exc.strerror or exc}", injected)
        return
    yield _sized(path, payload, limits, injected)


def _sized(path: str, payload: bytes, limits: InputLimits, injected: bool) -> Packet:
    if len(payload) > limits.max_packet_bytes:
        reason = (
            f"packet of more than {limits.max_packet_bytes} bytes is over the limit "
            f"(its first {limits.dead_letter_prefix_bytes} bytes kept)"
        )
        return _refused(path, reason, injected, payload[: limits.dead_letter_prefix_bytes])
    return Packet(payload=payload, origin=path, received_time=utcnow(), injected=injected)


class ReadPacketFiles(beam.PTransform):
    """Every file matching the glob, one packet per file (flagged injected for the injection test).

    Files are read by `read_packet_file`: regular files only, within the input root, at most the packet limit.
    """

    def __init__(self, pattern: str, injected: bool = False, limits: InputLimits | None = None):
        super().__init__()
        self._pattern = pattern
        self._injected = injected
        self._limits = limits or InputLimits()

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        root = None if "://" in self._pattern else input_root(self._pattern)
        return (
            pipeline
            | "Match" >> fileio.MatchFiles(self._pattern)
            # A fusion break after matching: the files (not the one pattern) are the next stage's input, so a
            # runner can split them among its workers (the FnApiRunner's 2 workers, Dask's partitions).
            | "SpreadFiles" >> beam.Reshuffle()
            | "ToPacket"
            >> beam.FlatMap(
                lambda metadata, root, limits, injected: read_packet_file(metadata.path, root, limits, injected),
                root=root,
                limits=self._limits,
                injected=self._injected,
            )
        )


def _simulate_shard(
    shard: tuple[int, int],
    seed: int,
    mix: dict[str, float] | None,
    start: datetime | None,
    bad_fraction: float,
    night: dict | None = None,
) -> Iterator[Packet]:
    from devtools.simulator import generate_packets

    index, count = shard
    # A night (`night`: its class weights and time span) or the design weights over the simulator's hour.
    made = generate_packets(
        count, seed=seed * 100_003 + index, mix=mix, start=start, bad_fraction=bad_fraction, **(night or {})
    )
    for packet in made:
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
        night: dict | None = None,
    ):
        super().__init__()
        self._night = night
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
                _simulate_shard,
                seed=self._seed,
                mix=self._mix,
                start=self._start,
                bad_fraction=self._bad_fraction,
                night=self._night,
            )
        )
