"""The console's own faults (the guide's SEV-4, "cosmetic / dashboard glitch"): a page that failed to render, a
panel that could not refresh and shows stale figures. The console records each when it happens; `evaluate` turns
recent ones into SEV-4 when nothing worse is going on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import console_faults

RENDER_ERROR = "render_error"
STALE_PANEL = "stale_panel"
RECENT = timedelta(hours=1)  # a fault older than this no longer counts towards the severity


@dataclass(frozen=True)
class ConsoleFault:
    at: datetime
    page: str
    kind: str
    detail: str
    user_name: str | None

    def describe(self) -> str:
        what = "failed to render" if self.kind == RENDER_ERROR else "showed stale figures (could not refresh)"
        return f"console page {self.page} {what} at {self.at:%H:%M:%S} UTC: {self.detail}"


def record_fault(store: HotStore, page: str, kind: str, detail: str, user_name: str | None = None) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            console_faults.insert().values(
                at=utcnow(), page=page[:64], kind=kind, detail=detail[:2000], user_name=user_name
            )
        )


def recent_faults(store: HotStore, now: datetime | None = None, within: timedelta = RECENT) -> list[ConsoleFault]:
    since = (now or utcnow()) - within
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(console_faults).where(console_faults.c.at >= since).order_by(console_faults.c.at.desc())
        ).mappings()
        return [
            ConsoleFault(as_utc(row["at"]), row["page"], row["kind"], row["detail"] or "", row["user_name"])
            for row in rows
        ]
