"""Bounded batches per key, in the elements' own time: Beam's GroupIntoBatches, with timer names of its own.

Why not `beam.GroupIntoBatches` itself: its timers are named `window_end` and `buffering_end` in every instance,
and the FnApiRunner (Beam 2.77) keeps a fused stage's timers in one buffer per timer *name*
(`fn_api_runner/execution.py`, `create_buffer_id(timer_family_id, 'timers')`, no transform id): two
GroupIntoBatches fused into one stage (the warm and the archive writers) share it, and one of them never gets
its end-of-window flush (its last partial batches are lost without a word; `tests/test_scale.py` shows it).
Here each use names its timers and state after itself. Otherwise the same semantics: a batch goes out when it
holds `batch_size` elements, when the window ends (the watermark, so a batch job flushes at its end), or, with
`buffering_s`, that long after its first element (processing time, so a slow stream still writes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.coders.coders import Coder
from apache_beam.transforms import userstate
from apache_beam.transforms.combiners import CountCombineFn
from apache_beam.transforms.timeutil import TimeDomain


def _batching_dofn(name: str, value_coder: Coder, batch_size: int, buffering_s: float | None) -> beam.DoFn:
    values = userstate.BagStateSpec(f"{name}_values", value_coder)
    count = userstate.CombiningValueStateSpec(f"{name}_count", VarIntCoder(), CountCombineFn())
    window_end = userstate.TimerSpec(f"{name}_window_end", TimeDomain.WATERMARK)
    buffering_end = userstate.TimerSpec(f"{name}_buffering_end", TimeDomain.REAL_TIME)

    class _BatchPerKey(beam.DoFn):
        def process(
            self,
            element: tuple[Any, Any],
            win: Any = beam.DoFn.WindowParam,
            value_state: Any = beam.DoFn.StateParam(values),
            count_state: Any = beam.DoFn.StateParam(count),
            window_timer: Any = beam.DoFn.TimerParam(window_end),
            buffering_timer: Any = beam.DoFn.TimerParam(buffering_end),
        ) -> Iterator[tuple[Any, list[Any]]]:
            key, value = element
            window_timer.set(win.end)
            value_state.add(value)
            count_state.add(1)
            held = count_state.read()
            if held == 1 and buffering_s:
                buffering_timer.set(time.time() + buffering_s)  # a processing-time deadline, not an event time
            if held >= batch_size:
                yield from self._flush(key, value_state, count_state, buffering_timer)

        @userstate.on_timer(window_end)
        def _at_window_end(
            self,
            key: Any = beam.DoFn.KeyParam,
            value_state: Any = beam.DoFn.StateParam(values),
            count_state: Any = beam.DoFn.StateParam(count),
            buffering_timer: Any = beam.DoFn.TimerParam(buffering_end),
        ) -> Iterator[tuple[Any, list[Any]]]:
            yield from self._flush(key, value_state, count_state, buffering_timer)

        @userstate.on_timer(buffering_end)
        def _at_buffering_end(
            self,
            key: Any = beam.DoFn.KeyParam,
            value_state: Any = beam.DoFn.StateParam(values),
            count_state: Any = beam.DoFn.StateParam(count),
            buffering_timer: Any = beam.DoFn.TimerParam(buffering_end),
        ) -> Iterator[tuple[Any, list[Any]]]:
            yield from self._flush(key, value_state, count_state, buffering_timer)

        @staticmethod
        def _flush(key: Any, value_state: Any, count_state: Any, buffering_timer: Any) -> Iterator[Any]:
            batch = list(value_state.read())
            value_state.clear()
            count_state.clear()
            buffering_timer.clear()
            if batch:
                yield key, batch

    return _BatchPerKey()


class BatchPerKey(beam.PTransform):
    """`(key, value)` in; `(key, [value, ...])` out, at most `batch_size` values each (see the module)."""

    def __init__(self, name: str, batch_size: int, buffering_s: float | None = None):
        super().__init__()
        self.name = name
        self.batch_size = batch_size
        self.buffering_s = buffering_s

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        from apache_beam import typehints

        key_type, value_type = pcoll.element_type.tuple_types
        value_coder = beam.coders.registry.get_coder(value_type)
        dofn = _batching_dofn(self.name, value_coder, self.batch_size, self.buffering_s)
        return pcoll | beam.ParDo(dofn).with_output_types(typehints.Tuple[key_type, typehints.List[value_type]])
