"""The API's bodies for objects, light curves and cutouts (beside api/models.py's events and alerts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.models import Page

PointKind = Literal["detection", "nondetection", "forced"]
StampName = Literal["science", "template", "difference"]
StampFormat = Literal["fits", "png"]


class SkyObject(BaseModel):
    object_id: str = Field(description="ZTF objectId or Rubin diaObjectId")
    source: str
    event_class: str | None = Field(None, description="The class of its latest event")
    score: float | None = Field(None, description="The score of its latest event")
    mag: float | None = Field(None, description="Latest magnitude (AB for Rubin)")
    band: str | None = None
    ra: float | None = Field(None, description="Latest position, ICRS degrees")
    dec: float | None = Field(None, description="Latest position, ICRS degrees")
    n_events: int = Field(description="Events stored for it (packets that passed decoding)")
    first_seen: str = Field(description="First event time, ISO 8601 UTC with Z")
    first_seen_mjd: float = Field(description="First event time, MJD (UTC)")
    last_seen: str = Field(description="Latest event time, ISO 8601 UTC with Z")
    last_seen_mjd: float = Field(description="Latest event time, MJD (UTC)")
    latest_event_id: str
    night: str | None = None
    class_scores: dict[str, float | None] = Field(
        {}, description="The best score each class gave one of its events, critical first"
    )
    separation_deg: float | None = Field(None, description="Distance from a cone's centre, when one was given")


class ObjectPage(Page[SkyObject]):
    pass


class LightPoint(BaseModel):
    point_id: str = Field(description="candid / diaSourceId for a detection; nd:…, fp:…, fs:… otherwise")
    kind: PointKind
    mjd: float = Field(description="Modified Julian date, UTC")
    time: str = Field(description="The same instant, ISO 8601 UTC with Z")
    band: str | None = None
    mag: float | None = Field(None, description="Magnitude (AB for Rubin); null for a non-detection")
    mag_err: float | None = None
    limit_mag: float | None = Field(None, description="5-sigma limiting magnitude (non-detections, forced)")
    flux: float | None = Field(None, description="Rubin: nJy; ZTF forced photometry: DN")
    flux_err: float | None = None
    source: str
    event_id: str = Field(description="The stored event whose packet carried it")
    tier: Literal["hot", "warm"]


class LightCurve(BaseModel):
    object_id: str
    points: list[LightPoint]
    bands: dict[str, int] = Field(description="Points per band")
    kinds: dict[str, int] = Field(description="Points per kind")
