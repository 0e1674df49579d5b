"""`nightwatch users ...`: console accounts, the first Super Admin, service accounts, role changes, the access
procedure (request, approve, security review) and the access review; `nightwatch audit verify`: is the audit
log's hash chain intact (exit 1 naming the first bad row if not).

Every change acts as a signed-in user (`--as USER` or an API key) and is checked and audited by the same
functions as the console's Access page (access/accounts.py, access/procedures.py). Only `bootstrap`, which
creates the first Super Admin of an empty store, needs no identity: there is nobody yet to act as.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from access import accounts, audit, identity, procedures
from cli.common import acting_as, acting_or_system, identity_options, open_store, sign_in, store_options
from config.environment import environment
from store.hot import HotStore

ROLES = ["observer", "operator", "admin", "super_admin", "none"]


def _users(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        ACTIONS[args.action](args, store)
    finally:
        store.close()
    return 0


def _bootstrap(args: argparse.Namespace, store: HotStore) -> None:
    given = environment().admin_password
    password = accounts.bootstrap(store, args.name, given)
    if password is None:
        print(f"a Super Admin exists ({', '.join(accounts.super_admins(store))}): nothing to do")
    elif given:
        print(f"created Super Admin {args.name!r} with the password in NIGHTWATCH_ADMIN_PASSWORD")
    else:
        print(f"created Super Admin {args.name!r}; password (shown once, change it on the Access page):")
        print(f"  {password}")


def _add(args: argparse.Namespace, store: HotStore) -> None:
    role = None if args.role == "none" else args.role
    accounts.procedure_only(role)  # refused before any prompt
    actor = acting_as(args, store, "manage_users")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.email and args.sso_only:
        password = None
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the passwords differ")
    reason = args.reason or "created with nightwatch users add"
    user = accounts.create_user(store, actor, args.name, role, password, args.email, reason)
    print(f"created {user.name} ({user.title})")


def _list(_args: argparse.Namespace, store: HotStore) -> None:
    for user in accounts.list_users(store):
        last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
        state = "active" if user.active else "revoked"
        print(f"{user.name:<24} {user.title:<12} {state:<8} last login {last}  {user.email or ''}")


def _review(args: argparse.Namespace, store: HotStore) -> None:
    actor = acting_or_system(args, store, "view_audit")  # the scheduler exports it quarterly, unattended
    rows = procedures.access_review(store)
    audit.record(store, actor, "access.review", "users", None, None, f"{len(rows)} users (cli)")
    text = procedures.review_csv(rows)
    if args.out:
        Path(args.out).write_text(text)
        print(f"access review of {len(rows)} users written to {args.out}")
    elif args.csv:
        print(text, end="")
    else:
        for row in rows:
            print(f"{row['user']:<24} {row['role']:<12} {row['active']:<8} last login {row['last_login']}")
            print(f"    grants: {row['grants'] or '-'}")


def _set_role(args: argparse.Namespace, store: HotStore) -> None:
    role = None if args.role == "none" else args.role
    user = accounts.set_role(store, acting_as(args, store, "manage_users"), args.name, role, args.reason)
    print(f"{user.name} is now {user.title}; their sessions and API keys of the old role are revoked")


def _revoke(args: argparse.Namespace, store: HotStore) -> None:
    actor = acting_as(args, store, "manage_users")
    change = accounts.revoke if args.action == "revoke" else accounts.reinstate
    user = change(store, actor, args.name, args.reason)
    print(f"{user.name}: {'active' if user.active else 'revoked'} ({user.title})")


def _service(args: argparse.Namespace, store: HotStore) -> None:
    actor = acting_as(args, store, "manage_users")
    token, key = identity.create_service_account(store, actor, args.name, args.role, args.note)
    print(f"created service account {args.name} ({key.role}) with API key {key.key_id}; the key, shown only now:")
    print(f"  {token}")
    print("scripts act with it: export NIGHTWATCH_API_KEY=<the key>")


def _request(args: argparse.Namespace, store: HotStore) -> None:
    actor = sign_in(args, store)  # anyone active may ask, even with no role yet
    request = procedures.request_access(store, actor.name, args.role, args.justification)
    print(f"access request #{request.request_id}: {request.user_name} asks for {args.role} ({request.status})")


def _requests(args: argparse.Namespace, store: HotStore) -> None:
    for request in procedures.list_requests(store, args.status):
        print(
            f"#{request.request_id:<4} {request.user_name:<20} {request.role:<12} {request.status:<16} "
            f"manager {request.manager or '-'}  security {request.security_reviewer or '-'}  {request.justification}"
        )


def _decide(args: argparse.Namespace, store: HotStore) -> None:
    if args.action == "approve":
        request = procedures.approve_request(store, acting_as(args, store, "approve_access"), args.id, args.note)
    elif args.action == "reject":
        request = procedures.reject_request(store, acting_as(args, store, "approve_access"), args.id, args.note)
    else:
        actor = acting_as(args, store, "security_review")
        request = procedures.security_review(store, actor, args.id, not args.reject, args.note)
    print(f"access request #{request.request_id} ({request.user_name}, {request.role}): {request.status}")


ACTIONS = {
    "bootstrap": _bootstrap,
    "add": _add,
    "list": _list,
    "review": _review,
    "set-role": _set_role,
    "revoke": _revoke,
    "reinstate": _revoke,
    "service-account": _service,
    "request": _request,
    "requests": _requests,
    "approve": _decide,
    "reject": _decide,
    "security-review": _decide,
}


def _audit(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        check = audit.verify_chain(store)
    finally:
        store.close()
    print(check.line(), file=sys.stdout if check.intact else sys.stderr)
    return 0 if check.intact else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser(
        "users",
        help="console accounts: the first Super Admin, new users, the quarterly access review",
        description="Run by whoever holds the hot store's credentials; every change is in the audit log.",
    )
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    boot = actions.add_parser(
        "bootstrap",
        help="create the first Super Admin if there is none (password from NIGHTWATCH_ADMIN_PASSWORD, "
        "else generated and printed once)",
    )
    boot.add_argument("--name", default="admin", help="the Super Admin's user name (default admin)")
    add = actions.add_parser(
        "add", help="add a user (Super Admin): nightwatch users add NAME --role observer|operator|none --as YOU"
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES, help="Admin and above only through the access procedure")
    add.add_argument("--reason", help="why (e.g. the approved ticket; audited)")
    add.add_argument("--email", help="the user's single-sign-on (OIDC) e-mail")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    add.add_argument("--sso-only", action="store_true", help="no local password: single sign-on only (needs --email)")
    actions.add_parser("list", help="every user, role, state and last login")
    review = actions.add_parser(
        "review", help="the quarterly access review (Super Admin): users, roles, grants, last login"
    )
    review.add_argument("--csv", action="store_true", help="print CSV")
    review.add_argument("--out", help="write CSV to this file")
    set_role = actions.add_parser(
        "set-role", help="change a user's role (Super Admin); raising to Admin+ only through the procedure"
    )
    set_role.add_argument("name")
    set_role.add_argument("role", choices=ROLES)
    for name, text in (("revoke", "revoke a user at once (termination)"), ("reinstate", "reinstate, with no role")):
        actions.add_parser(name, help=f"{text} (Super Admin)").add_argument("name")
    for name in ("set-role", "revoke", "reinstate"):
        actions.choices[name].add_argument("--reason", required=True, help="why (audited)")
    service = actions.add_parser(
        "service-account", help="a service account for automation (Super Admin): no login, acts by its API key"
    )
    service.add_argument("name")
    service.add_argument("--role", required=True, choices=identity.SERVICE_ROLES)
    service.add_argument("--note", required=True, help="what it is for (audited)")
    request = actions.add_parser("request", help="ask for a role (step 1 of the access procedure), as yourself")
    request.add_argument("--role", required=True, choices=ROLES[:-1])
    request.add_argument("--justification", required=True, help="what you need it for")
    listing = actions.add_parser("requests", help="access requests and their state")
    listing.add_argument("--status", choices=["pending", "security_review", "granted", "rejected"])
    for name, text in (
        ("approve", "manager approval (Admin): Admin+ requests go on to the security review"),
        ("reject", "the manager turns a request down (Admin)"),
        ("security-review", "the security review of an Admin+ request (Super Admin, not the approving manager)"),
    ):
        decide = actions.add_parser(name, help=text)
        decide.add_argument("id", type=int, help="the request number (nightwatch users requests)")
        decide.add_argument("--note", required=True, help="the decision's note (audited)")
    actions.choices["security-review"].add_argument("--reject", action="store_true", help="refuse (default: grant)")
    for name, action in actions.choices.items():
        store_options(action, with_config=False)
        if name not in ("bootstrap", "list", "requests"):
            identity_options(action, "see each action's role")
    users.set_defaults(handler=_users)
    log = commands.add_parser("audit", help="the audit log: verify its hash chain")
    log_actions = log.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = log_actions.add_parser(
        "verify", help="recompute the hash chain; exit 1 naming the first changed, deleted or forged row"
    )
    store_options(verify, with_config=False)
    log.set_defaults(handler=_audit)
