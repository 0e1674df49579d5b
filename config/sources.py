"""Sources and the observing site (sources.yaml): expected rates, the site's place and time zone."""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from config.base import Strict, only_known_sources


class Site(Strict):
    name: str
    timezone: str
    latitude_deg: float = Field(ge=-90, le=90)
    longitude_deg: float = Field(ge=-180, le=180)
    height_m: float = 0.0
    # Dark enough for the optical surveys to observe: the Sun below this altitude (-12: nautical twilight).
    dark_sun_altitude_deg: float = Field(-12.0, ge=-18, le=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class SourceContact(Strict):
    """Whom to contact about a source's data (the runbooks' "contact source" steps)."""

    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str = ""
    url: str = ""

    def describe(self) -> str:
        return ", ".join(part for part in (self.name, self.email, self.phone, self.url) if part)


class SourceSpec(Strict):
    role: str
    format: str
    expected_rate_per_min: float = Field(ge=0)
    # When the source is expected to send: "night" (an optical survey: while it is dark at the site) or "always"
    # (satellite notices, around the clock). Health judges silence and rate only while data is expected.
    expected_when: Literal["night", "always"] = "always"
    # Silence this long while data is expected counts as a stopped feed (SEV-1 when nothing else flows either).
    # A sparse stream needs longer: GCN's ~0.1 notices a minute leaves 15 quiet minutes a common sight.
    silent_after_min: float = Field(15.0, gt=0)
    schema_dir: str = ""
    contact: SourceContact | None = None


class SourcesConfig(Strict):
    version: str
    site: Site
    sources: dict[str, SourceSpec]
    gcn_kinds: dict[str, list[str]]

    _known_sources = field_validator("sources")(lambda value: only_known_sources(value))

    def contacts(self) -> dict[str, str]:
        """Each source's contact as one line ("no contact configured" when sources.yaml names none)."""
        return {
            name: spec.contact.describe() if spec.contact else "no contact configured (config/sources.yaml)"
            for name, spec in self.sources.items()
        }

    def gcn_kind(self, mission: str, instrument: str) -> str:
        """The kind of a GCN notice from its mission and instrument, or `notice` when unknown."""
        text = f"{mission} {instrument}".lower().strip()
        squashed = re.sub(r"[^a-z0-9]+", " ", text)
        for kind, needles in self.gcn_kinds.items():
            if any(needle in text or needle in squashed for needle in needles):
                return kind
        return "notice"
