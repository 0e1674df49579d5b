"""Who may do what in the console, and the record of what they did.

Users and their passwords, the guide's access procedures (request, manager approval, security review for Admin
and above, immediate revocation, the quarterly review), the append-only audit log, and the actions operators
take: acknowledging, escalating and resolving alerts, deciding review-queue items, publishing thresholds.

Every action takes the acting user's *name*, re-loads that user from the store and checks the role with
`pipeline.roles.require` before touching anything: a revoked user is refused on the very next request, whatever
the browser still shows. Each change writes one audit row (who, when, what, before, after) in the same
transaction as the change itself.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline import roles
from pipeline.event import as_utc, utcnow
from pipeline.roles import PermissionDenied
from pipeline.store import (
    HotStore,
    access_requests,
    alert_actions,
    alerts,
    audit_log,
    events,
    review_decisions,
    review_queue,
    role_grants,
    users,
)

# Who acts when the command line (run by someone holding the database credentials) changes something.
SYSTEM = "system"

NAME_PATTERN = "letters, digits, '.', '_', '-' or '@', up to 128"
MIN_PASSWORD = 12

# scrypt cost: 2**15 * 8 * 128 bytes = 32 MiB and ~50 ms per check, OWASP's recommended floor.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


class AccessError(ValueError):
    """An action that cannot be done as asked (unknown user, wrong state, missing note); the message says why."""


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


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccessError(f"a password needs at least {MIN_PASSWORD} characters")


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


def _valid_role(role: str | None) -> str | None:
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
    _valid_role(role)
    if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
        raise AccessError(f"user {name!r} exists")
    if email and conn.execute(sa.select(users.c.name).where(sa.func.lower(users.c.email) == email.lower())).first():
        raise AccessError(f"e-mail {email!r} belongs to another user")
    if password is not None:
        _check_new_password(password)
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
        _grant(conn, name, role, None, by, reason)
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
    """A new account (Super Admin only). A local account needs a password; an SSO-only one an e-mail."""
    acting(store, actor, "manage_users")
    if password is None and not email:
        raise AccessError("give a password (local account) or an e-mail (single sign-on)")
    with store.engine.begin() as conn:
        _insert_user(conn, actor, name, role, password, email, reason)
    return get_user(store, name)  # type: ignore[return-value]


def create_user_as_system(
    store: HotStore, operator: str, name: str, role: str | None, password: str | None, email: str | None = None
) -> User:
    """`nightwatch users add`: whoever holds the database credentials acts as the system (audited as such)."""
    with store.engine.begin() as conn:
        _insert_user(conn, f"{SYSTEM}:{operator}", name, role, password, email, "created with nightwatch users add")
    return get_user(store, name)  # type: ignore[return-value]


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


def authenticate(store: HotStore, name: str, password: str) -> User | None:
    """The user if the name and password match an active local account (records the login), else None."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name.strip())).first()
    # Hash even for an unknown name, so the answer takes as long whether or not the user exists.
    ok = check_password(password, row.password_hash if row else _DUMMY_HASH)
    if row is None or not ok or not row.active:
        _audit_alone(store, name.strip() or "?", "login.failed", name.strip(), None, None, "local")
        return None
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


def _grant(conn: Connection, name: str, role: str | None, request_id: int | None, by: str, reason: str) -> None:
    previous = conn.execute(sa.select(users.c.role).where(users.c.name == name)).scalar()
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


def _change_user(store: HotStore, actor: str, name: str, action: str, reason: str, **values: Any) -> User:
    if not reason.strip():
        raise AccessError("give a reason: it goes into the audit log and the access review")
    with store.engine.begin() as conn:
        before = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if before is None:
            raise AccessError(f"no user {name!r}")
        if "role" in values:
            _grant(conn, name, values.pop("role"), None, actor, reason)
        if values:
            conn.execute(users.update().where(users.c.name == name).values(**values))
        after = conn.execute(sa.select(users).where(users.c.name == name)).first()
        audit(conn, actor, action, name, _snapshot(before), _snapshot(after), reason)
    return get_user(store, name)  # type: ignore[return-value]


def set_role(store: HotStore, actor: str, name: str, role: str | None, reason: str) -> User:
    """Change a user's role (Super Admin). The old role's rights end at once: every action re-reads the role."""
    acting(store, actor, "manage_users")
    _valid_role(role)
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


