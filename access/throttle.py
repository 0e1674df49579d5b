"""Login throttling and lockout, per account and per client address, shared by every caller of
`accounts.authenticate` (the console, and any other front end) and by every process over the same hot store.

After `max_failures` failed logins in a row for an account (or from a client address), further attempts are
refused for `lockout_s`, doubling with each further failure up to `max_lockout_s`, *without checking the
password*: a guess during a lockout costs the attacker a refusal and the server no hash. A success clears the
account's and the client's counts. The audit log gets one `login.locked` row when a lockout starts, not one row
per guess. The state is the hot store's `login_throttle` table (migration 0005), so console replicas behind a
balancer share it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import sqlalchemy as sa

from config.limits import LoginLimits
from store.hot import HotStore
from store.schema import login_throttle


def subject(kind: str, value: str) -> str:
    """A fixed-size key for an account or a client (hashed: any length, any character)."""
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'backslashreplace')).hexdigest()[:64]}"


@dataclass(frozen=True)
class Lock:
    subject: str
    retry_after_s: float


def locked(store: HotStore, subjects: list[str], now: float | None = None) -> Lock | None:
    """The longest lockout among `subjects` still running, or None."""
    moment = time.time() if now is None else now
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(login_throttle).where(login_throttle.c.subject.in_(subjects))).all()
    running = [Lock(row.subject, row.locked_until - moment) for row in rows if row.locked_until > moment]
    return max(running, key=lambda lock: lock.retry_after_s) if running else None


def record_failure(store: HotStore, subjects: list[str], limits: LoginLimits, now: float | None = None) -> list[str]:
    """Count a failure for each subject; the subjects whose lockout *starts* with this failure."""
    moment = time.time() if now is None else now
    started = []
    with store.engine.begin() as conn:
        for name in subjects:
            row = conn.execute(sa.select(login_throttle).where(login_throttle.c.subject == name)).first()
            failures = (row.failures if row else 0) + 1
            locked_until = row.locked_until if row else 0.0
            if failures >= limits.max_failures:
                seconds = min(limits.max_lockout_s, limits.lockout_s * 2 ** (failures - limits.max_failures))
                if locked_until <= moment:
                    started.append(name)
                locked_until = moment + seconds
            values = {"failures": failures, "locked_until": locked_until}
            if row is None:
                conn.execute(login_throttle.insert().values(subject=name, **values))
            else:
                conn.execute(login_throttle.update().where(login_throttle.c.subject == name).values(**values))
    return started


def record_success(store: HotStore, subjects: list[str]) -> None:
    with store.engine.begin() as conn:
        conn.execute(login_throttle.delete().where(login_throttle.c.subject.in_(subjects)))
