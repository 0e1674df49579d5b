"""The guide's access procedures: requests, manager approval, security review for Admin and above, the
quarterly access review, and the audit log as Super Admins see it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from access import roles
from access.accounts import acting, get_user, grant_role, list_users, super_admins, valid_role
from access.audit import AuditEntry, ChainCheck, action_kinds, audit, audit_alone, audit_entries, verify_chain
from access.roles import AccessError, PermissionDenied
from core.event import as_utc, utcnow
from store.hot import HotStore
from store.schema import access_requests, role_grants, users

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
    valid_role(role)
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
            grant_role(conn, row.user_name, row.role, request_id, actor, f"access request #{request_id}: {note}")
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
        # Four eyes where there are four: with a single Super Admin (just after the bootstrap) nobody else could
        # ever review, and no second Admin could ever be made, so the sole one may, and the log says so.
        if [name for name in super_admins(store) if name != actor]:
            raise AccessError("the security review must be done by someone other than the approving manager")
        note = f"{note.strip()} [sole Super Admin: no second reviewer exists]"
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
    audit_alone(store, actor, "access.review", "users", None, None, f"{len(rows)} users")
    return rows


def audit_chain_for(store: HotStore, viewer: str) -> ChainCheck:
    """Whether the audit log's hash chain is intact, for a Super Admin."""
    acting(store, viewer, "view_audit")
    return verify_chain(store)


def audit_kinds_for(store: HotStore, viewer: str) -> dict[str, int]:
    """The kinds of action in the audit log and their counts, for a Super Admin."""
    acting(store, viewer, "view_audit")
    return action_kinds(store)


def audit_for(store: HotStore, viewer: str, **filters: Any) -> list[AuditEntry]:
    """The audit log for a Super Admin."""
    acting(store, viewer, "view_audit")
    return audit_entries(store, **filters)