def reset_password(store: HotStore, actor: str, name: str, password: str) -> User:
    """A new password for a user (Super Admin), or for oneself (anyone logged in)."""
    if name != actor:
        acting(store, actor, "manage_users")
    else:
        me = get_user(store, actor)
        if me is None or not me.active:
            raise PermissionDenied(f"user {actor!r} cannot change a password")
    _check_new_password(password)
    return _change_user(store, actor, name, "user.password", "password changed", password_hash=hash_password(password))


# --- access requests (the guide's access procedures) --------------------------------------------------------


@dataclass(frozen=True)
class AccessRequest:
    request_id: int
    user_name: str
    role: str
    justification: str
    status: str  # pending | security_review | granted | rejected
    requested_at: datetime
    manager: str | None
    manager_note: str | None
    security_reviewer: str | None
    security_note: str | None

    @property
    def needs_security_review(self) -> bool:
        return roles.at_least(self.role, "admin")


def _request(row: Any) -> AccessRequest:
    return AccessRequest(
        request_id=row.request_id,
        user_name=row.user_name,
        role=row.role,
        justification=row.justification,
        status=row.status,
        requested_at=as_utc(row.requested_at),
        manager=row.manager,
        manager_note=row.manager_note,
        security_reviewer=row.security_reviewer,
        security_note=row.security_note,
    )


def request_access(store: HotStore, requester: str, role: str, justification: str) -> AccessRequest:
    """Step 1: any active user (even one with no role yet) asks for a role, saying why."""
    user = get_user(store, requester)
    if user is None or not user.active:
        raise PermissionDenied(f"user {requester!r} cannot request access")
    _valid_role(role)
    if user.role and roles.at_least(user.role, role):
        raise AccessError(f"you already hold {user.title}, which includes {roles.ROLE_TITLES[role]}")
    if len(justification.strip()) < 10:
        raise AccessError("give a justification (at least 10 characters): what do you need the role for?")
    with store.engine.begin() as conn:
        open_ = conn.execute(
            sa.select(access_requests.c.request_id).where(
                (access_requests.c.user_name == requester)
                & access_requests.c.status.in_(("pending", "security_review"))
            )
        ).first()
        if open_:
            raise AccessError(f"you have an open request (#{open_.request_id}): wait for its decision")
        row = {
            "user_name": requester,
            "role": role,
            "justification": justification.strip(),
            "status": "pending",
            "requested_at": utcnow(),
        }
        request_id = conn.execute(access_requests.insert().values(**row)).inserted_primary_key[0]
        audit(conn, requester, "access.request", f"request:{request_id}", None, {**row, "requested_at": None}, "")
    return get_request(store, int(request_id))


def get_request(store: HotStore, request_id: int) -> AccessRequest:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(access_requests).where(access_requests.c.request_id == request_id)).first()
    if row is None:
        raise AccessError(f"no access request #{request_id}")
    return _request(row)


def list_requests(store: HotStore, status: str | None = None, user_name: str | None = None) -> list[AccessRequest]:
    query = sa.select(access_requests).order_by(access_requests.c.request_id.desc())
    if status:
        query = query.where(access_requests.c.status == status)
    if user_name:
        query = query.where(access_requests.c.user_name == user_name)
    with store.engine.connect() as conn:
        return [_request(row) for row in conn.execute(query)]


def _decide_request(
    store: HotStore, actor: str, request_id: int, expected: str, values: dict[str, Any], grant: bool, note: str
) -> AccessRequest:
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(access_requests).where(access_requests.c.request_id == request_id)).first()
        if row is None:
            raise AccessError(f"no access request #{request_id}")
        if row.status != expected:
            raise AccessError(f"request #{request_id} is {row.status}, not {expected}")
        if row.user_name == actor:
            raise AccessError("you cannot decide your own access request")
        conn.execute(access_requests.update().where(access_requests.c.request_id == request_id).values(**values))
        if grant:
            user = conn.execute(sa.select(users).where(users.c.name == row.user_name)).first()
            if user is None or not user.active:
                raise AccessError(f"user {row.user_name!r} has been revoked: the request cannot be granted")
            _grant(conn, row.user_name, row.role, request_id, actor, f"access request #{request_id}: {note}")
        audit(
            conn,
            actor,
            f"access.{values['status']}",
            f"request:{request_id}",
            {"status": row.status, "user": row.user_name, "role": row.role},
            {"status": values["status"], "user": row.user_name, "role": row.role},
            note,
        )
    return get_request(store, request_id)


