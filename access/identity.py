"""Who acts when a command changes something: a user proved by password, or an API key (a person's or a service
account's), checked on the same code path as the console (`accounts.acting`) before the action is done.

The console knows its user from the login; a command line knows nothing until it is told. `sign_in` turns
what the caller gives (`--as USER` and a password, or an API key) into an `Actor`; `authorize` then re-reads that
user (and key) from the store and checks the guide's role for the action, exactly as every console action does,
so a revoked user or key, or a role lowered a second ago, is refused. The action itself is audited under the
actor's name by the operation that performs it (ops/, access/), as for the console.

Service accounts are users with no password and no e-mail (they cannot log in to the console); they act only
through their API keys, for scripts and scheduled jobs. Their role is Observer or Operator: Admin and above is
a person's, granted through the access procedure (access/procedures.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from access import accounts, apikeys, roles
from access.roles import AccessError, PermissionDenied
from store.hot import HotStore

# Where the password or key may come from, named in the refusals so the fix is in the message.
HOW = (
    "give an identity: --as USER (password prompted, or $NIGHTWATCH_PASSWORD for scripts) or an API key "
    "($NIGHTWATCH_API_KEY, e.g. a service account's: nightwatch users service-account)"
)
SERVICE_ROLES = ("observer", "operator")


class NoIdentity(PermissionDenied):
    """A change asked for with no identity, or one that does not check out."""


@dataclass(frozen=True)
class Actor:
    """Who is acting: the user's name (what the audit log records) and how they proved it."""

    name: str
    via: str  # "password" | "api key"
    key_id: str | None = None

    def describe(self) -> str:
        return f"{self.name} (api key {self.key_id})" if self.key_id else self.name


def sign_in(store: HotStore, user: str | None = None, password: str | None = None, api_key: str | None = None) -> Actor:
    """The actor the credentials prove; NoIdentity if none are given or they do not check out.

    A password goes through `accounts.authenticate`, so the console's login throttling and audit apply."""
    if user:
        if password is None:
            raise NoIdentity(f"--as {user} needs the password: type it when asked, or set $NIGHTWATCH_PASSWORD")
        found = accounts.authenticate(store, user, password, client="cli")
        if found is None:
            raise NoIdentity(f"--as {user}: wrong user name or password, or the user is revoked")
        return Actor(found.name, "password")
    if api_key:
        key = apikeys.authenticate(store, api_key.strip())
        if key is None:
            raise NoIdentity("the API key is not known")
        if not key.active:
            raise NoIdentity(f"API key {key.key_id} is revoked (or its owner is)")
        return Actor(key.user_name, "api key", key.key_id)
    raise NoIdentity(HOW)


def authorize(store: HotStore, actor: Actor, permission: str) -> accounts.User:
    """The actor's user if they may do `permission` now (the console's check); PermissionDenied otherwise.

    For an API key the key's own role counts too: a key never does more than it was made for."""
    user = accounts.acting(store, actor.name, permission)
    if actor.key_id:
        key = apikeys.get_key(store, actor.key_id)
        if key is None or not key.active:
            raise PermissionDenied(f"API key {actor.key_id} is revoked")
        roles.require(key.effective_role, permission)
    return user


def create_service_account(store: HotStore, actor: str, name: str, role: str, note: str) -> tuple[str, apikeys.ApiKey]:
    """A service account (no password, no e-mail: it cannot log in) and its first API key; returns (token, key).

    Super Admin only, like any new user; audited as a user and a key created by `actor`."""
    if role not in SERVICE_ROLES:
        raise AccessError(
            f"a service account is Observer or Operator, not {roles.ROLE_TITLES.get(role, role)}: "
            "Admin and above is granted to a person through the access procedure"
        )
    if not note.strip():
        raise AccessError("say what the service account is for (it goes into the audit log)")
    accounts.create_service_user(store, actor, name, role, note.strip())
    return apikeys.create_key(store, actor, name, role, f"service account: {note.strip()}")


def key_change_actor(actor: Actor, store: HotStore, owner: str, role: str | None = None) -> str:
    """Who may create or revoke an API key: its owner for their own keys (a key never makes a key above its own
    role), a Super Admin for anyone's. Returns the actor's name, which `apikeys` audits."""
    if actor.name != owner:
        authorize(store, actor, "manage_users")
        return actor.name
    authorize(store, actor, "view_dashboard")  # active, with a role
    if actor.key_id and role is not None:
        key = apikeys.get_key(store, actor.key_id)
        if key is None or key.effective_role is None or not roles.at_least(key.effective_role, role):
            raise PermissionDenied(f"API key {actor.key_id} cannot make a key above its own role")
    return actor.name
