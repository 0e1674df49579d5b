"""Users: accounts, roles and grants, logins, revocation; `acting` checks a user's role before any action.

Every action takes the acting user's *name*, re-loads that user from the store and checks the role with
`access.roles.require` before touching anything: a revoked user is refused on the very next request, whatever
the browser still shows. Each change writes one audit row in the same transaction as the change itself.
"""

from __future__ import annotations

import functools
import math
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from access import roles, sessions, throttle
from access.audit import audit, audit_alone
from access.passwords import check_new_password, check_password, generate_password, hash_password
from access.roles import AccessError, PermissionDenied
from config.limits import LoginLimits, load_limits
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import api_keys, role_grants, users

# Who acts when the command line (run by someone holding the database credentials) changes something.
SYSTEM = "system"

NAME_PATTERN = "letters, digits, '.', '_', '-' or '@', up to 128"
# --- users ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    name: str
    email: str | None
    role: str | None
    active: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def title(self) -> str:
        return roles.ROLE_TITLES.get(self.role or "", "no role")

    def can(self, permission: str) -> bool:
        return self.active and roles.allowed(self.role, permission)


def _user(row: Any) -> User:
    return User(
        name=row.name,
        email=row.email,
        role=row.role,
        active=bool(row.active),
        created_at=as_utc(row.created_at),
        last_login_at=as_utc(row.last_login_at) if row.last_login_at else None,
    )


def get_user(store: HotStore, name: str) -> User | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    return _user(row) if row else None