def approve_request(store: HotStore, actor: str, request_id: int, note: str) -> AccessRequest:
    """Step 2, the manager's approval (Admin). Observer and Operator are granted now; Admin and above go on to
    the security review."""
    acting(store, actor, "approve_access")
    request = get_request(store, request_id)
    needs_review = request.needs_security_review
    status = "security_review" if needs_review else "granted"
    values = {"status": status, "manager": actor, "manager_note": note, "manager_at": utcnow()}
    return _decide_request(store, actor, request_id, "pending", values, not needs_review, note)


def security_review(store: HotStore, actor: str, request_id: int, approve: bool, note: str) -> AccessRequest:
    """Step 3 for Admin and above: a Super Admin other than the approving manager signs off (or refuses)."""
    acting(store, actor, "security_review")
    if not note.strip():
        raise AccessError("the security review needs a note")
    if get_request(store, request_id).manager == actor:
        raise AccessError("the security review must be done by someone other than the approving manager")
    values = {
        "status": "granted" if approve else "rejected",
        "security_reviewer": actor,
        "security_note": note,
        "security_at": utcnow(),
    }
    return _decide_request(store, actor, request_id, "security_review", values, approve, note)


def reject_request(store: HotStore, actor: str, request_id: int, note: str) -> AccessRequest:
    """The manager turns a request down (Admin)."""
    acting(store, actor, "approve_access")
    if not note.strip():
        raise AccessError("say why the request is rejected")
    values = {"status": "rejected", "manager": actor, "manager_note": note, "manager_at": utcnow()}
    return _decide_request(store, actor, request_id, "pending", values, False, note)


# --- the quarterly access review -----------------------------------------------------------------------------

REVIEW_COLUMNS = ["user", "email", "role", "active", "created", "last_login", "grants"]


def access_review(store: HotStore) -> list[dict[str, Any]]:
    """Every user, their role, whether active, last login and the history of their grants (oldest first)."""
    with store.engine.connect() as conn:
        grants = conn.execute(sa.select(role_grants).order_by(role_grants.c.at, role_grants.c.grant_id)).all()
    history: dict[str, list[str]] = {}
    for grant in grants:
        what = roles.ROLE_TITLES.get(grant.role or "", "revoked")
        history.setdefault(grant.user_name, []).append(
            f"{as_utc(grant.at):%Y-%m-%d} {what} by {grant.granted_by} ({grant.reason})"
        )
    return [
        {
            "user": user.name,
            "email": user.email or "",
            "role": user.title,
            "active": "yes" if user.active else "revoked",
            "created": f"{user.created_at:%Y-%m-%d %H:%M}",
            "last_login": f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never",
            "grants": "; ".join(history.get(user.name, [])),
        }
        for user in list_users(store)
    ]


def review_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REVIEW_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def access_review_for(store: HotStore, actor: str) -> list[dict[str, Any]]:
    """The review as the console shows it: Super Admins only (audit permission); the viewing is audited."""
    acting(store, actor, "view_audit")
    rows = access_review(store)
    _audit_alone(store, actor, "access.review", "users", None, None, f"{len(rows)} users")
    return rows


# --- the audit log (append-only) ----------------------------------------------------------------------------


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def audit(
    conn: Connection, actor: str, action: str, target: str, before: Any, after: Any, note: str | None = None
) -> None:
    """Append one audit row inside the caller's transaction, so the change and its record commit together."""
    conn.execute(
        audit_log.insert().values(
            at=utcnow(),
            actor=actor,
            action=action,
            target=target,
            before=_json(before),
            after=_json(after),
            note=note or None,
        )
    )


def _audit_alone(
    store: HotStore, actor: str, action: str, target: str, before: Any, after: Any, note: str | None
) -> None:
    with store.engine.begin() as conn:
        audit(conn, actor, action, target, before, after, note)


