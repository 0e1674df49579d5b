"""Maintenance windows: the guide's schedule, announcements, and silencing non-critical pages meanwhile.

Types come from config/maintenance.yaml (rolling restart any time without notice; brief downtime Tuesday
10:00-14:00 UTC with 24 h notice; extended downtime Saturday 06:00-18:00 UTC with a week's notice). An announcement
is refused if it comes too late or falls outside its type's days and hours. While a window that silences is
active, `ops.notify` records non-critical pages as `suppressed`; CRITICAL always goes out.

`active_window(store, now)` is what the console calls for its banner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlalchemy as sa

from access import accounts, audit
from config.settings import WEEKDAYS, MaintenanceConfig, WindowType
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import maintenance_windows

SCHEDULED, CANCELLED = "scheduled", "cancelled"


class MaintenanceError(ValueError):
    """An announcement or cancellation that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Window:
    window_id: int
    kind: str
    starts_at: datetime
    ends_at: datetime
    silence: bool
    reason: str
    status: str
    announced_by: str
    announced_at: datetime

    def active(self, now: datetime) -> bool:
        return self.status == SCHEDULED and self.starts_at <= now < self.ends_at

    def describe(self) -> str:
        hush = "non-critical pages silenced" if self.silence else "pages not silenced"
        return (
            f"#{self.window_id} {self.kind} {self.starts_at:%a %Y-%m-%d %H:%M}-{self.ends_at:%H:%M} UTC "
            f"({hush}): {self.reason}"
        )


def _window(row: sa.Row) -> Window:
    return Window(
        window_id=row.window_id,
        kind=row.kind,
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        silence=bool(row.silence),
        reason=row.reason,
        status=row.status,
        announced_by=row.announced_by,
        announced_at=as_utc(row.announced_at),
    )


def _at(day: datetime, clock: str) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime.combine(day.date(), time(hours, minutes), tzinfo=day.tzinfo)


def check_window(
    kind: str, spec: WindowType, start: datetime, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The window's (start, end) if the guide's table allows it; MaintenanceError saying why not otherwise."""
    start = as_utc(start)
    if spec.weekdays is not None and WEEKDAYS[start.weekday()] not in spec.weekdays:
        days = ", ".join(day.capitalize() for day in spec.weekdays)
        raise MaintenanceError(f"{spec.title} is on {days} only; {start:%Y-%m-%d} is a {start:%A}")
    if end is None:
        end = _at(start, spec.end) if spec.end else start + timedelta(minutes=spec.default_duration_min)
    end = as_utc(end)
    if end <= start:
        raise MaintenanceError(f"the window ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})")
    if spec.start and spec.end and (start < _at(start, spec.start) or end > _at(start, spec.end)):
        raise MaintenanceError(f"{spec.title} must lie within {spec.start}-{spec.end} UTC of one day")
    earliest = now + timedelta(hours=spec.notice_h)
    if start < earliest:
        raise MaintenanceError(
            f"announced too late: {spec.title} needs {spec.notice_h:g} h notice, so it cannot start before "
            f"{earliest:%Y-%m-%d %H:%M} UTC"
        )
    return start, end


def announce(
    store: HotStore,
    config: MaintenanceConfig,
    actor: str,
    kind: str,
    start: datetime,
    end: datetime | None,
    reason: str,
    now: datetime | None = None,
) -> Window:
    """Schedule a window (Operator and above), audited; a refused announcement is audited too."""
    accounts.acting(store, actor, "run_operations")
    now = now or utcnow()
    if kind not in config.types:
        raise MaintenanceError(f"unknown maintenance type {kind!r}: one of {', '.join(config.types)}")
    if not reason.strip():
        raise MaintenanceError("give a reason: it goes into the announcement and the audit log")
    spec = config.types[kind]
    try:
        start, end = check_window(kind, spec, start, end, now)
    except MaintenanceError as exc:
        asked = {"kind": kind, "start": as_utc(start).isoformat(), "end": end.isoformat() if end else None}
        audit.record(store, actor, "maintenance.refused", f"maintenance:{kind}", None, asked, str(exc))
        raise
    row = {
        "kind": kind,
        "starts_at": start,
        "ends_at": end,
        "silence": spec.silence,
        "reason": reason.strip(),
        "status": SCHEDULED,
        "announced_by": actor,
        "announced_at": now,
    }
    with store.engine.begin() as conn:
        window_id = conn.execute(maintenance_windows.insert().values(**row)).inserted_primary_key[0]
        audit.audit(conn, actor, "maintenance.announce", f"maintenance:{window_id}", None, row, reason.strip())
    return get_window(store, window_id)  # type: ignore[return-value]


def cancel(store: HotStore, actor: str, window_id: int, reason: str, now: datetime | None = None) -> Window:
    """Cancel a scheduled window (Operator and above), audited."""
    accounts.acting(store, actor, "run_operations")
    if not reason.strip():
        raise MaintenanceError("say why the window is cancelled")
    window = get_window(store, window_id)
    if window is None:
        raise MaintenanceError(f"no maintenance window #{window_id}")
    if window.status != SCHEDULED:
        raise MaintenanceError(f"window #{window_id} is already {window.status}")
    values = {"status": CANCELLED, "cancelled_by": actor, "cancelled_at": now or utcnow(), "cancel_reason": reason}
    with store.engine.begin() as conn:
        conn.execute(maintenance_windows.update().where(maintenance_windows.c.window_id == window_id).values(**values))
        audit.audit(
            conn, actor, "maintenance.cancel", f"maintenance:{window_id}", {"status": SCHEDULED}, values, reason
        )
    return get_window(store, window_id)  # type: ignore[return-value]


def get_window(store: HotStore, window_id: int) -> Window | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(maintenance_windows).where(maintenance_windows.c.window_id == window_id)).first()
    return _window(row) if row else None


def list_windows(store: HotStore, now: datetime | None = None, include_past: bool = False) -> list[Window]:
    """Scheduled windows not yet over (every window with `include_past`), soonest first."""
    query = sa.select(maintenance_windows).order_by(maintenance_windows.c.starts_at)
    if not include_past:
        query = query.where(
            (maintenance_windows.c.status == SCHEDULED) & (maintenance_windows.c.ends_at > (now or utcnow()))
        )
    with store.engine.connect() as conn:
        return [_window(row) for row in conn.execute(query)]


def active_window(store: HotStore, now: datetime | None = None) -> Window | None:
    """The maintenance window in force now, if any (one that silences first): the console's banner."""
    now = now or utcnow()
    current = [window for window in list_windows(store, now) if window.active(now)]
    current.sort(key=lambda window: (not window.silence, window.starts_at))
    return current[0] if current else None
