"""Positions on the sky: the one angular separation every part of Nightwatch uses."""

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