def record(store: HotStore, actor: str, action: str, target: str, before: Any, after: Any, note: str = "") -> None:
    """Append one audit row for a change made elsewhere (configuration documents, the command line)."""
    _audit_alone(store, actor, action, target, before, after, note)


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    note: str | None


def audit_entries(
    store: HotStore, actor: str | None = None, action: str | None = None, target: str | None = None, limit: int = 500
) -> list[AuditEntry]:
    """The newest audit rows first, optionally for one actor, action prefix or target. Reading only: the log
    has no update or delete here, and the database refuses them (triggers)."""
    query = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action.startswith(action))
    if target:
        query = query.where(audit_log.c.target == target)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        AuditEntry(
            audit_id=row.audit_id,
            at=as_utc(row.at),
            actor=row.actor,
            action=row.action,
            target=row.target,
            before=json.loads(row.before) if row.before else None,
            after=json.loads(row.after) if row.after else None,
            note=row.note,
        )
        for row in rows
    ]


def audit_for(store: HotStore, viewer: str, **filters: Any) -> list[AuditEntry]:
    """The audit log for a Super Admin."""
    acting(store, viewer, "view_audit")
    return audit_entries(store, **filters)


# --- alerts: acknowledge, escalate, resolve ------------------------------------------------------------------

# The guide's alert response table: how soon each level must be acknowledged.
RESPONSE_TARGETS: dict[str, timedelta | None] = {
    "CRITICAL": timedelta(minutes=15),
    "HIGH": timedelta(hours=1),
    "MEDIUM": timedelta(hours=4),
    "LOW": None,  # next business day: see response_deadline
}
RESPONDERS = {"CRITICAL": "On-call + Science", "HIGH": "On-call", "MEDIUM": "Ops team", "LOW": "Ops team"}

# Which status each action leads to, and from which statuses it may be taken.
ALERT_TRANSITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "acknowledge": ("acknowledged", ("open",)),
    "escalate": ("escalated", ("open", "acknowledged")),
    "resolve": ("resolved", ("open", "acknowledged", "escalated")),
}


def response_deadline(level: str, created_at: datetime, site_zone: str = "UTC") -> datetime:
    """When an alert must have been acknowledged. LOW: the end (17:00 local) of the next business day."""
    target = RESPONSE_TARGETS.get(level)
    if target is not None:
        return created_at + target
    from zoneinfo import ZoneInfo

    local = created_at.astimezone(ZoneInfo(site_zone))
    day = local + timedelta(days=1)
    while day.weekday() >= 5:  # Saturday, Sunday
        day += timedelta(days=1)
    return day.replace(hour=17, minute=0, second=0, microsecond=0)


def alert_action(store: HotStore, actor: str, alert_id: str, action: str, note: str) -> str:
    """Acknowledge, escalate or resolve an alert (Operator and above), with a note; returns the new status."""
    acting(store, actor, "acknowledge_alerts")
    if action not in ALERT_TRANSITIONS:
        raise AccessError(f"unknown alert action {action!r}: one of {', '.join(ALERT_TRANSITIONS)}")
    if not note.strip():
        raise AccessError(f"{action} needs a note (what was done, who was told)")
    new_status, allowed_from = ALERT_TRANSITIONS[action]
    with store.engine.begin() as conn:
        status = conn.execute(sa.select(alerts.c.status).where(alerts.c.alert_id == alert_id)).scalar()
        if status is None:
            raise AccessError(f"no alert {alert_id!r}")
        if status not in allowed_from:
            raise AccessError(f"alert is {status}: cannot {action} it")
        conn.execute(alerts.update().where(alerts.c.alert_id == alert_id).values(status=new_status))
        conn.execute(
            alert_actions.insert().values(alert_id=alert_id, action=action, actor=actor, note=note.strip(), at=utcnow())
        )
        audit(conn, actor, f"alert.{action}", alert_id, {"status": status}, {"status": new_status}, note.strip())
    # The pages follow the portal: an acknowledge or resolve goes to PagerDuty for the same dedup_key (never raises).
    from pipeline.notify import alert_action_hook

    alert_action_hook(store, alert_id, action)
    return new_status


