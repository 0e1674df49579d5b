"""Console sessions that survive a browser reload: a signed token with an expiry, revocable on the server.

The token is `payload.signature`: the payload (user name, issued and expiry times, a nonce) in URL-safe base64,
signed with HMAC-SHA256. The key is $NIGHTWATCH_SESSION_SECRET, else one generated once and kept in the hot store
(`nightwatch_meta`), so every console process over the same store accepts the same tokens. A token is refused
when its signature is wrong, it has expired, or its user's sessions were revoked after it was issued (logging out
revokes every session of that user; `revoke_sessions`). The token names a user only: who that user is, whether
still active and with which role, is re-read from the store on every run (`access.accounts`), so a revoked user
stays refused whatever token they hold.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

import sqlalchemy as sa

from config.environment import environment
from store.hot import HotStore
from store.schema import meta

SESSION_HOURS = 12.0  # a night shift; NIGHTWATCH_SESSION_HOURS changes it
_SECRET_KEY = "console_session_secret"


def _revoked_key(name: str) -> str:
    return "session_revoked:" + hashlib.sha256(name.encode()).hexdigest()[:40]


def _meta_value(store: HotStore, key: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()


def _secret(store: HotStore) -> bytes:
    configured = environment().session_secret
    if configured:
        return configured.encode()
    value = _meta_value(store, _SECRET_KEY)
    if value is None:
        try:
            with store.engine.begin() as conn:
                conn.execute(meta.insert().values(key=_SECRET_KEY, value=secrets.token_hex(32)))
        except sa.exc.IntegrityError:  # another console process made it first: use theirs
            pass
        value = _meta_value(store, _SECRET_KEY)
    return str(value).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(store: HotStore, name: str, hours: float | None = None, now: float | None = None) -> str:
    """A new session token for `name` (who has just logged in)."""
    issued = time.time() if now is None else now
    lifetime = hours if hours is not None else environment().session_hours or SESSION_HOURS
    payload = {"u": name, "iat": issued, "exp": issued + lifetime * 3600, "n": secrets.token_hex(8)}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_secret(store), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify(store: HotStore, token: str | None, now: float | None = None) -> str | None:
    """The user name a valid token stands for; None if it is forged, expired or revoked."""
    if not token or token.count(".") != 1:
        return None
    body, signature = token.split(".")
    expected = _b64(hmac.new(_secret(store), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        payload = json.loads(_unb64(body))
        name, issued, expires = str(payload["u"]), float(payload["iat"]), float(payload["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    if (time.time() if now is None else now) >= expires:
        return None
    revoked = _meta_value(store, _revoked_key(name))
    if revoked is not None and issued <= float(revoked):
        return None
    return name


def revoke_sessions(store: HotStore, name: str, now: float | None = None) -> None:
    """Every token issued to `name` until now is refused from the next request on (logging out does this)."""
    with store.engine.begin() as conn:
        revoke_sessions_in(conn, name, now)


def revoke_sessions_in(conn: sa.Connection, name: str, now: float | None = None) -> None:
    """`revoke_sessions` inside the caller's transaction (a role change revokes with the change itself)."""
    key, value = _revoked_key(name), repr(time.time() if now is None else now)
    if conn.execute(sa.select(meta.c.key).where(meta.c.key == key)).first() is None:
        conn.execute(meta.insert().values(key=key, value=value))
    else:
        conn.execute(meta.update().where(meta.c.key == key).values(value=value))
