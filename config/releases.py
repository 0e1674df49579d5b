"""Releases of the cuts and rules (releases.yaml): shadow reports, canary share and the checks watched."""

from __future__ import annotations

from pydantic import Field

from config.base import Strict


class ReleasesConfig(Strict):
    version: str
    shadow_nights: int = Field(3, ge=1)  # how many recent nights of the archive a shadow replays
    shadow_max_events: int = Field(20000, ge=1)  # at most this many events per replay (the newest nights first)
    injection_count: int = Field(200, ge=10)  # designed events for the critical-recall check
    injection_seed: int = 7
    min_critical_recall: float = Field(0.99, ge=0.0, le=1.0)  # the guide's floor: below it, promotion is refused
    canary_share: float = Field(0.1, gt=0.0, lt=1.0)  # default share of events a canary decides
    watch_s: float = Field(600.0, gt=0)  # how long `release canary --watch` watches
    poll_s: float = Field(10.0, gt=0)
    max_alert_ratio: float = Field(2.0, gt=1.0)  # canary alerts per event over the rest's, above which it is ended
    min_events: int = Field(20, ge=1)  # events the canary must have decided before the alert-volume check counts
