"""Event-time windows with TestStream: metrics panes and late data, association with a late counterpart."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

import apache_beam as beam
import pytest
import sqlalchemy as sa
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.utils.timestamp import Timestamp

from core.association import Candidate, cell_of, cells_within, match
from store.schema import associations, events, metrics
from tests.test_transforms import grb, optical
from transforms.associate import AssociateSources
from transforms.metrics import Sample, WindowedMetrics


def streaming_pipeline() -> beam.Pipeline:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return beam.Pipeline(runner="BundleBasedDirectRunner", options=options)


def _rows(store):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(metrics).order_by(metrics.c.window_start)).all()


def test_metrics_follow_the_watermark_not_the_wall_clock(config, store):
    """A backlog: the watermark is an hour behind the wall clock. Packets inside their window before the watermark
    passes it are on time, however old they are by the wall clock (the wall-clock check counted them late)."""
    window_s = config.streaming.windows.metrics_s
    start = math.floor(time.time() / window_s) * window_s - 3600  # an hour behind the wall clock
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(start)
        .add_elements([beam.window.TimestampedValue(Sample("ztf", "received"), start + 1)])
        .add_elements([beam.window.TimestampedValue(Sample("ztf", "stored", 1.5), start + 2)])
        .add_elements([beam.window.TimestampedValue(Sample("ztf", "received"), start + 30)])
        .advance_watermark_to(start + window_s + 1)  # the window closes: its on-time pane fires
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        p | stream | WindowedMetrics(config, store.url, "run-t")
    rows = _rows(store)
    assert [(row.window_start.timestamp(), row.received, row.stored, row.late) for row in rows] == [(start, 2, 1, 0)]
    assert rows[0].latency_p50_s == pytest.approx(1.5, rel=0.02)


def test_metrics_late_by_pane_timing_and_beyond_lateness_counted(config, store):
    window_s = config.streaming.windows.metrics_s
    lateness = config.streaming.windows.allowed_lateness_s
    start = math.floor(time.time() / window_s) * window_s - 3 * 3600
    on_time = [Sample("ztf", "received"), Sample("ztf", "stored", 1.5), Sample("ztf", "received")]
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(start)
        .add_elements([beam.window.TimestampedValue(s, start + 1 + i) for i, s in enumerate(on_time)])
        .add_elements([beam.window.TimestampedValue(Sample("ztf", "received"), start + 5)])
        .advance_watermark_to(start + window_s + 1)  # the window closes: its on-time pane fires
        # Behind the watermark, within the allowed lateness: a LATE pane re-fires the window, counting it late.
        .add_elements([beam.window.TimestampedValue(Sample("ztf", "received"), start + 6)])
        .advance_watermark_to(start + window_s + 2)
        # Further behind than the lateness (Beam would drop it): counted late in the watermark's window instead.
        .add_elements([beam.window.TimestampedValue(Sample("ztf", "received"), start - lateness - 2 * window_s)])
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        p | stream | WindowedMetrics(config, store.url, "run-t")
    rows = _rows(store)
    assert len(rows) == 1
    first = rows[0]
    # The late packets re-fired the closed window: its row was replaced, now counting 5 received, 2 late.
    assert (first.received, first.stored, first.late) == (5, 1, 2)
    assert first.latency_p50_s == pytest.approx(1.5, rel=0.02)
    assert first.rate_per_min == pytest.approx(5 * 60 / window_s)
    assert first.expected_rate_per_min == config.sources.sources["ztf"].expected_rate_per_min


PANES: list[tuple[int, float]] = []  # the panes written, in order (module level: the runner pickles functions)


def _remember(row):
    PANES.append((row["received"], row["window_end"].timestamp()))


def test_metrics_window_fires_early_while_open(config, store):
    """The event-rate panel is live during a window: an early pane is written before the watermark closes it."""
    window_s = config.streaming.windows.metrics_s
    early_s = config.streaming.windows.early_firing_s
    start = math.floor(time.time() / window_s) * window_s - 3600
    PANES.clear()
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(start)
        .add_elements([beam.window.TimestampedValue(Sample("rubin", "received"), start + 1)] * 3)
        .advance_processing_time(early_s + 1)
        .advance_watermark_to(start + 10)  # still inside the window
        .add_elements([beam.window.TimestampedValue(Sample("rubin", "received"), start + 11)])
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        p | stream | WindowedMetrics(config, store.url, "run-t") | beam.Map(_remember)
    assert PANES[0] == (3, start + window_s)  # the early pane, before the fourth packet and the window's end
    assert [(row.received, row.late) for row in _rows(store)] == [(4, 0)]


def test_late_counterpart_is_still_associated(config, store):
    association = config.streaming.association.model_copy(update={"window_s": 60})
    config = config.model_copy(update={"streaming": config.streaming.model_copy(update={"association": association})})
    now = float(int(time.time()))  # TestStream wants whole milliseconds
    t0 = datetime.fromtimestamp(now - 300, timezone.utc)
    trigger = grb(1.0).model_copy(
        update={"event_time": t0, "received_time": t0, "event_class": "critical", "alert_level": "CRITICAL"}
    )
    counterpart = optical(ra=100.3, dec=10.2).model_copy(
        update={
            "event_time": datetime.fromtimestamp(now - 290, timezone.utc),
            "event_class": "interesting",
            "alert_level": "MEDIUM",
            "received_time": datetime.fromtimestamp(now, timezone.utc),
        }
    )
    unrelated = optical(event_id="ztf:far", ra=200.0, dec=-40.0).model_copy(
        update={"event_time": t0, "event_class": "routine", "alert_level": "LOW"}
    )
    store.add_events([trigger, counterpart, unrelated])
    window_s = config.streaming.association.window_s
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(Timestamp.of(now - 400))
        .add_elements([trigger, unrelated])
        .advance_watermark_to(Timestamp.of(now - 300 + 2 * window_s + 1))  # every window holding t0 closed
        .add_elements([counterpart])  # arrives late, within the allowed lateness
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        p | stream | AssociateSources(config, store.url)
    with store.engine.connect() as conn:
        links = conn.execute(sa.select(associations)).all()
        raised = conn.execute(sa.select(events.c.event_class).where(events.c.event_id == counterpart.event_id)).scalar()
    assert [(link.trigger_id, link.counterpart_id) for link in links] == [(trigger.event_id, counterpart.event_id)]
    assert raised == "significant"


def test_matching_respects_radius_time_and_cells(config):
    trigger = Candidate("gcn:a", "trigger", 359.5, 0.0, 2.0, 1000.0)
    near_across_zero = Candidate("ztf:1", "counterpart", 0.8, 0.5, 0.0, 1500.0)
    too_far = Candidate("ztf:2", "counterpart", 5.0, 0.0, 0.0, 1500.0)
    too_late = Candidate("ztf:3", "counterpart", 359.6, 0.1, 0.0, 1000.0 + 7200.0)
    spec = config.streaming.association.model_copy(update={"window_s": 3600})
    links = list(match([trigger, near_across_zero, too_far, too_late], spec))
    assert [link.counterpart_id for link in links] == ["ztf:1"]
    # The trigger is sent to every cell its error circle touches, including across RA 0.
    assert cell_of(0.8, 0.5) in cells_within(359.5, 0.0, 2.0)
    assert cell_of(359.9, 89.9) in cells_within(10.0, 88.5, 2.0)
