"""The Avro schemas: ZTF's from ``schemas/ztf``, Rubin's from the installed lsst-alert-packet, made
self-contained; and blank records of them with a default of the right type in every field."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import fastavro

DEFAULT_RUBIN_VERSION = "9.0"
MIN_RUBIN_MAJOR = 7
ZTF_SCHEMA_DIR = Path(__file__).parent / "schemas" / "ztf"
ZTF_SCHEMA_VERSION = "4.02"


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _fullname(schema: dict[str, Any], namespace: str | None) -> str:
    name = schema["name"]
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _inline(schema: Any, defs: dict[str, dict], seen: set[str], namespace: str | None) -> Any:
    """Return ``schema`` with named-type references inlined at their first use."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
        if full not in defs and schema in defs:
            full = schema
        if full in seen:
            return full
        if full not in defs:
            raise ValueError(f"unknown Avro named type {schema!r}")
        definition = copy.deepcopy(defs[full])
        ns, _, short = full.rpartition(".")
        definition["name"] = short
        if ns:
            definition["namespace"] = ns
        return _inline(definition, defs, seen, namespace)
    if isinstance(schema, list):
        return [_inline(branch, defs, seen, namespace) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        full = _fullname(schema, namespace)
        seen.add(full)
        if kind in ("record", "error"):
            inner_ns = full.rpartition(".")[0] or None
            out = dict(schema)
            out["fields"] = [{**f, "type": _inline(f["type"], defs, seen, inner_ns)} for f in schema["fields"]]
            return out
        return dict(schema)
    if kind == "array":
        return {**schema, "items": _inline(schema["items"], defs, seen, namespace)}
    if kind == "map":
        return {**schema, "values": _inline(schema["values"], defs, seen, namespace)}
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
        return {**schema, "type": _inline(kind, defs, seen, namespace)}
    return schema


def _load_schema_dir(folder: Path, top: str) -> dict[str, Any]:
    """Parse every .avsc in ``folder`` and return the self-contained parsed ``top`` schema."""
    defs: dict[str, dict] = {}
    for path in sorted(folder.glob("*.avsc")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and "name" in raw:
            defs[_fullname(raw, None)] = raw
    if top not in defs:
        raise FileNotFoundError(f"schema {top!r} not found in {folder}")
    expanded = _inline(top, defs, set(), None)
    return fastavro.parse_schema(expanded)


@functools.cache
def ztf_schema() -> dict[str, Any]:
    """The parsed, self-contained ``ztf.alert`` v4.02 schema."""
    return _load_schema_dir(ZTF_SCHEMA_DIR, "ztf.alert")


def _rubin_schema_root() -> Path:
    spec = importlib.util.find_spec("lsst.alert.packet")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("lsst-alert-packet is not installed; Rubin packets need its schemas")
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


def parse_version(version: str | tuple[int, int]) -> tuple[int, int]:
    if isinstance(version, tuple):
        major, minor = version
        return int(major), int(minor)
    text = str(version).strip().lower().removeprefix("v").replace("_", ".")
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"bad Rubin schema version {version!r}; expected 'major.minor'")
    return int(parts[0]), int(parts[1])


@functools.cache
def available_rubin_versions() -> tuple[str, ...]:
    """Rubin alert schema versions (>= 7.0) shipped by the installed lsst-alert-packet."""
    root = _rubin_schema_root()
    found: list[tuple[int, int]] = []
    for major_dir in root.iterdir():
        if not (major_dir.is_dir() and major_dir.name.isdigit()):
            continue
        for minor_dir in major_dir.iterdir():
            if not (minor_dir.is_dir() and minor_dir.name.isdigit()):
                continue
            major, minor = int(major_dir.name), int(minor_dir.name)
            alert = minor_dir / f"lsst.v{major}_{minor}.alert.avsc"
            if major >= MIN_RUBIN_MAJOR and alert.exists():
                found.append((major, minor))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def rubin_schema_id(version: str | tuple[int, int] = DEFAULT_RUBIN_VERSION) -> int:
    """Rubin's Confluent schema id: major*100 + minor (9.0 -> 900, 11.1 -> 1101)."""
    major, minor = parse_version(version)
    return major * 100 + minor


@functools.cache
def rubin_schema_cached(major: int, minor: int) -> dict[str, Any]:
    folder = _rubin_schema_root() / str(major) / str(minor)
    return _load_schema_dir(folder, f"lsst.v{major}_{minor}.alert")


def rubin_schema(version: str | tuple[int, int] = DEFAULT_RUBIN_VERSION) -> dict[str, Any]:
    """The parsed, self-contained ``lsst.vX_Y.alert`` schema for ``version``."""
    major, minor = parse_version(version)
    label = f"{major}.{minor}"
    if label not in available_rubin_versions():
        raise ValueError(
            f"Rubin schema version {label} not available; available: {', '.join(available_rubin_versions())}"
        )
    return rubin_schema_cached(major, minor)


# blank records: type-correct defaults for every field


class Blank:
    """Makes records of a parsed schema filled with defaults of the right Avro type."""

    def __init__(self, parsed: dict[str, Any]) -> None:
        self.named: dict[str, Any] = parsed["__named_schemas"]
        self._templates: dict[tuple[str, bool], tuple[dict[str, Any], list, list]] = {}

    def _resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema in self.named:
            return self.named[schema]
        return schema

    def _value(self, schema: Any) -> tuple[Any, str | None]:
        """(default value, name of a nested record to build fresh or None)."""
        schema = self._resolve(schema)
        if isinstance(schema, list):
            if "null" in schema:
                return None, None
            return self._value(schema[0])
        if isinstance(schema, str):
            return {
                "null": None,
                "boolean": False,
                "int": 0,
                "long": 0,
                "float": 0.0,
                "double": 0.0,
                "bytes": b"",
                "string": "",
            }[schema], None
        kind = schema.get("type")
        if kind in ("record", "error"):
            return None, schema["name"]
        if kind == "enum":
            return schema["symbols"][0], None
        if kind == "fixed":
            return bytes(schema["size"]), None
        if kind == "array":
            return [], None
        if kind == "map":
            return {}, None
        return self._value(kind)

    def _template(self, name: str, false_bools: bool):
        key = (name, false_bools)
        cached = self._templates.get(key)
        if cached is not None:
            return cached
        record = self.named[name]
        values: dict[str, Any] = {}
        nested: list[tuple[str, str]] = []
        for fld in record["fields"]:
            ftype = fld["type"]
            if "default" in fld and not (isinstance(fld["default"], (list, dict))):
                values[fld["name"]] = fld["default"]
            else:
                value, sub = self._value(ftype)
                if sub is not None:
                    nested.append((fld["name"], sub))
                values[fld["name"]] = value
            if false_bools and isinstance(ftype, list) and "boolean" in ftype and values[fld["name"]] is None:
                values[fld["name"]] = False
        mutable = [(k, type(v)) for k, v in values.items() if isinstance(v, (list, dict))]
        self._templates[key] = (values, nested, mutable)
        return self._templates[key]

    def has_field(self, name: str, field_name: str) -> bool:
        return field_name in self._template(name, False)[0]

    def new(self, name: str, *, false_bools: bool = False) -> dict[str, Any]:
        values, nested, mutable = self._template(name, false_bools)
        rec = dict(values)
        for key, kind in mutable:
            rec[key] = kind()
        for key, sub in nested:
            rec[key] = self.new(sub, false_bools=false_bools)
        return rec


def put(rec: dict[str, Any], **values: Any) -> None:
    """Set the values whose field exists in this record's schema (version tolerant)."""
    for key, value in values.items():
        if key in rec:
            rec[key] = value


@functools.cache
def ztf_blank() -> Blank:
    return Blank(ztf_schema())


@functools.cache
def rubin_blank(major: int, minor: int) -> Blank:
    return Blank(rubin_schema_cached(major, minor))
