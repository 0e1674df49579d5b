"""Who is calling: the API key in `Authorization: Bearer <key>`, its role, and its rate limit.

Every request re-reads the key and its owner from the hot store (access.apikeys.authenticate), so a revoked
key is refused on the very next request, and takes one token from the key's bucket before any work is done.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from access import apikeys, roles
from access.apikeys import ApiKey
from api.errors import ApiError
from store.hot import HotStore

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
    rate_per_min: float = 600.0  # each key's sustained rate, unless the key sets its own
    burst: int = 120  # requests a key may make at once after being idle
    poll_s: float = 1.0  # how often the live feed looks for new alerts
    heartbeat_s: float = 15.0  # a comment line this often keeps proxies from closing an idle feed


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


def requires(permission: str) -> Callable[..., ApiKey]:
    """A dependency: the calling key, if it may do `permission` and is within its rate limit."""

    def dependency(
        request: Request, response: Response, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> ApiKey:
        store: HotStore = request.app.state.store
        key = identify(store, credentials.credentials if credentials else None)
        # Counted before the role check, so a key cannot hammer the API with requests it is refused.
        limit_rate(store, request.app.state.settings, key, response)
        if not key.can(permission):
            needed = roles.ROLE_TITLES[roles.lowest_role_with(permission)]
            have = roles.ROLE_TITLES.get(key.effective_role or "", "no role")
            raise ApiError(
                403,
                f"{permission.replace('_', ' ')} needs a key with the {needed} role (this key is {have})",
                {"key_id": key.key_id, "role": key.effective_role, "needs": roles.lowest_role_with(permission)},
            )
        return key

    return dependency
