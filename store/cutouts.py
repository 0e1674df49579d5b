"""Cutout images of an event: the FITS stamps inside its raw packet, found in the archive tier, as shipped or as PNG.

The console's event view and the API's `/v1/events/{id}/cutouts/{stamp}` both read them here.

The hot store keeps the decoded event without its raw bytes; the archive tier (Avro, `store/tiers.py`) keeps
the packet as received, partitioned by night and source, with an index of event ids in each file's header.
ZTF packets carry gzipped FITS stamps (`cutoutScience`, `cutoutTemplate`, `cutoutDifference` with
`stampData`); Rubin packets carry plain FITS bytes in the same three fields. GCN notices have none.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import fastavro
import numpy as np
from astropy.io import fits
from astropy.visualization import AsinhStretch, ZScaleInterval

from store import files
from store.tiers import ARCHIVE_INDEX_KEY, archive_partition, join

STAMPS = (("cutoutScience", "Science"), ("cutoutTemplate", "Template"), ("cutoutDifference", "Difference"))
# The API's names for the stamps: /cutouts/science, /template, /difference.
STAMP_FIELDS = {label.lower(): field for field, label in STAMPS}


@dataclass(frozen=True)
class Cutout:
    label: str
    png: bytes
    shape: tuple[int, int]


def archived_record(archive_root: str, event_id: str, night: str, source: str) -> dict[str, Any] | None:
    """The archive record (raw packet and decoded event) of one event: the file headers' index says which file
    of its night and source holds it, so only that file's records are read."""
    # No such partition (not archived, or removed by retention) matches nothing.
    for path in files.match(join(archive_partition(archive_root, night, source), "*.avro")):
        with files.open_input(path) as handle:
            reader = fastavro.reader(handle)
            index = json.loads(reader.metadata.get(ARCHIVE_INDEX_KEY, "[]"))
            if event_id not in {entry[0] for entry in index}:
                continue
            for record in reader:
                if record["event_id"] == event_id:
                    return record
    return None


def packet_record(raw: bytes, raw_format: str) -> dict[str, Any] | None:
    """The alert record inside a raw ZTF or Rubin packet (Avro container or Confluent wire format)."""
    if raw[:4] == b"Obj\x01":
        return next(iter(fastavro.reader(io.BytesIO(raw))), None)
    if raw_format == "rubin-confluent" and raw[:1] == b"\x00":
        from core.decoders.rubin import registry

        (schema_id,) = struct.unpack(">I", raw[1:5])
        return fastavro.schemaless_reader(io.BytesIO(raw[5:]), registry("").get(schema_id), None)
    return None


def shipped_bytes(stamp: Any) -> bytes | None:
    """A stamp's bytes as the packet shipped them (ZTF: gzipped FITS in `stampData`; Rubin: plain FITS)."""
    data = stamp.get("stampData") if isinstance(stamp, dict) else stamp
    return bytes(data) if data else None


def _fits_bytes(stamp: Any) -> bytes | None:
    data = shipped_bytes(stamp)
    if not data:
        return None
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def stamp_of(record: dict[str, Any], stamp: str) -> tuple[bytes, bytes] | None:
    """One stamp (`science`, `template`, `difference`) of an archive record: (bytes as shipped, FITS bytes), or
    None when the packet has no such stamp."""
    alert = packet_record(record["raw"], record["raw_format"])
    if alert is None:
        return None
    shipped = shipped_bytes(alert.get(STAMP_FIELDS[stamp]))
    if not shipped:
        return None
    return shipped, _fits_bytes(alert.get(STAMP_FIELDS[stamp])) or b""


def render_png(fits_data: bytes, size: int = 189) -> tuple[bytes, tuple[int, int]]:
    """A FITS image as a greyscale PNG: zscale limits and an asinh stretch, as survey cutouts are usually shown."""
    from PIL import Image  # Pillow is the console's and the API's (extras), never the job's

    with fits.open(io.BytesIO(fits_data)) as hdus:
        image = next(hdu.data for hdu in hdus if getattr(hdu, "data", None) is not None)
    pixels = np.nan_to_num(np.asarray(image, dtype=float))
    low, high = ZScaleInterval().get_limits(pixels)
    unit = np.clip((pixels - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(pixels)
    scaled = np.clip(AsinhStretch()(unit), 0.0, 1.0)
    # FITS rows run bottom-up; images top-down.
    picture = Image.fromarray((np.flipud(scaled) * 255).astype(np.uint8), mode="L")
    picture = picture.resize((size, size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue(), pixels.shape


def cutouts_of(record: dict[str, Any]) -> list[Cutout]:
    """Every stamp in an archive record's raw packet, rendered; [] when the packet has none."""
    alert = packet_record(record["raw"], record["raw_format"])
    if alert is None:
        return []
    found = []
    for field, label in STAMPS:
        data = _fits_bytes(alert.get(field))
        if data:
            png, shape = render_png(data)
            found.append(Cutout(label, png, shape))
    return found
