"""One angular separation for the whole project (core/sky.py), checked against astropy's SkyCoord."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from core.sky import separation_deg

PAIRS = [
    (10.0, 20.0, 10.0001, 20.0001),  # sub-arcsecond
    (359.9, -0.1, 0.1, 0.1),  # across ra = 0
    (0.0, 89.9, 180.0, 89.9),  # over the pole
    (0.0, 0.0, 179.9999, 0.0),  # nearly antipodal, where haversine loses digits
    (120.0, -60.0, 120.0, -60.0),  # the same point
]


@pytest.mark.parametrize("ra1, dec1, ra2, dec2", PAIRS)
def test_separation_matches_skycoord(ra1, dec1, ra2, dec2):
    want = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg
    got = separation_deg(ra1, dec1, ra2, dec2)
    assert isinstance(got, float)
    assert got == pytest.approx(want, abs=1e-12)


def test_separation_broadcasts_over_arrays():
    ras, decs = np.array([p[2] for p in PAIRS]), np.array([p[3] for p in PAIRS])
    got = separation_deg(10.0, 20.0, ras, decs)
    assert got.shape == (len(PAIRS),)
    assert got.tolist() == pytest.approx(
        [separation_deg(10.0, 20.0, r, d) for r, d in zip(ras, decs, strict=True)], abs=1e-12
    )
