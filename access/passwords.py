"""Passwords: scrypt hashes, constant-time checks, generated passwords and the rules a new one must meet."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from access.roles import AccessError

MIN_PASSWORD = 12

# scrypt cost: 2**15 * 8 * 128 bytes = 32 MiB and ~50 ms per check, OWASP's recommended floor.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


# --- passwords ---------------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A salted scrypt hash, stored as `scrypt$n$r$p$salt$hash` (hex) so the cost can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 2**20, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    """Constant-time comparison against a stored hash; False for a missing or malformed hash."""
    try:
        scheme, n, r, p, salt, expected = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32, maxmem=64 * 2**20
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, ~120 bits


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccessError(f"a password needs at least {MIN_PASSWORD} characters")
