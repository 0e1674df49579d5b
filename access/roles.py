"""The guide's four roles and what each may do, shared by the console, the API and the command line.

Each role holds the permissions of the roles below it (Observer < Operator < Admin < Super Admin).
Checks happen where an action is carried out, never only where a button is drawn.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = ("observer", "operator", "admin", "super_admin")

ROLE_TITLES = {
    "observer": "Observer",
    "operator": "Operator",
    "admin": "Admin",
    "super_admin": "Super Admin",
}

# What each role adds to the one below it (the guide's Access Control table).
_GRANTS: dict[str, frozenset[str]] = {
    "observer": frozenset({"view_dashboard", "view_alerts", "view_review_queue", "view_events"}),
    "operator": frozenset(
        {
            "acknowledge_alerts",
            "adjust_thresholds",
            "decide_reviews",
            "send_alerts",
            "run_operations",
            "respond_incidents",  # acknowledge, note, tick, resolve, review incidents; publish status updates
        }
    ),
    "admin": frozenset({"configure_system", "approve_access"}),
    "super_admin": frozenset({"manage_users", "view_audit", "security_review"}),
}


class PermissionDenied(PermissionError):
    """An action the caller's role does not allow; the message says which role it needs."""


def permissions(role: str) -> frozenset[str]:
    """Every permission of a role, inherited ones included."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    granted: set[str] = set()
    for name in ROLES[: ROLES.index(role) + 1]:
        granted |= _GRANTS[name]
    return frozenset(granted)


def lowest_role_with(permission: str) -> str:
    for name in ROLES:
        if permission in _GRANTS[name]:
            return name
    raise ValueError(f"unknown permission {permission!r}")


def allowed(role: str | None, permission: str) -> bool:
    return role in ROLES and permission in permissions(role)


def require(role: str | None, permission: str) -> None:
    """Raise PermissionDenied unless `role` may do `permission`."""
    if not allowed(role, permission):
        needed = ROLE_TITLES[lowest_role_with(permission)]
        have = ROLE_TITLES.get(role or "", "no role")
        raise PermissionDenied(f"{permission.replace('_', ' ')} needs the {needed} role (you are {have})")


def at_least(role: str, other: str) -> bool:
    """True if `role` ranks at or above `other`."""
    return ROLES.index(role) >= ROLES.index(other)


class AccessError(ValueError):
    """An action that cannot be done as asked (unknown user, wrong state, missing note); the message says why."""
