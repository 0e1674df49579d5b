"""API keys for the external API: created, listed, revoked, checked on every request, and rate-limited.

A key belongs to a console user and carries one of the guide's roles, never above its owner's. The token is
`nw_` + 32 random bytes (URL-safe base64), shown once; the store keeps only its sha256. A plain hash (no salt,
no slow KDF) is enough because the token is high-entropy: nothing can be guessed from the hash, and a lookup
by hash needs no scan. Every request re-reads the key and its owner, so a revoked key, a revoked owner or a
lowered role takes effect on the very next request. Creating and revoking are audited (`audit.record`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from access import accounts, audit, roles
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import api_keys, api_rate_buckets, users

TOKEN_PREFIX = "nw_"
# last_used_at is written at most this often per key, so reads do not turn into a write per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyError(ValueError):
    """A key operation that cannot be done as asked (unknown user or key, role above the owner's)."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    user_name: str
    role: str  # the key's own role
    effective_role: str | None  # the lower of the key's and its owner's current role; None if the owner has none
    note: str | None
    rate_per_min: float | None
    burst: int | None
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.effective_role is not None

    def can(self, permission: str) -> bool:
        return self.active and roles.allowed(self.effective_role, permission)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lower(role: str, other: str | None) -> str | None:
    if other not in roles.ROLES:
        return None
    return role if roles.at_least(other, role) else other


def _key(row: Any, owner_role: str | None, owner_active: bool) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        user_name=row.user_name,
        role=row.role,
        effective_role=_lower(row.role, owner_role) if owner_active else None,
        note=row.note,
        rate_per_min=row.rate_per_min,
        burst=row.burst,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
        revoked_by=row.revoked_by,
    )


def _keys_with_owners() -> sa.Select:
    return sa.select(api_keys, users.c.role.label("owner_role"), users.c.active.label("owner_active")).join(
        users, users.c.name == api_keys.c.user_name, isouter=True
    )


def create_key(
    store: HotStore,
    actor: str,
    user_name: str,
    role: str,
    note: str | None = None,
    rate_per_min: float | None = None,
    burst: int | None = None,
) -> tuple[str, ApiKey]:
    """A new key for an active user, at most the user's role; returns (token, key). The token is not stored."""
    if role not in roles.ROLES:
        raise ApiKeyError(f"unknown role {role!r}: one of {', '.join(roles.ROLES)}")
    owner = accounts.get_user(store, user_name)
    if owner is None:
        raise ApiKeyError(
            f"no user {user_name!r}: create one first (nightwatch users add {user_name} --role {role}, "
            "or nightwatch users bootstrap for the first Super Admin 'admin')"
        )
    if not owner.active or owner.role is None:
        raise ApiKeyError(f"user {user_name!r} is revoked or has no role")
    if not roles.at_least(owner.role, role):
        raise ApiKeyError(f"a key cannot hold more than its owner: {user_name!r} is {owner.title}")
    if (rate_per_min is not None and rate_per_min <= 0) or (burst is not None and burst < 1):
        raise ApiKeyError("a rate limit needs a positive rate and a burst of at least 1")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = {
        "key_id": "key_" + secrets.token_hex(6),
        "token_sha256": hash_token(token),
        "user_name": user_name,
        "role": role,
        "note": note or None,
        "rate_per_min": rate_per_min,
        "burst": burst,
        "created_by": actor,
        "created_at": utcnow(),
    }
    with store.engine.begin() as conn:
        conn.execute(api_keys.insert().values(**row))
    after = {k: row[k] for k in ("key_id", "user_name", "role", "note", "rate_per_min", "burst")}
    audit.record(store, actor, "api_key.create", row["key_id"], None, after, note or "")
    return token, get_key(store, row["key_id"])  # type: ignore[return-value]


def get_key(store: HotStore, key_id: str) -> ApiKey | None:
    with store.engine.connect() as conn:
        row = conn.execute(_keys_with_owners().where(api_keys.c.key_id == key_id)).first()
    return _key(row, row.owner_role, bool(row.owner_active)) if row else None


