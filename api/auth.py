"""Who is calling: the API key in `Authorization: Bearer <key>`, its role, and its rate limit.

Every request re-reads the key and its owner from the hot store (access.apikeys.authenticate), so a revoked
key is refused on the very next request, and takes one token from the key's bucket before any work is done.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from access import apikeys, roles
from access.apikeys import ApiKey
from api.errors import ApiError
from config.limits import ApiLimits, load_limits
from store.hot import HotStore
from store.schema import api_rate_buckets

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `nightwatch api-keys create`, sent as `Authorization: Bearer nw_...`",
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nightwatch"'}


@dataclass(frozen=True)
class ApiSettings:
    store_url: str
    warm_root: str | None = None
    archive_root: str | None = None  # the archive tier: raw packets, for cutouts
    rate_per_min: float = 600.0  # each key's sustained rate, unless the key sets its own
    burst: int = 120  # requests a key may make at once after being idle
    poll_s: float = 1.0  # how often the live feed looks for new alerts
    heartbeat_s: float = 15.0  # a comment line this often keeps proxies from closing an idle feed
    status_ttl_s: float = 15.0  # the public status page is computed at most this often
    # Requests with unknown keys, per client address (config/limits.yaml `api`), and live feeds per key.
    limits: ApiLimits = field(default_factory=lambda: load_limits().api)  # read once per server


def identify(store: HotStore, token: str | None) -> ApiKey:
    """The active key for a token, or a 401 saying what is wrong with it."""
    if not token:
        raise ApiError(401, "an API key is required: send Authorization: Bearer <key>", headers=CHALLENGE)
    key = apikeys.authenticate(store, token)
    if key is None:
        raise ApiError(401, "unknown API key", headers=CHALLENGE)
    if key.revoked_at is not None:
        raise ApiError(401, f"API key {key.key_id} was revoked", {"key_id": key.key_id}, headers=CHALLENGE)
    if not key.active:
        raise ApiError(
            401, f"the owner of API key {key.key_id} has been revoked", {"key_id": key.key_id}, headers=CHALLENGE
        )
    return key


def limit_rate(store: HotStore, settings: ApiSettings, key: ApiKey, response: Response | None = None) -> None:
    rate = key.rate_per_min or settings.rate_per_min
    burst = key.burst or settings.burst
    decision = apikeys.take_token(store, key.key_id, rate, burst)
    if not decision.allowed:
        wait = max(1, math.ceil(decision.retry_after_s))
        raise ApiError(
            429,
            f"rate limit of {rate:g} requests a minute (bursts of {burst}) exceeded: retry in {wait} s",
            {"key_id": key.key_id, "rate_per_min": rate, "burst": burst, "retry_after_s": wait},
            headers={"Retry-After": str(wait), "X-RateLimit-Limit": f"{rate:g}", "X-RateLimit-Remaining": "0"},
        )
    if response is not None:
        response.headers["X-RateLimit-Limit"] = f"{rate:g}"
        response.headers["X-RateLimit-Remaining"] = str(decision.remaining)


# --- unknown keys: a bucket per client address, in the same table as the keys' buckets ------------------------


def client_bucket(request: Request) -> str:
    """The bucket of a client address (hashed to fit the key id column; "ip:" cannot clash with "key_")."""
    host = request.client.host if request.client else "unknown"
    return "ip:" + hashlib.sha256(host.encode()).hexdigest()[:29]


def _unknown_key_refusal(settings: ApiSettings, wait_s: float) -> ApiError:
    wait = max(1, math.ceil(wait_s))
    return ApiError(
        429,
        f"too many requests with unknown API keys from this address: retry in {wait} s",
        {
            "rate_per_min": settings.limits.unknown_key_per_min,
            "burst": settings.limits.unknown_key_burst,
            "retry_after_s": wait,
        },
        headers={"Retry-After": str(wait)},
    )


def refuse_if_guessing(store: HotStore, settings: ApiSettings, bucket: str) -> None:
    """429 before any key is looked up while this address has spent its unknown-key allowance (so guessing keys
    from it stops, valid guesses included, until the bucket refills)."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(api_rate_buckets).where(api_rate_buckets.c.key_id == bucket)).first()
    if row is None:
        return
    per_s = settings.limits.unknown_key_per_min / 60.0
    tokens = min(float(settings.limits.unknown_key_burst), row.tokens + max(0.0, time.time() - row.refilled_at) * per_s)
    if tokens < 1.0:
        raise _unknown_key_refusal(settings, (1.0 - tokens) / per_s)


def count_unknown_key(store: HotStore, settings: ApiSettings, bucket: str) -> None:
    decision = apikeys.take_token(store, bucket, settings.limits.unknown_key_per_min, settings.limits.unknown_key_burst)
    if not decision.allowed:
        raise _unknown_key_refusal(settings, decision.retry_after_s)


# --- live feeds per key (per API server process) ----------------------------------------------------------------

_feeds: dict[str, int] = {}
_feeds_lock = threading.Lock()


@contextmanager
def feed_slot(key_id: str, cap: int) -> Iterator[None]:
    """Hold one of the key's live-feed slots while the feed is open; 429 if all are taken."""
    with _feeds_lock:
        if _feeds.get(key_id, 0) >= cap:
            raise ApiError(
                429,
                f"API key {key_id} already has {cap} live feeds open: close one first",
                {"key_id": key_id, "max_feeds_per_key": cap},
                headers={"Retry-After": "5"},
            )
        _feeds[key_id] = _feeds.get(key_id, 0) + 1
    try:
        yield
    finally:
        with _feeds_lock:
            _feeds[key_id] -= 1
            if not _feeds[key_id]:
                del _feeds[key_id]


def open_feeds(key_id: str) -> int:
    with _feeds_lock:
        return _feeds.get(key_id, 0)


def requires(permission: str) -> Callable[..., Iterator[ApiKey]]:
    """A dependency: the calling key, if it may do `permission` and is within its rate limit.

    Unknown keys are counted per client address (429 once over the limit); a live feed holds one of its key's
    feed slots until it closes (the dependency's exit runs after the response is sent).
    """

    def dependency(
        request: Request, response: Response, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Iterator[ApiKey]:
        store: HotStore = request.app.state.store
        settings: ApiSettings = request.app.state.settings
        token = credentials.credentials if credentials else None
        bucket = client_bucket(request)
        if token:
            refuse_if_guessing(store, settings, bucket)
        try:
            key = identify(store, token)
        except ApiError as exc:
            if token and exc.message == "unknown API key":
                count_unknown_key(store, settings, bucket)
            raise
        # Counted before the role check, so a key cannot hammer the API with requests it is refused.
        limit_rate(store, settings, key, response)
        if not key.can(permission):
            needed = roles.ROLE_TITLES[roles.lowest_role_with(permission)]
            have = roles.ROLE_TITLES.get(key.effective_role or "", "no role")
            raise ApiError(
                403,
                f"{permission.replace('_', ' ')} needs a key with the {needed} role (this key is {have})",
                {"key_id": key.key_id, "role": key.effective_role, "needs": roles.lowest_role_with(permission)},
            )
        if request.url.path.endswith("/alerts/stream"):
            with feed_slot(key.key_id, settings.limits.max_feeds_per_key):
                yield key
        else:
            yield key

    return dependency
