"""Decode and validate: packets in, events and dead letters out."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from config.settings import NightwatchConfig
from core import names
from core.decoders import DecodeFailure, PacketDecoder, guess_source
from core.event import DeadLetter, Packet
from transforms.common import DEAD_LETTER, StepTransform, counter

log = logging.getLogger("nightwatch.progress")
PROGRESS_EVERY_S = 10.0


class DecodeDoFn(beam.DoFn):
    """One packet in; one event per alert it holds, or dead letters saying why not."""

    def __init__(self, config: NightwatchConfig):
        # Only the slices it reads travel with the step.
        self._sources = config.sources
        self._limits = config.limits.input
        self._decoder: PacketDecoder | None = None

    def setup(self) -> None:
        self._decoder = PacketDecoder(self._sources, self._limits)
        self._seen = 0
        self._last_report = time.monotonic()

    def _report_progress(self) -> None:
        """Long jobs say how far they are, every few seconds, per worker."""
        self._seen += 1
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_EVERY_S:
            log.info("decoded %d packets so far on this worker", self._seen)
            self._last_report = now

    def process(self, packet: Packet) -> Iterator[Any]:
        counter(names.PACKETS).inc()
        self._report_progress()
        try:
            results = self._decoder.decode(packet)
        except Exception as exc:  # noqa: BLE001 - the decoder should not raise; if it does, keep the bytes
            results = [
                DecodeFailure(guess_source(packet), f"decoder failed: {type(exc).__name__}: {exc}", packet.payload)
            ]
        for result in results:
            counter(names.RECEIVED).inc()
            counter(names.received(result.source)).inc()
            if isinstance(result, DecodeFailure):
                yield pvalue.TaggedOutput(
                    DEAD_LETTER,
                    DeadLetter(
                        source=result.source,
                        stage=names.DECODE,
                        reason=result.reason,
                        payload=result.payload,
                        origin=packet.origin,
                        event_id=result.event_id,
                        received_time=packet.received_time,
                        injected=packet.injected,
                    ),
                )
            else:
                yield result


class DecodePackets(StepTransform):
    """Packets to events; outputs `events` and `dead_letter`."""

    step_label = "DecodePacket"

    def make_dofn(self) -> beam.DoFn:
        return DecodeDoFn(self._config)
