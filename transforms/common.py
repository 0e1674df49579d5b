"""What every processing step shares: the dead-letter output, metrics, and never raising on input."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from core import names, telemetry
from core.event import DeadLetter, Event
from transforms import coders  # noqa: F401 - registers the events' coder

METRICS_NAMESPACE = names.METRICS_NAMESPACE
DEAD_LETTER = "dead_letter"


# The local streaming runner reports only part of a running job's Beam metrics, so in-process runs also keep
# their own tally: what `nightwatch stream` uses to show progress, drain and account. Other runners use Beam's.
_LOCAL_COUNTS: Counter[str] = Counter()
_LOCAL_LOCK = threading.Lock()


# Beam counters also counted in the process's Prometheus metrics as they are (the per-source ones are counted
# from the metrics samples: transforms/metrics.py `observe`).
_PROMETHEUS = {names.INGESTED: telemetry.PACKETS_INGESTED, names.ASSOCIATIONS_NEW: telemetry.ASSOCIATION_LINKS}


class _Counter:
    def __init__(self, name: str):
        self._name = name
        self._metric = Metrics.counter(METRICS_NAMESPACE, name)
        self._prometheus = _PROMETHEUS.get(name)

    def inc(self, n: int = 1) -> None:
        self._metric.inc(n)
        if self._prometheus is not None:
            self._prometheus.inc(n)
        with _LOCAL_LOCK:
            _LOCAL_COUNTS[self._name] += n


@functools.cache
def counter(name: str) -> _Counter:
    # One object per name: Beam resolves a counter's cell when it is incremented, so reuse is safe, and the
    # per-element path does not build a metric object each time.
    return _Counter(name)


def local_counts() -> dict[str, int]:
    """This process's tally of the counters since the last reset."""
    with _LOCAL_LOCK:
        return dict(_LOCAL_COUNTS)


def reset_local_counts() -> None:
    with _LOCAL_LOCK:
        _LOCAL_COUNTS.clear()


def dead_letter_for(event: Event, stage: str, exc: BaseException, reason: str | None = None) -> pvalue.TaggedOutput:
    """An event that failed a step, with its raw bytes, as a dead letter on the tagged output."""
    letter = DeadLetter(
        source=event.source,
        stage=stage,
        reason=reason or f"{type(exc).__name__}: {exc}",
        payload=event.raw,
        origin=event.origin,
        event_id=event.event_id,
        received_time=event.received_time,
        injected=event.injected,
    )
    return pvalue.TaggedOutput(DEAD_LETTER, letter)


class EventStep(beam.DoFn):
    """A per-event step that routes any failure to the dead-letter output instead of raising.

    Streaming runners retry a raising bundle forever, so a bad event must never raise.
    """

    stage = "step"

    def transform(self, event: Event) -> Iterable[Any]:
        raise NotImplementedError

    def process(self, event: Event) -> Iterator[Any]:
        try:
            yield from self.transform(event)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a dead letter
            counter(names.failed(self.stage)).inc()
            yield dead_letter_for(event, self.stage, exc)


class StepTransform(beam.PTransform):
    """A configured step as a composite transform: outputs `events` and `dead_letter`.

    Subclasses name their DoFn (built from the config and the options) and the label of its ParDo.
    """

    step_label = "Step"

    def __init__(self, config: Any, **options: Any):
        super().__init__()
        self._config = config
        self._options = options

    def make_dofn(self) -> beam.DoFn:
        raise NotImplementedError

    def expand(self, pcoll: beam.PCollection) -> pvalue.DoOutputsTuple:
        step = beam.ParDo(self.make_dofn()).with_output_types(Event)  # the events' coder across stages
        return pcoll | self.step_label >> step.with_outputs(DEAD_LETTER, main="events")