def user_for_email(store: HotStore, email: str) -> User | None:
    """The user row an OIDC identity maps to (e-mail addresses compare case-insensitively)."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(sa.func.lower(users.c.email) == email.strip().lower())).first()
    return _user(row) if row else None


def list_users(store: HotStore) -> list[User]:
    with store.engine.connect() as conn:
        return [_user(row) for row in conn.execute(sa.select(users).order_by(users.c.name))]


def acting(store: HotStore, actor: str, permission: str) -> User:
    """The acting user, freshly loaded, if active and allowed `permission`; PermissionDenied otherwise."""
    user = get_user(store, actor)
    if user is None:
        raise PermissionDenied(f"unknown user {actor!r}")
    if not user.active:
        raise PermissionDenied(f"user {actor!r} has been revoked")
    roles.require(user.role, permission)
    return user


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 128 or not all(ch.isalnum() or ch in "._-@" for ch in name):
        raise AccessError(f"invalid user name {name!r}: {NAME_PATTERN}")
    return name


def valid_role(role: str | None) -> str | None:
    if role is not None and role not in roles.ROLES:
        raise AccessError(f"unknown role {role!r}: one of {', '.join(roles.ROLES)}")
    return role


def _snapshot(row: Any) -> dict[str, Any] | None:
    """A user (a stored row or the values about to be inserted) as the audit log records it: never the hash."""
    if row is None:
        return None
    data = row if isinstance(row, dict) else row._mapping
    return {"name": data["name"], "email": data["email"], "role": data["role"], "active": bool(data["active"])}


def _insert_user(
    conn: Connection, by: str, name: str, role: str | None, password: str | None, email: str | None, reason: str
) -> None:
    name = _valid_name(name)
    valid_role(role)
    if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
        raise AccessError(f"user {name!r} exists")
    if email and conn.execute(sa.select(users.c.name).where(sa.func.lower(users.c.email) == email.lower())).first():
        raise AccessError(f"e-mail {email!r} belongs to another user")
    if password is not None:
        check_new_password(password)
    row = {
        "name": name,
        "email": email or None,
        "role": role,
        "active": True,
        "password_hash": hash_password(password) if password is not None else None,
        "created_at": utcnow(),
    }
    conn.execute(users.insert().values(**row))
    if role is not None:
        grant_role(conn, name, role, None, by, reason)
    audit(conn, by, "user.create", name, None, _snapshot(row), reason)


def create_user(
    store: HotStore,
    actor: str,
    name: str,
    role: str | None,
    password: str | None = None,
    email: str | None = None,
    reason: str = "created in the console",
) -> User:
    """A new account (Super Admin only). A local account needs a password; an SSO-only one an e-mail.

    Admin and above is never given at creation: it goes through the access procedure (`procedure_only`)."""
    acting(store, actor, "manage_users")
    procedure_only(role)
    if password is None and not email:
        raise AccessError("give a password (local account) or an e-mail (single sign-on)")
    with store.engine.begin() as conn:
        _insert_user(conn, actor, name, role, password, email, reason)
    return get_user(store, name)  # type: ignore[return-value]


def create_user_as_system(
    store: HotStore, operator: str, name: str, role: str | None, password: str | None, email: str | None = None
) -> User:
    """A user made by whoever holds the database credentials (test fixtures, migrations), audited as the system.
    The command line no longer uses it (`nightwatch users add` acts as a signed-in Super Admin); Admin and above
    goes through the access procedure here too."""
    procedure_only(role)
    with store.engine.begin() as conn:
        _insert_user(conn, f"{SYSTEM}:{operator}", name, role, password, email, "created with nightwatch users add")
    return get_user(store, name)  # type: ignore[return-value]


def create_service_user(store: HotStore, actor: str, name: str, role: str, reason: str) -> User:
    """A service account's user: no password and no e-mail, so it cannot log in; it acts by its API keys
    (access/identity.py). Super Admin only."""
    acting(store, actor, "manage_users")
    procedure_only(role)
    with store.engine.begin() as conn:
        _insert_user(conn, actor, name, role, None, None, f"service account: {reason}")
    return get_user(store, name)  # type: ignore[return-value]


def procedure_only(role: str | None) -> None:
    """Refuse to give Admin or above directly: the guide's access procedure (request, manager approval, security
    review; access/procedures.py) is the only way, apart from the one-time bootstrap of the first Super Admin."""
    if role is not None and roles.at_least(role, "admin"):
        raise AccessError(
            f"{roles.ROLE_TITLES[role]} is granted only through the access procedure: the user requests it "
            "(nightwatch users request), a manager approves, a Super Admin does the security review"
        )


def super_admins(store: HotStore) -> list[str]:
    query = sa.select(users.c.name).where((users.c.role == "super_admin") & users.c.active.is_(True))
    with store.engine.connect() as conn:
        return list(conn.execute(query.order_by(users.c.name)).scalars())


def bootstrap(store: HotStore, name: str = "admin", password: str | None = None) -> str | None:
    """Create the first Super Admin if none is active; returns the password to show once, or None if one exists.

    The password is the one given (e.g. $NIGHTWATCH_ADMIN_PASSWORD) or a freshly generated one: never a default.
    """
    if super_admins(store):
        return None
    password = password or generate_password()
    with store.engine.begin() as conn:
        _insert_user(conn, f"{SYSTEM}:bootstrap", name, "super_admin", password, None, "first Super Admin")
    return password


class LoginLocked(AccessError):
    """Too many failed logins for this account or from this client: refused without checking the password."""

    def __init__(self, retry_after_s: float):
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"too many failed logins: try again in {self.retry_after_s} s")


@functools.lru_cache(maxsize=1)
def _login_limits() -> LoginLimits:
    return load_limits().login


def login_field_problem(value: str, what: str, max_chars: int) -> str | None:
    """Why a login field cannot even be looked up (too long, a NUL, a lone surrogate), or None."""
    if not isinstance(value, str):
        return f"{what} is not text"
    if len(value) > max_chars:
        return f"{what} longer than {max_chars} characters"
    if "\x00" in value:
        return f"{what} holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} is not valid Unicode text"
    return None


def _loggable(name: str) -> str:
    """A name as the audit log can hold it (actor and target columns: 160 characters, no NUL)."""
    text = name.strip().encode("ascii", "backslashreplace").decode("ascii").replace("\x00", "\\x00")
    return (text[:120] + "…") if len(text) > 120 else (text or "?")


def authenticate(
    store: HotStore, name: str, password: str, client: str | None = None, limits: LoginLimits | None = None
) -> User | None:
    """The user if the name and password match an active local account (records the login), else None.

    Throttled per account and per `client` (the caller's address, when known; access/throttle.py): during a
    lockout it raises `LoginLocked` without checking anything. Fields that no account can have (too long, a NUL,
    a lone surrogate) fail like a wrong password, before any query.
    """
    limits = limits or _login_limits()
    name = name.strip() if isinstance(name, str) else ""
    subjects = [throttle.subject("user", name)] + ([throttle.subject("client", client)] if client else [])
    lock = throttle.locked(store, subjects)
    if lock is not None:
        raise LoginLocked(lock.retry_after_s)
    problem = login_field_problem(name, "user name", limits.max_name_chars) or login_field_problem(
        password, "password", limits.max_password_chars
    )
    row = None
    if problem is None:
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    # Hash even for an unknown name, so the answer takes as long whether or not the user exists.
    ok = problem is None and check_password(password, row.password_hash if row else _DUMMY_HASH)
    if row is None or not ok or not row.active:
        started = throttle.record_failure(store, subjects, limits)
        who = _loggable(name)
        if started:  # one audit row per lockout, not one per guess
            detail = f"local: locked after repeated failures ({', '.join(s.split(':')[0] for s in started)})"
            audit_alone(store, who, "login.locked", who, None, None, detail + (f" from {client}" if client else ""))
        else:
            audit_alone(store, who, "login.failed", who, None, None, f"local: {problem}" if problem else "local")
        return None
    throttle.record_success(store, subjects)
    return record_login(store, row.name, "local")


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def record_login(store: HotStore, name: str, method: str) -> User | None:
    """Note a successful login (local or OIDC) for the quarterly review; None if the user is not active."""
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None or not row.active:
            return None
        conn.execute(users.update().where(users.c.name == name).values(last_login_at=utcnow()))
        audit(conn, name, "login", name, None, None, method)
    return get_user(store, name)


def register_identity(store: HotStore, email: str) -> User:
    """An OIDC identity with no account gets a role-less user, which may only request access."""
    existing = user_for_email(store, email)
    if existing:
        return existing
    base = _valid_name(email.strip().lower())
    with store.engine.begin() as conn:
        _insert_user(conn, f"oidc:{email}", base, None, None, email.strip(), "signed in with single sign-on")
    return get_user(store, base)  # type: ignore[return-value]


def grant_role(conn: Connection, name: str, role: str | None, request_id: int | None, by: str, reason: str) -> None:
    """Record and apply a role change. The old role's grants end at once ("automatic on role change"): the user's
    console sessions and API keys made under it stop working from the next request (audited)."""
    previous = conn.execute(sa.select(users.c.role).where(users.c.name == name)).scalar()
    if previous is not None and previous != role:
        _revoke_grants(conn, name, by, f"role change {previous} -> {role or 'none'}: {reason}")
    conn.execute(
        role_grants.insert().values(
            user_name=name,
            role=role,
            previous_role=previous,
            granted_by=by,
            reason=reason,
            request_id=request_id,
            at=utcnow(),
        )
    )
    conn.execute(users.update().where(users.c.name == name).values(role=role))


def _revoke_grants(conn: Connection, name: str, by: str, why: str) -> None:
    """End every session and API key `name` holds, in the role change's transaction."""
    keys = list(
        conn.execute(
            sa.select(api_keys.c.key_id).where((api_keys.c.user_name == name) & api_keys.c.revoked_at.is_(None))
        ).scalars()
    )
    if keys:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.key_id.in_(keys) & api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_by=by)
        )
    sessions.revoke_sessions_in(conn, name)
    audit(conn, by, "grants.revoke", name, None, {"api_keys": keys, "sessions": "all"}, why)


