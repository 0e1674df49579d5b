"""NASA GCN notices to events: unified JSON (`gcn.notices.*`, every mission) and classic VOEvent XML."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import orjson
from lxml import etree

from core.decoders.common import (
    DecodeError,
    clean,
    in_range,
    parse_iso_utc,
    position,
    validation_reason,
)
from core.event import Event, Packet

KindOf = Callable[[str, str], str]

# Where the unified JSON schema URL names the mission and instrument: .../gcn/notices/<mission>/<instrument>/...
_SCHEMA_PATH = re.compile(r"/gcn/notices/(?P<path>[^#]+?)\.schema\.json")
# Time fields in order of preference: when the event happened, then when it was reported.
_JSON_TIME_FIELDS = ("trigger_time", "observation_start", "alert_datetime", "time")
# Fermi GBM's Most_Likely_Index values that are not astrophysical: error, unreliable location,
# local particles, below the horizon, distant particles.
FERMI_NOISE_INDICES = {0, 1, 2, 3, 7}

_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)


def _event(packet: Packet, event_id: str, reason_prefix: str, **fields: Any) -> Event:
    try:
        return Event(
            event_id=event_id,
            source="gcn",
            received_time=packet.received_time,
            published_time=packet.published_time,
            raw=packet.payload,
            injected=packet.injected,
            origin=packet.origin,
            **fields,
        )
    except ValueError as exc:
        raise DecodeError(f"{reason_prefix}: {validation_reason(exc)}") from exc


def _json_number(value: Any, name: str) -> Any:
    """A JSON coordinate must be a JSON number: not a string, not a boolean (as_float says which)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise DecodeError(
            f"field {name} is a boolean, not a number: {value!r}"
            if isinstance(value, bool)
            else f"field {name} is not a number: {value!r}"
        )
    return value


def _error_radius(value: Any) -> float | None:
    """GCN `ra_dec_error`: a radius in degrees, or an ellipse [a, b, angle] taken by its semi-major axis.

    Missing (absent or null) is no radius; anything else must be a finite number in [0, 180] (NaN is refused,
    not dropped).
    """
    if value is None:
        return None
    if isinstance(value, list):
        axes = [
            in_range(_json_number(axis, "ra_dec_error"), "ra_dec_error", 0.0, 180.0)
            for axis in value[:2]
            if axis is not None
        ]
        return max(axes) if axes else None
    return in_range(_json_number(value, "ra_dec_error"), "ra_dec_error", 0.0, 180.0)


# Where orjson's sorted output may differ from `json.dumps(sort_keys=True, separators=(",", ":"))`, which the
# event ids were always digested from: floats in exponent form or below 1e-4, and non-ASCII text (escaped there).
_EXPONENT = re.compile(rb"\d[eE][-+]?\d")


def _parse_notice(payload: bytes) -> tuple[Any, bytes | None]:
    """The notice, and its canonical JSON if orjson's is byte for byte the one the ids were always made from.

    orjson parses and writes about 4-6x faster than the standard library; anything it refuses (a byte-order mark,
    NaN, integers past 64 bits) is read by the standard library as before, with the same errors.
    """
    try:
        notice = orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(notice, dict):
            canonical = orjson.dumps(notice, option=orjson.OPT_SORT_KEYS)
            same = canonical.isascii() and b"0.0000" not in canonical and _EXPONENT.search(canonical) is None
            return notice, (canonical if same else None)
        return notice, None
    try:
        return json.loads(payload.decode("utf-8-sig")), None  # a byte-order mark is allowed
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc


