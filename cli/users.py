"""`nightwatch users bootstrap|add|list|review`: console accounts, the first Super Admin, the access review;
`nightwatch audit verify`: is the audit log's hash chain intact (exit 1 naming the first bad row if not).

Whoever runs it holds the hot store's credentials, so it acts as the system (audited as such).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from access import accounts, audit, procedures
from cli.common import open_store, store_options, system_actor
from config.environment import environment
from store.hot import HotStore

ROLES = ["observer", "operator", "admin", "super_admin", "none"]


def _users(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        {"bootstrap": _bootstrap, "add": _add, "list": _list, "review": _review}[args.action](args, store)
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
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.email and args.sso_only:
        password = None
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the passwords differ")
    role = None if args.role == "none" else args.role
    user = accounts.create_user_as_system(store, getpass.getuser(), args.name, role, password, args.email)
    print(f"created {user.name} ({user.title})")


def _list(_args: argparse.Namespace, store: HotStore) -> None:
    for user in accounts.list_users(store):
        last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
        state = "active" if user.active else "revoked"
        print(f"{user.name:<24} {user.title:<12} {state:<8} last login {last}  {user.email or ''}")


def _review(args: argparse.Namespace, store: HotStore) -> None:
    rows = procedures.access_review(store)
    audit.record(store, system_actor(), "access.review", "users", None, None, "cli")
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
    add = actions.add_parser("add", help="add a user: nightwatch users add NAME --role ROLE")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--email", help="the user's single-sign-on (OIDC) e-mail")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    add.add_argument("--sso-only", action="store_true", help="no local password: single sign-on only (needs --email)")
    actions.add_parser("list", help="every user, role, state and last login")
    review = actions.add_parser("review", help="the quarterly access review: users, roles, grants, last login")
    review.add_argument("--csv", action="store_true", help="print CSV")
    review.add_argument("--out", help="write CSV to this file")
    for action in actions.choices.values():
        store_options(action, with_config=False)
    users.set_defaults(handler=_users)
    log = commands.add_parser("audit", help="the audit log: verify its hash chain")
    log_actions = log.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = log_actions.add_parser(
        "verify", help="recompute the hash chain; exit 1 naming the first changed, deleted or forged row"
    )
    store_options(verify, with_config=False)
    log.set_defaults(handler=_audit)