def _change_user(store: HotStore, actor: str, name: str, action: str, reason: str, **values: Any) -> User:
    if not reason.strip():
        raise AccessError("give a reason: it goes into the audit log and the access review")
    with store.engine.begin() as conn:
        before = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if before is None:
            raise AccessError(f"no user {name!r}")
        if "role" in values:
            grant_role(conn, name, values.pop("role"), None, actor, reason)
        if values:
            conn.execute(users.update().where(users.c.name == name).values(**values))
        after = conn.execute(sa.select(users).where(users.c.name == name)).first()
        audit(conn, actor, action, name, _snapshot(before), _snapshot(after), reason)
    return get_user(store, name)  # type: ignore[return-value]


def set_role(store: HotStore, actor: str, name: str, role: str | None, reason: str) -> User:
    """Change a user's role (Super Admin). The old role's rights end at once: every action re-reads the role."""
    acting(store, actor, "manage_users")
    valid_role(role)
    current = get_user(store, name)
    raising = role is not None and (current is None or current.role is None or not roles.at_least(current.role, role))
    if raising:
        procedure_only(role)  # raising someone to Admin or above: only through the access procedure
    if name == actor and role != "super_admin":
        raise AccessError("you cannot lower your own role: ask another Super Admin")
    return _change_user(store, actor, name, "user.set_role", reason, role=role)


def revoke(store: HotStore, actor: str, name: str, reason: str) -> User:
    """Immediate revocation (termination): the user is refused on their next request, in every session."""
    acting(store, actor, "manage_users")
    if name == actor:
        raise AccessError("you cannot revoke yourself")
    return _change_user(store, actor, name, "user.revoke", reason, active=False, role=None)


def reinstate(store: HotStore, actor: str, name: str, reason: str) -> User:
    """Let a revoked user log in again, with no role: access is then requested and approved anew."""
    acting(store, actor, "manage_users")
    return _change_user(store, actor, name, "user.reinstate", reason, active=True)


def reset_password(store: HotStore, actor: str, name: str, password: str, current_password: str | None = None) -> User:
    """A new password for a user (Super Admin), or for oneself (anyone logged in, giving the current one)."""
    if name != actor:
        acting(store, actor, "manage_users")
    else:
        with store.engine.connect() as conn:
            me = conn.execute(sa.select(users).where(users.c.name == actor)).first()
        if me is None or not me.active:
            raise PermissionDenied(f"user {actor!r} cannot change a password")
        if me.password_hash is None:
            raise AccessError("your account signs in with single sign-on: ask a Super Admin for a local password")
        if not current_password or not check_password(current_password, me.password_hash):
            raise AccessError("the current password is wrong: give it to change your password")
    check_new_password(password)
    return _change_user(store, actor, name, "user.password", "password changed", password_hash=hash_password(password))