def decode_gcn_json(payload: bytes, packet: Packet, kind_of: KindOf) -> Event:
    notice, canonical = _parse_notice(payload)
    if not isinstance(notice, dict):
        raise DecodeError(f"not a GCN notice: JSON {type(notice).__name__}, expected an object")

    schema_url = str(notice.get("$schema") or "")
    match = _SCHEMA_PATH.search(schema_url)
    schema_path = match.group("path").split("/") if match else []
    if schema_path[:1] == ["core"]:
        raise DecodeError(f"GCN core schema fragment ({'/'.join(schema_path)}), not a notice")
    time_field = next((name for name in _JSON_TIME_FIELDS if notice.get(name)), None)
    if time_field is None:
        raise DecodeError(f"not a GCN notice: missing required field (one of {', '.join(_JSON_TIME_FIELDS)})")

    mission = str(notice.get("mission") or (schema_path[0] if schema_path else "unknown"))
    instrument = str(notice.get("instrument") or (schema_path[1] if len(schema_path) > 2 else ""))
    ids = notice.get("id")
    trigger = ids[0] if isinstance(ids, list) and ids else ids
    trigger = trigger or notice.get("trigger_number") or notice.get("event_name") or notice.get("ref_ID") or "none"
    # The same notice delivered twice has the same id; a later notice about the same trigger does not.
    if canonical is None:
        canonical = json.dumps(notice, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(canonical).hexdigest()[:12]
    schema_name = schema_path[-1].lower() if schema_path else ""
    alert_type = str(notice.get("alert_type") or "").lower()
    ra, dec = notice.get("ra"), notice.get("dec")
    where = {}
    if ra is not None or dec is not None:  # null or absent is no position; NaN, -99, true are refused
        where["ra"], where["dec"] = position(_json_number(ra, "ra"), _json_number(dec, "dec"))
        where["pos_error_deg"] = _error_radius(notice.get("ra_dec_error"))
    classification = notice.get("classification")
    likely = (
        max(classification, key=classification.get) if isinstance(classification, dict) and classification else None
    )

    quality = {
        "mission": mission,
        "instrument": instrument,
        "alert_type": alert_type or None,
        "alert_tense": notice.get("alert_tense"),
        "is_test": notice.get("alert_tense") == "test" or schema_name == "test",
        "is_retraction": alert_type == "retraction" or "retraction" in schema_name,
        "is_noise": likely is not None and "particle" in str(likely).lower(),
        "snr": clean(notice.get("rate_snr") or notice.get("snr") or notice.get("data_signif")),
        "containment_probability": clean(notice.get("containment_probability")),
        "time_field": time_field,
    }
    return _event(
        packet,
        f"gcn:{mission.lower()}:{trigger}:{digest}",
        f"GCN {mission} notice {trigger}",
        kind=kind_of(mission, instrument),
        object_id=f"{mission}:{trigger}",
        event_time=parse_iso_utc(notice[time_field], time_field),
        quality=quality,
        features={"has_position": bool(where)},
        raw_format="gcn-json",
        schema_version=schema_url or None,
        **where,
    )


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _find(root: Any, name: str) -> Any:
    """The first descendant with this local name, whatever its namespace."""
    for element in root.iter():
        if _local(element.tag) == name:
            return element
    return None


def _text(root: Any, name: str) -> str | None:
    element = _find(root, name)
    return element.text.strip() if element is not None and element.text else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _truthy(value: str | None) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def decode_voevent(payload: bytes, packet: Packet, kind_of: KindOf) -> Event:
    try:
        root = etree.fromstring(payload, parser=_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise DecodeError(f"invalid XML: {exc}") from exc
    if _local(root.tag) != "VOEvent":
        raise DecodeError(f"not a VOEvent: root element is <{_local(root.tag)}>")
    ivorn = root.get("ivorn")
    if not ivorn:
        raise DecodeError("VOEvent has no ivorn")
    role = (root.get("role") or "").lower()
    what = _find(root, "What")
    params = {}
    if what is not None:
        for param in what.iter():
            if _local(param.tag) == "Param" and param.get("name"):
                params[param.get("name")] = param.get("value")

    # ivo://nasa.gsfc.gcn/Fermi#GBM_Flt_Pos_2023-... -> mission Fermi, instrument GBM
    stream, _, fragment = ivorn.partition("#")
    mission = stream.rstrip("/").rsplit("/", 1)[-1] or "unknown"
    instrument = fragment.split("_", 1)[0] if fragment else ""
    iso_time = _text(root, "ISOTime")
    if iso_time is None:
        raise DecodeError(f"VOEvent {ivorn}: missing required field WhereWhen ISOTime")
    where = {}
    c1, c2 = _text(root, "C1"), _text(root, "C2")
    if c1 is not None or c2 is not None or _find(root, "Position2D") is not None:
        # A position that is there must parse: a damaged one is refused, never stored as "no position".
        where["ra"], where["dec"] = position(c1, c2, "C1 (ra)", "C2 (dec)")
        radius = _text(root, "Error2Radius")
        where["pos_error_deg"] = in_range(radius, "Error2Radius", 0.0, 180.0) if radius is not None else None
    most_likely = clean(params.get("Most_Likely_Index"))
    citations = _find(root, "Citations")
    retracted = citations is not None and any(
        (element.get("cite") or "").lower() == "retraction" for element in citations.iter()
    )

    quality = {
        "mission": mission,
        "instrument": instrument,
        "role": role,
        "is_test": role == "test" or _truthy(params.get("Test_Submission")) or _truthy(params.get("Test_Notice")),
        "is_retraction": retracted or "retract" in fragment.lower(),
        "is_noise": _truthy(params.get("Def_NOT_a_GRB"))
        or (mission.lower() == "fermi" and most_likely is not None and int(most_likely) in FERMI_NOISE_INDICES),
        "snr": _number(params.get("Data_Signif") or params.get("Inten_Sigma") or params.get("Rate_Signif")),
        "most_likely_index": int(most_likely) if most_likely is not None else None,
        "packet_type": params.get("Packet_Type"),
    }
    trigger = params.get("TrigID") or fragment
    return _event(
        packet,
        f"gcn:{ivorn}",
        f"VOEvent {ivorn}",
        kind=kind_of(mission, instrument),
        object_id=f"{mission}:{trigger}",
        event_time=parse_iso_utc(iso_time, "ISOTime"),
        quality=quality,
        features={"has_position": bool(where)},
        raw_format="gcn-voevent",
        schema_version=root.get("version"),
        **where,
    )
