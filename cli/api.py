"""API commands: `nightwatch api` (serve it, or write its OpenAPI file) and `nightwatch api-keys` (create, list,
revoke). Whoever runs `api-keys` holds the hot store's credentials, so it acts as the system (audited as such).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from access import apikeys, identity
from cli.common import (
    identity_options,
    metrics_option,
    open_store,
    outputs,
    serve_metrics,
    sign_in,
    store_options,
)


def _serve(args: argparse.Namespace, _beam_args: list[str]) -> int:
    # FastAPI and uvicorn are loaded only by the command that serves the API: the others start fast.
    import uvicorn

    from api.app import create_app, openapi_text
    from api.auth import ApiSettings

    if args.write_openapi:
        Path(args.write_openapi).write_text(openapi_text())
        print(f"OpenAPI description written to {args.write_openapi}")
        return 0

    where = outputs(args)
    settings = ApiSettings(
        store_url=where.db_url,
        warm_root=where.warm_root,
        archive_root=where.archive_root,
        rate_per_min=args.rate_limit,
        burst=args.burst,
    )
    store = open_store(args)
    active = [key for key in apikeys.list_keys(store) if key.active]
    store.close()
    base = f"http://{args.host}:{args.port}"
    print(f"Nightwatch API on {base}/v1 (OpenAPI {base}/openapi.json, docs {base}/docs) over {settings.store_url}")
    print(f"rate limit per key: {args.rate_limit:g} requests a minute, bursts of {args.burst}")
    if not active:
        print(
            "no API key yet: create one (the token is shown once) with\n"
            f"  nightwatch api-keys create --user admin --role observer --as admin --output {args.output}\n"
            f'then: curl -H "Authorization: Bearer <key>" {base}/v1/alerts'
        )
    serve_metrics(args)  # also on the API's own /metrics
    # A short graceful shutdown: live feeds never end by themselves, so waiting for them would never finish.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0


def _keys(args: argparse.Namespace, _beam_args: list[str]) -> int:
    store = open_store(args)
    try:
        if args.action in ("create", "revoke"):
            owner = (
                args.user if args.action == "create" else getattr(apikeys.get_key(store, args.key_id), "user_name", "")
            )
            actor = identity.key_change_actor(sign_in(args, store), store, owner, getattr(args, "role", None))
        if args.action == "create":
            token, key = apikeys.create_key(store, actor, args.user, args.role, args.note, args.rate_limit, args.burst)
            print(f"created API key {key.key_id} for {key.user_name} ({key.role}); the key, shown only now:")
            print(f"  {token}")
        elif args.action == "revoke":
            key = apikeys.revoke_key(store, actor, args.key_id, args.reason or "")
            print(f"revoked API key {key.key_id} of {key.user_name}: refused from the next request on")
        else:
            for key in apikeys.list_keys(store, args.user):
                state = "revoked" if key.revoked_at else ("active" if key.active else "owner revoked")
                used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                print(
                    f"{key.key_id:<18} {key.user_name:<20} {key.role:<12} {state:<14} "
                    f"created {key.created_at:%Y-%m-%d %H:%M}  last used {used}  {key.note or ''}".rstrip()
                )
    except apikeys.ApiKeyError as exc:
        raise ValueError(str(exc)) from exc  # `nightwatch` prints it and exits 2
    finally:
        store.close()
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "api",
        help="serve the external API (REST + live alert feed) over the hot store and warm tier",
        description="Events, alerts, the review queue, metrics and lineage under /v1, with API keys and rate "
        "limits. --write-openapi writes the OpenAPI description instead (api/openapi.json is checked in CI).",
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    metrics_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 in a pod)")
    serve.add_argument("--rate-limit", type=float, default=600.0, help="requests a minute per key (default 600)")
    serve.add_argument("--burst", type=int, default=120, help="requests a key may make at once (default 120)")
    serve.add_argument("--write-openapi", metavar="PATH", help="write the OpenAPI description to PATH and exit")
    store_options(serve, with_config=False)
    serve.set_defaults(handler=_serve)

    keys = commands.add_parser(
        "api-keys",
        help="API keys for the external API: create (shown once), list, revoke",
        description="A key belongs to a user and holds a role no higher than the user's: observer keys read, "
        "operator keys may also acknowledge alerts. Creating and revoking are audited.",
    )
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new key: nightwatch api-keys create --user NAME --role ROLE")
    create.add_argument("--user", required=True, help="the owner, an existing user (see nightwatch users list)")
    create.add_argument("--role", required=True, choices=["observer", "operator", "admin", "super_admin"])
    create.add_argument("--note", help="what the key is for (e.g. the partner broker's name)")
    create.add_argument("--rate-limit", type=float, help="this key's requests a minute (default: the server's)")
    create.add_argument("--burst", type=int, help="this key's burst (default: the server's)")
    revoke = actions.add_parser("revoke", help="revoke a key at once: nightwatch api-keys revoke KEY_ID")
    revoke.add_argument("key_id")
    revoke.add_argument("--reason", help="why (recorded in the audit log)")
    listing = actions.add_parser("list", help="every key: owner, role, state, created, last used")
    listing.add_argument("--user", help="only this user's keys")
    for action in (create, revoke, listing):
        store_options(action, with_config=False)
    for action in (create, revoke):
        identity_options(action, "your own keys: any role; another user's: Super Admin")
    keys.set_defaults(handler=_keys)
