"""Bad packets, which the pipeline cannot decode and must file as dead letters: truncated or flipped Avro, invalid
JSON, JSON with no time field at all, cut-off XML, or an impossible declination (95 deg)."""

from __future__ import annotations

import json
from typing import Any

from devtools.simulator.avro import container, schemaless
from devtools.simulator.packet import State


def _core_length(schema: dict[str, Any], record: dict[str, Any]) -> int:
    """Encoded length of the record up to (not including) its trailing cutout fields.

    Truncating inside the cutout bytes is not detected by every Avro reader (a short read
    of the last ``bytes`` field goes unnoticed), so truncations cut before them."""
    trimmed = dict(record)
    cut = 0
    for key in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
        if key in trimmed:
            trimmed[key] = None
            cut += 1
    return len(schemaless(schema, trimmed)) - cut


_GCN_TIME_FIELDS = ("trigger_time", "observation_start", "alert_datetime", "time")


def _off_sky(st: State, payload: bytes, meta: dict) -> bytes:
    """The same packet, well-formed but with an impossible declination (95 deg)."""
    wire = meta["wire"]
    if wire == "json":
        notice = {**meta["notice"], "dec": 95.0}
        notice.setdefault("ra", 180.0)
        return json.dumps(notice, indent=2).encode("utf-8")
    if wire == "xml":
        head, _, rest = meta["notice"].partition("<C2>")
        return (head + "<C2>95.0000" + rest[rest.index("</C2>") :]).encode("utf-8")
    record, schema = meta["record"], meta["schema"]
    key = "candidate" if "candidate" in record else "diaSource"
    record = {**record, key: {**record[key], "dec": 95.0}}
    if wire == "confluent":
        return payload[:5] + schemaless(schema, record)
    return container(schema, record, st.rng)


def corrupt(st: State, source: str, payload: bytes, meta: dict) -> bytes:
    """Undecodable bytes, unique per packet (a cut keeps an id or the random sync marker):
    the pipeline files dead letters by content, so two equal corrupt packets would be one."""
    rng = st.rng
    wire = meta["wire"]
    if rng.random() < 0.2:
        return _off_sky(st, payload, meta)
    if wire == "container":
        mode = rng.choice(("truncate", "truncate", "flip_sync", "flip_header"))
        if mode == "flip_header":
            # flipped magic (fastavro alone does not check it) and schema JSON start
            i = payload.index(b"{", payload.index(b"avro.schema"))
            flipped = bytes(b ^ 0x5A for b in payload[i : i + 8])
            magic = bytes(b ^ 0xFF for b in payload[:4])
            return magic + payload[4:i] + flipped + payload[i + 8 :]
        if mode == "flip_sync":
            tail = bytes(b ^ rng.randint(1, 255) for b in payload[-16:])
            return payload[:-16] + tail
        schema = meta["schema"]
        data_len = len(schemaless(schema, meta["record"]))
        data_start = len(payload) - 16 - data_len
        core = _core_length(schema, meta["record"])
        return payload[: data_start + rng.randint(0, max(0, core - 1))]
    if wire == "confluent":
        mode = rng.choice(("truncate", "truncate", "flip_magic"))
        if mode == "flip_magic":
            return bytes([rng.randint(1, 255)]) + payload[1:]
        core = _core_length(meta["schema"], meta["record"])
        return payload[: 5 + rng.randint(16, core - 1)]  # past the leading alert / source id
    if wire == "json":
        if rng.random() < 0.5:  # no time at all: not even the alert_datetime fallback
            notice = {k: v for k, v in meta["notice"].items() if k not in _GCN_TIME_FIELDS}
            return json.dumps(notice, indent=2).encode("utf-8")
        text = payload.decode("utf-8")
        after_time = text.index("\n", text.index('"trigger_time"'))  # the (unique) trigger time
        return text[: rng.randint(after_time, len(text) - 2)].encode("utf-8")
    if wire == "xml":
        return payload[: rng.randint(len(payload) // 5, len(payload) * 9 // 10)]
    raise ValueError(f"cannot corrupt wire {wire!r} of {source}")
