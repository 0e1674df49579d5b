"""Packet bytes to events: format detection and the decoder for each real-world format.

`PacketDecoder.decode` never raises for bad input: it returns events and `DecodeFailure`s, one per
alert that could not be decoded (a corrupt packet is one failure).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

import fastavro

from config.limits import InputLimits
from config.settings import SourcesConfig
from core.decoders.common import DecodeError, safe_reason, storable
from core.decoders.container import read_container_checked
from core.decoders.gcn import decode_gcn_json, decode_voevent
from core.decoders.rubin import decode_rubin, is_rubin_schema, registry
from core.decoders.ztf import decode_ztf, is_ztf_schema
from core.event import Event, Packet

AVRO_CONTAINER_MAGIC = b"Obj\x01"
CONFLUENT_MAGIC = 0
# Formats are recognised by their bytes; this is the source a wire format belongs to.
WIRE_SOURCE = {"rubin-confluent": "rubin", "gcn-json": "gcn", "gcn-voevent": "gcn"}


@dataclass(frozen=True)
class DecodeFailure:
    source: str
    reason: str
    payload: bytes
    event_id: str | None = None


# XML in UTF-16 or UTF-32, with a byte-order mark or without (then `<?` in that encoding; XML 1.0 appendix F).
_WIDE_XML_STARTS = (
    b"\x00\x00\xfe\xff",
    b"\xff\xfe\x00\x00",
    b"\xfe\xff",
    b"\xff\xfe",
    b"\x00\x00\x00<",
    b"<\x00\x00\x00",
    b"\x00<\x00?",
    b"<\x00?\x00",
)


def sniff(payload: bytes) -> str:
    """The packet's wire format from its first bytes."""
    if payload.startswith(AVRO_CONTAINER_MAGIC):
        return "avro-container"
    if payload.startswith(_WIDE_XML_STARTS):
        return "gcn-voevent"
    if len(payload) > 5 and payload[0] == CONFLUENT_MAGIC:
        return "rubin-confluent"
    head = payload[:4096].lstrip()[:64]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if head.startswith(b"{") or head.startswith(b"["):
        return "gcn-json"
    if head.startswith(b"<"):
        return "gcn-voevent"
    if not payload:
        raise DecodeError("empty packet")
    raise DecodeError(f"unknown format: first bytes {payload[:8]!r} are not Avro, Confluent Avro, JSON or XML")


def guess_source(packet: Packet) -> str:
    """The source a packet most likely came from, to label it when it cannot be decoded."""
    if packet.source_hint:
        return packet.source_hint
    try:
        wire = sniff(packet.payload)
    except DecodeError:
        return "unknown"
    if wire == "avro-container":  # the schema sits in the header: a damaged packet still names its fields
        header = packet.payload[:65536]
        return "ztf" if b'"candidate"' in header else "rubin" if b'"diaSource"' in header else "unknown"
    return WIRE_SOURCE[wire]


def _source_of(schema: dict[str, Any]) -> tuple[str, str]:
    """The source and raw format of an Avro container by its writer schema."""
    if is_ztf_schema(schema):
        return "ztf", "ztf-avro"
    if is_rubin_schema(schema):
        return "rubin", "rubin-avro"
    raise DecodeError(f"unknown Avro schema {schema.get('name')!r}: neither ZTF (candidate) nor Rubin (diaSource)")


def _single_record_container(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [record], codec="null")
    return buffer.getvalue()


