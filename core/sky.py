"""Positions on the sky: the one angular separation every part of Nightwatch uses, and altitudes seen from the site
(the Sun's among them: whether it is dark)."""

from __future__ import annotations

from typing import Any

import numpy as np


def separation_deg(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> Any:
    """Angular separation in degrees between positions given in degrees: floats or arrays (broadcast).

    astropy's `angular_separation` (Vincenty's formula: accurate at every angle, where haversine loses
    precision towards 180 degrees and the cosine formula near 0). A float in gives a float out.
    Imported on first use: `astropy.coordinates` takes about a second to import, which the API and the
    console should not pay at start-up.
    """
    from astropy.coordinates import angular_separation

    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(value, dtype=float)) for value in (ra1, dec1, ra2, dec2))
    apart = np.degrees(angular_separation(lon1, lat1, lon2, lat2))
    return float(apart) if np.ndim(apart) == 0 else apart


# --- altitudes from the site: sidereal time and a low-precision solar position -----------------------------
# No network, no IERS tables (astropy's AltAz frame downloads them); tests/test_agents.py checks these against
# astropy within half a degree.

J2000_JD = 2451545.0
UNIX_EPOCH_JD = 2440587.5
DARK_SUN_ALTITUDE_DEG = -12.0  # nautical twilight: surveys observe when the Sun is lower


def julian_date(moments: np.ndarray) -> np.ndarray:
    """Unix seconds to Julian dates (UTC; UT1 - UTC under a second does not matter here)."""
    return moments / 86400.0 + UNIX_EPOCH_JD


def sun_position(jd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Sun's right ascension and declination in degrees (Astronomical Almanac low-precision formulae)."""
    n = jd - J2000_JD
    mean_longitude = np.radians(280.460 + 0.9856474 * n)
    anomaly = np.radians(357.528 + 0.9856003 * n)
    ecliptic = mean_longitude + np.radians(1.915) * np.sin(anomaly) + np.radians(0.020) * np.sin(2 * anomaly)
    obliquity = np.radians(23.439 - 0.0000004 * n)
    ra = np.degrees(np.arctan2(np.cos(obliquity) * np.sin(ecliptic), np.cos(ecliptic))) % 360.0
    dec = np.degrees(np.arcsin(np.sin(obliquity) * np.sin(ecliptic)))
    return ra, dec


def altitude_deg(ra_deg: Any, dec_deg: Any, jd: np.ndarray, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """Altitude of a position seen from a site at the given Julian dates (geometric, no refraction)."""
    gmst = (280.46061837 + 360.98564736629 * (jd - J2000_JD)) % 360.0
    hour_angle = np.radians(gmst + longitude_deg - np.asarray(ra_deg))
    lat, dec = np.radians(latitude_deg), np.radians(np.asarray(dec_deg))
    sin_alt = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)
    return np.degrees(np.arcsin(np.clip(sin_alt, -1.0, 1.0)))
