"""Rubin/LSST alert records (schemas v7 to v11, any record name) to events; the local schema registry."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

from core.decoders.common import (
    DecodeError,
    as_float,
    clean,
    flux_njy_to_mag,
    mjd_tai_to_datetime,
    require,
    rise_rate,
    validation_reason,
)
from core.decoders.lightcurve import rubin_points
from core.event import Event, Packet

# Centre-pixel problems that make a detection unreliable.
BAD_PIXEL_FLAGS = (
    "pixelFlags_bad",
    "pixelFlags_saturatedCenter",
    "pixelFlags_crCenter",
    "pixelFlags_nodataCenter",
    "pixelFlags_suspectCenter",
    "pixelFlags_streakCenter",
    "pixelFlags_offimage",
    "pixelFlags_edge",
)


def is_rubin_schema(schema: dict[str, Any]) -> bool:
    return any(field.get("name") == "diaSource" for field in schema.get("fields", []))


def schema_id_for(major: int, minor: int) -> int:
    """Rubin's registry id: the major version, then the minor in two digits (v9.0 -> 900, v11.1 -> 1101)."""
    return major * 100 + minor


def _package_schema_root() -> Path | None:
    spec = importlib.util.find_spec("lsst.alert.packet")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


def _parse_folder(folder: Path) -> dict[str, Any]:
    """Parse every .avsc in a version folder, dependencies first; return the parsed alert schema."""
    pending = {path: json.loads(path.read_text()) for path in sorted(folder.glob("*.avsc"))}
    named: dict[str, Any] = {}
    alert = None
    while pending:
        progressed = False
        for path, definition in list(pending.items()):
            try:
                parsed = fastavro.parse_schema(definition, named_schemas=named)
            except fastavro.schema.UnknownType:
                continue
            progressed = True
            del pending[path]
            if definition.get("name") == "alert":
                alert = parsed
        if not progressed:
            raise DecodeError(f"Rubin schemas in {folder} reference unknown types")
    if alert is None:
        raise DecodeError(f"no alert schema in {folder}")
    return alert


class RubinSchemaRegistry:
    """Schemas for the Confluent wire format, held locally: a configured folder, then lsst-alert-packet's."""

    def __init__(self, extra_dir: str | Path | None = None):
        self._folders: dict[int, Path] = {}
        roots = [Path(extra_dir)] if extra_dir else []
        package_root = _package_schema_root()
        if package_root is not None:
            roots.append(package_root)
        for root in reversed(roots):  # earlier roots win
            for folder in root.glob("*/*"):
                if folder.is_dir() and re.fullmatch(r"\d+", folder.parent.name) and re.fullmatch(r"\d+", folder.name):
                    self._folders[schema_id_for(int(folder.parent.name), int(folder.name))] = folder
        self._parsed: dict[int, Any] = {}

    def known_ids(self) -> list[int]:
        return sorted(self._folders)

    def get(self, schema_id: int) -> Any:
        if schema_id not in self._folders:
            raise DecodeError(f"unknown Rubin schema id {schema_id} (known: {', '.join(map(str, self.known_ids()))})")
        if schema_id not in self._parsed:
            self._parsed[schema_id] = _parse_folder(self._folders[schema_id])
        return self._parsed[schema_id]


@lru_cache(maxsize=4)
def registry(extra_dir: str = "") -> RubinSchemaRegistry:
    return RubinSchemaRegistry(extra_dir or None)


def _version_from(schema: dict[str, Any], record: dict[str, Any]) -> str | None:
    named = record.get("lsst_schema_version") or schema.get("namespace") or schema.get("name") or ""
    match = re.search(r"v(\d+)_(\d+)", str(named))
    return f"{match.group(1)}.{match.group(2)}" if match else None


def decode_rubin(
    record: dict[str, Any], *, raw: bytes, packet: Packet, schema: dict[str, Any], raw_format: str
) -> Event:
    source = require(record, "diaSource")
    source_id = require(record, "diaSource", "diaSourceId")
    mjd = as_float(require(record, "diaSource", "midpointMjdTai"), "diaSource.midpointMjdTai")
    ra = as_float(require(record, "diaSource", "ra"), "diaSource.ra")
    dec = as_float(require(record, "diaSource", "dec"), "diaSource.dec")
    band = source.get("band") or source.get("filterName")
    mag, mag_err = flux_njy_to_mag(source.get("psfFlux"), source.get("psfFluxErr"))
    errors = [clean(source.get(name)) for name in ("raErr", "decErr")]
    errors = [abs(value) for value in errors if value is not None]
    ss_object_id = clean(source.get("ssObjectId"))

    quality = {
        "reliability": clean(source.get("reliability")),
        "snr": clean(source.get("snr")),
        "pixel_flags_bad": any(bool(source.get(name)) for name in BAD_PIXEL_FLAGS),
        "is_dipole": bool(source.get("isDipole")) if "isDipole" in source else None,
        "is_negative": bool(source.get("isNegative")) if "isNegative" in source else None,
        "ss_object": bool(ss_object_id) or record.get("ssSource") is not None,
        "extendedness": clean(source.get("extendedness")),
        "has_cutouts": record.get("cutoutDifference") is not None,
    }

    previous = [
        (prv.get("midpointMjdTai"), flux_njy_to_mag(prv.get("psfFlux"), None)[0])
        for prv in record.get("prvDiaSources") or []
        if prv.get("midpointMjdTai") is not None and (prv.get("band") or prv.get("filterName")) == band
    ]
    all_previous = [prv.get("midpointMjdTai") for prv in record.get("prvDiaSources") or []]
    all_previous = [day for day in all_previous if day is not None and day < mjd]
    rate = rise_rate(previous, mjd, mag)
    features = {
        "n_prior": len(all_previous),
        "days_since_first": mjd - min(all_previous) if all_previous else 0.0,
        "rise_rate_mag_per_day": rate,
        "rising_or_new": (rate is not None and rate >= 0.3) or not all_previous,
        # Rubin alerts carry no star/galaxy separation of a counterpart: not star-like unless told otherwise.
        "star_like": False,
    }
    dia_object_id = clean(source.get("diaObjectId"))
    try:
        lightcurve = rubin_points(record)
    except DecodeError as exc:  # a history that cannot be read sends the packet to the dead letters, whole
        raise DecodeError(f"Rubin diaSourceId {source_id}: bad history: {exc}") from exc
    try:
        return Event(
            event_id=f"rubin:{source_id}",
            source="rubin",
            kind="optical_transient",
            object_id=str(dia_object_id or ss_object_id or source_id),
            event_time=mjd_tai_to_datetime(mjd),
            received_time=packet.received_time,
            published_time=packet.published_time,
            ra=ra,
            dec=dec,
            pos_error_deg=max(errors) if errors else None,
            mag=mag,
            mag_err=mag_err,
            band=band,
            quality=quality,
            features=features,
            lightcurve=lightcurve,
            raw=raw,
            raw_format=raw_format,
            schema_version=_version_from(schema, record),
            injected=packet.injected,
            origin=packet.origin,
        )
    except ValueError as exc:
        raise DecodeError(f"Rubin diaSourceId {source_id}: {validation_reason(exc)}") from exc