class PacketDecoder:
    """Decodes packets of every supported format into events."""

    def __init__(self, sources: SourcesConfig, limits: InputLimits | None = None):
        self._sources = sources
        self._limits = limits or InputLimits()
        self._registry = registry(sources.sources["rubin"].schema_dir if "rubin" in sources.sources else "")

    def decode(self, packet: Packet) -> list[Event | DecodeFailure]:
        """Events and failures; every event fits every supported store, every reason is one clean line."""
        results = []
        for result in self._decode(packet):
            if isinstance(result, Event):
                problem = storable(result)
                if problem:
                    result = DecodeFailure(result.source, problem, result.raw or packet.payload)
            if isinstance(result, DecodeFailure):
                result = DecodeFailure(result.source, safe_reason(result.reason), result.payload, result.event_id)
            results.append(result)
        return results

    def _refusal(self, packet: Packet, reason: str) -> list[Event | DecodeFailure]:
        """A packet refused whole: its first bytes are kept (keeping all of it is what the limit prevents)."""
        prefix = packet.payload[: self._limits.dead_letter_prefix_bytes]
        return [DecodeFailure(guess_source(packet), reason, prefix)]

    def _decode(self, packet: Packet) -> list[Event | DecodeFailure]:
        if packet.refused:
            return self._refusal(packet, packet.refused)
        if len(packet.payload) > self._limits.max_packet_bytes:
            return self._refusal(
                packet,
                f"packet of {len(packet.payload)} bytes is over the limit of {self._limits.max_packet_bytes} bytes "
                f"(its first {self._limits.dead_letter_prefix_bytes} bytes kept)",
            )
        try:
            wire = sniff(packet.payload)
            if wire == "avro-container":
                return self._decode_container(packet)
            if wire == "rubin-confluent":
                return [self._decode_confluent(packet)]
            kind_of = self._sources.gcn_kind
            if wire == "gcn-json":
                return [decode_gcn_json(packet.payload, packet, kind_of)]
            return [decode_voevent(packet.payload, packet, kind_of)]
        except DecodeError as exc:
            return [DecodeFailure(guess_source(packet), str(exc), packet.payload)]
        except Exception as exc:  # noqa: BLE001 - any library failure on hostile bytes is a bad packet
            reason = f"cannot decode: {type(exc).__name__}: {exc}"
            return [DecodeFailure(guess_source(packet), reason, packet.payload)]

    def _decode_container(self, packet: Packet) -> list[Event | DecodeFailure]:
        """Every record of the container, read within the limits (container.py says how)."""
        schema, records = read_container_checked(
            packet.payload, self._limits, lambda writer_schema: _source_of(writer_schema)[0]
        )
        source, raw_format = _source_of(schema)
        if not records:
            raise DecodeError(f"{source} Avro container holds no alerts")
        return self._decode_records(packet, schema, records, source, raw_format)

    @staticmethod
    def _decode_records(
        packet: Packet, schema: dict[str, Any], records: list[dict[str, Any]], source: str, raw_format: str
    ) -> list[Event | DecodeFailure]:
        results: list[Event | DecodeFailure] = []
        for record in records:
            raw = packet.payload if len(records) == 1 else _single_record_container(schema, record)
            try:
                if source == "ztf":
                    results.append(decode_ztf(record, raw=raw, packet=packet, schema_version=schema.get("version")))
                else:
                    results.append(decode_rubin(record, raw=raw, packet=packet, schema=schema, raw_format=raw_format))
            except DecodeError as exc:
                results.append(DecodeFailure(source, str(exc), raw))
            except Exception as exc:  # noqa: BLE001 - a record with wrong types
                results.append(DecodeFailure(source, f"schema mismatch: {type(exc).__name__}: {exc}", raw))
        return results

    def _decode_confluent(self, packet: Packet) -> Event:
        (schema_id,) = struct.unpack(">I", packet.payload[1:5])
        schema = self._registry.get(schema_id)
        body = io.BytesIO(packet.payload[5:])
        try:
            record = fastavro.schemaless_reader(body, schema, None)
        except Exception as exc:  # noqa: BLE001
            raise DecodeError(
                f"Rubin record does not match schema id {schema_id}: {type(exc).__name__}: {exc}"
            ) from exc
        leftover = len(packet.payload) - 5 - body.tell()
        if leftover:
            raise DecodeError(f"Rubin record does not match schema id {schema_id}: {leftover} bytes left over")
        return decode_rubin(record, raw=packet.payload, packet=packet, schema=schema, raw_format="rubin-confluent")
