"""The graph at scale: tier writes batched on sharded keys (no hot key), latency percentiles from a sketch."""

from __future__ import annotations

from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.io.sinks import WriteTier, shard_of
from store import files
from store.tiers import join
from tests.test_transforms import optical
from transforms.metrics import Sample, Stats


def test_tier_writes_on_a_skewed_night_are_bounded_and_sharded(tmp_path, beam_pipeline):
    """A night of routine events all in one partition (night, class): no file holds more than the batch size, and
    the partition's events are spread over every shard, not grouped into one list on one worker."""
    count, batch_max, shards = 1200, 50, 4
    events = [
        optical(event_id=f"ztf:{i}", event_class="routine", night="2026-11-27").model_copy(update={"raw": b""})
        for i in range(count)
    ]
    root = str(tmp_path / "warm")
    with beam_pipeline as p:
        p | beam.Create(events) | WriteTier(root, "warm", batch_max=batch_max, shards=shards)
    paths = files.match(join(root, "night=2026-11-27", "class=routine", "*.parquet"))
    ids_per_file = [pq.read_table(path, columns=["event_id"]).column(0).to_pylist() for path in paths]
    sizes = [len(ids) for ids in ids_per_file]
    assert sum(sizes) == count and len({i for ids in ids_per_file for i in ids}) == count
    assert max(sizes) <= batch_max  # bounded: before, one file (and one list) held the whole partition
    shards_per_file = [{shard_of(i, shards) for i in ids} for ids in ids_per_file]
    assert all(len(found) == 1 for found in shards_per_file)  # a batch never mixes shards
    assert Counter(next(iter(found)) for found in shards_per_file).keys() == set(range(shards))


def test_latency_percentiles_from_the_sketch_match_exact_ones():
    rng = np.random.default_rng(3)
    latencies = rng.lognormal(mean=1.0, sigma=1.0, size=20_000)
    parts = [Stats() for _ in range(7)]  # partial aggregates of bundles, merged as the windows merge them
    for i, latency in enumerate(latencies):
        parts[i % 7].add(Sample("rubin", "stored", float(latency)))
    merged = Stats()
    for part in parts:
        merged.merge(part)
    assert merged.counts["stored"] == len(latencies)
    for q in (0.5, 0.95, 0.99):
        assert merged.quantile(q) == pytest.approx(float(np.quantile(latencies, q)), rel=0.02)
    # Bounded: the sketch keeps buckets, not latencies.
    assert len(merged.latencies._store.bins) < 1000


def test_warm_and_archive_batches_in_one_stage_both_flush_at_the_end(tmp_path, beam_pipeline):
    """Two batching steps fused into one FnApiRunner stage each get their end-of-window flush (with Beam's own
    GroupIntoBatches, whose timers share a name, one of them lost its last batches: pipeline/io/batching.py)."""
    events = [optical(event_id=f"ztf:{i}", event_class="routine", night="2026-11-27") for i in range(30)]
    with beam_pipeline as p:
        both = p | beam.Create(events)
        both | "Warm" >> WriteTier(str(tmp_path / "warm"), "warm", batch_max=1000)
        both | "Archive" >> WriteTier(str(tmp_path / "archive"), "archive", batch_max=1000)
    from store.tiers import read_archive, read_warm

    assert read_warm(str(tmp_path / "warm")).num_rows == 30
    assert len(read_archive(str(tmp_path / "archive"))) == 30