def alert_history(store: HotStore, alert_id: str) -> list[dict[str, Any]]:
    query = sa.select(alert_actions).where(alert_actions.c.alert_id == alert_id).order_by(alert_actions.c.action_id)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def first_responses(store: HotStore) -> dict[str, datetime]:
    """When each alert was first acted on (acknowledged, escalated or resolved): the end of its response timer."""
    query = sa.select(alert_actions.c.alert_id, sa.func.min(alert_actions.c.at)).group_by(alert_actions.c.alert_id)
    with store.engine.connect() as conn:
        return {alert_id: as_utc(at) for alert_id, at in conn.execute(query)}


# --- the review queue: promote, reject, comment ---------------------------------------------------------------

REVIEW_DECISIONS = {"promote": "promoted", "reject": "rejected", "comment": None}


@dataclass(frozen=True)
class ReviewDecision:
    event_id: str
    decision: str
    actor: str
    note: str
    at: datetime
    status: str  # the queue item's status after the decision


def decide_review(store: HotStore, actor: str, event_id: str, decision: str, note: str) -> ReviewDecision:
    """Promote, reject or comment on a review-queue event (Operator and above).

    The decision is recorded (who, when, note), the queue item's status follows it, and the event's lineage
    carries it (`review`, `reviewed_by`, `reviewed_at`), so the archive and replays see what people decided.
    Writing the decision record into the archive tier is the caller's second step (dashboard.decisions), done
    after this commit so a failed file write never loses the decision.
    """
    acting(store, actor, "decide_reviews")
    if decision not in REVIEW_DECISIONS:
        raise AccessError(f"unknown decision {decision!r}: one of {', '.join(REVIEW_DECISIONS)}")
    if not note.strip():
        raise AccessError(f"{decision} needs a note")
    at = utcnow()
    with store.engine.begin() as conn:
        status = conn.execute(sa.select(review_queue.c.status).where(review_queue.c.event_id == event_id)).scalar()
        if status is None:
            raise AccessError(f"{event_id!r} is not in the review queue")
        new_status = REVIEW_DECISIONS[decision] or status
        if REVIEW_DECISIONS[decision] and status != "pending":
            raise AccessError(f"the item is already {status}: comment on it instead")
        conn.execute(review_queue.update().where(review_queue.c.event_id == event_id).values(status=new_status))
        conn.execute(
            review_decisions.insert().values(
                event_id=event_id, decision=decision, actor=actor, note=note.strip(), at=at
            )
        )
        payload = conn.execute(sa.select(events.c.payload).where(events.c.event_id == event_id)).scalar()
        if payload is not None and decision != "comment":
            data = json.loads(payload)
            data["lineage"] = {
                **data.get("lineage", {}),
                "review": new_status,
                "reviewed_by": actor,
                "reviewed_at": at.isoformat(),
            }
            conn.execute(
                events.update()
                .where(events.c.event_id == event_id)
                .values(payload=json.dumps(data, sort_keys=True, separators=(",", ":")))
            )
        audit(conn, actor, f"review.{decision}", event_id, {"status": status}, {"status": new_status}, note.strip())
    return ReviewDecision(event_id, decision, actor, note.strip(), at, new_status)


def review_history(store: HotStore, event_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(review_decisions)
        .where(review_decisions.c.event_id == event_id)
        .order_by(review_decisions.c.decision_id)
    )
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


# --- thresholds ----------------------------------------------------------------------------------------------


def publish_thresholds(store: HotStore, actor: str, model: Any, replacing: Any, note: str) -> int:
    """Publish a new version of the filter cuts or classification rules (Operator and above), audited with the
    version in force it replaces. Running pipelines pick it up through ThresholdStore within seconds."""
    from config.settings import FiltersConfig
    from pipeline.thresholds import ThresholdStore

    acting(store, actor, "adjust_thresholds")
    if not note.strip():
        raise AccessError("say why the thresholds change")
    if replacing is not None and model.model_dump(exclude={"version"}) == replacing.model_dump(exclude={"version"}):
        raise AccessError("nothing changed: the proposal is the version in force")
    kind = "filters" if isinstance(model, FiltersConfig) else "classification"
    version = ThresholdStore(store).publish(model, author=actor, note=note.strip())
    record(
        store,
        actor,
        f"thresholds.{kind}",
        f"thresholds:{kind}:v{version}",
        replacing.model_dump(mode="json", by_alias=True) if replacing is not None else None,
        model.model_dump(mode="json", by_alias=True),
        note.strip(),
    )
    return version