def list_keys(store: HotStore, user_name: str | None = None) -> list[ApiKey]:
    query = _keys_with_owners().order_by(api_keys.c.created_at, api_keys.c.key_id)
    if user_name:
        query = query.where(api_keys.c.user_name == user_name)
    with store.engine.connect() as conn:
        return [_key(row, row.owner_role, bool(row.owner_active)) for row in conn.execute(query)]


def revoke_key(store: HotStore, actor: str, key_id: str, reason: str = "") -> ApiKey:
    """Revoke a key at once: the next request with it is refused. Revoking twice is an error, not a no-op."""
    with store.engine.begin() as conn:
        revoked = conn.execute(
            api_keys.update()
            .where((api_keys.c.key_id == key_id) & api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_by=actor)
        ).rowcount
    if not revoked:
        key = get_key(store, key_id)
        raise ApiKeyError(f"no API key {key_id!r}" if key is None else f"API key {key_id} is already revoked")
    audit.record(store, actor, "api_key.revoke", key_id, {"revoked": False}, {"revoked": True}, reason)
    return get_key(store, key_id)  # type: ignore[return-value]


def authenticate(store: HotStore, token: str) -> ApiKey | None:
    """The key a token belongs to, as of now (revoked keys included: the caller says why it refuses them)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with store.engine.connect() as conn:
        row = conn.execute(_keys_with_owners().where(api_keys.c.token_sha256 == hash_token(token))).first()
    if row is None:
        return None
    key = _key(row, row.owner_role, bool(row.owner_active))
    now = utcnow()
    if key.active and (key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION):
        with store.engine.begin() as conn:
            conn.execute(api_keys.update().where(api_keys.c.key_id == key.key_id).values(last_used_at=now))
    return key


# --- rate limits: a token bucket per key, in the hot store ----------------------------------------------------


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after_s: float  # 0 when allowed


def take_token(store: HotStore, key_id: str, rate_per_min: float, burst: int, now: float | None = None) -> RateDecision:
    """Take one request from the key's bucket (refilled at `rate_per_min`, holding at most `burst`).

    Several API servers may share the store: the update only applies if the bucket is still as read (its
    tokens and `refilled_at`), else it is re-read, so two servers never spend the same token.
    """
    per_s = rate_per_min / 60.0
    for _ in range(20):
        moment = time.time() if now is None else now
        with store.engine.begin() as conn:
            row = conn.execute(sa.select(api_rate_buckets).where(api_rate_buckets.c.key_id == key_id)).first()
            if row is None:  # the key's first request: a full bucket (a concurrent first insert is ignored)
                conn.execute(_insert_bucket(store).values(key_id=key_id, tokens=float(burst), refilled_at=moment))
                row = conn.execute(sa.select(api_rate_buckets).where(api_rate_buckets.c.key_id == key_id)).first()
            tokens = min(float(burst), row.tokens + max(0.0, moment - row.refilled_at) * per_s)
            allowed = tokens >= 1.0
            left = tokens - 1.0 if allowed else tokens
            changed = conn.execute(
                api_rate_buckets.update()
                # Compare-and-set on both: a spend within the same clock tick leaves `refilled_at` unchanged.
                .where(
                    (api_rate_buckets.c.key_id == key_id)
                    & (api_rate_buckets.c.refilled_at == row.refilled_at)
                    & (api_rate_buckets.c.tokens == row.tokens)
                )
                .values(tokens=left, refilled_at=max(moment, row.refilled_at))
            ).rowcount
        if changed:
            wait = 0.0 if allowed else (1.0 - left) / per_s
            return RateDecision(allowed, int(left), wait)
    # Heavy contention on one key: refusing is the safe answer.
    return RateDecision(False, 0, 1.0)


def _insert_bucket(store: HotStore) -> Any:
    if store.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(api_rate_buckets).on_conflict_do_nothing(index_elements=["key_id"])
