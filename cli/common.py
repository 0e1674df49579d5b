"""What the command groups share: the store options and the hot store they name, the flag vocabulary's
deprecated aliases, the Pub/Sub emulator, time stamps and the system actor.

Flag vocabulary: `nightwatch` options are kebab-case (`--db-url`, `--config`, `--run-id`, `--temp-location`).
The spellings the pipeline's and Beam's own options use for the same things (`--db_url`, `--config_dir`,
`--run_id`, `--temp_location`, ...) still work as deprecated aliases: hidden from --help, with a one-line note.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from access.accounts import SYSTEM
from core.decoders.common import parse_iso_utc
from core.event import utcnow
from devtools.pubsub import EMULATOR_ENV, Emulator
from store.hot import HotStore
from store.layout import Outputs


class Parser(argparse.ArgumentParser):
    """argparse's parser, which also takes deprecated spellings of options: each is read as the preferred
    spelling, with a one-line note on stderr. They stay out of --help. (Subcommands get this class too.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deprecated: dict[str, str] = {}

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        return super().parse_known_args(self._preferred(sys.argv[1:] if args is None else list(args)), namespace)

    def _preferred(self, args: list[str]) -> list[str]:
        preferred = []
        for i, arg in enumerate(args):
            if arg == "--":
                return preferred + args[i:]
            name, equals, value = arg.partition("=")
            if name in self.deprecated:
                print(f"nightwatch: {name} is deprecated; use {self.deprecated[name]}", file=sys.stderr)
                arg = self.deprecated[name] + equals + value
            preferred.append(arg)
        return preferred


def deprecated_alias(command: Parser, old: str, preferred: str) -> None:
    """Accept `old` as a deprecated spelling of the option `preferred`."""
    command.deprecated[old] = preferred


def config_option(command: Parser) -> None:
    command.add_argument("--config", help="folder of YAML configuration (default: the shipped config/)")
    deprecated_alias(command, "--config_dir", "--config")


def store_options(command: Parser, with_config: bool = True) -> None:
    """Where the hot store and tiers are (and, optionally, the configuration): shared by most commands."""
    command.add_argument("--output", default="out", help="output folder (default: out)")
    command.add_argument("--db-url", help="hot store URL (default: $NIGHTWATCH_DB_URL or OUTPUT/nightwatch.db)")
    deprecated_alias(command, "--db_url", "--db-url")
    if with_config:
        config_option(command)


def metrics_option(command: Parser) -> None:
    """`--metrics-port`: the long-running commands expose their Prometheus metrics there (core/telemetry.py)."""
    command.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics ($NIGHTWATCH_METRICS_ADDR binds another "
        "address); 0 = off (default)",
    )


def serve_metrics(args: argparse.Namespace) -> None:
    from config.environment import environment
    from core import telemetry

    telemetry.serve(getattr(args, "metrics_port", 0), environment().metrics_addr)


def outputs(args: argparse.Namespace) -> Outputs:
    """Where a command's hot store and tiers are: --output and --db-url (else $NIGHTWATCH_DB_URL)."""
    return Outputs.under(args.output, args.db_url)


def store_url(args: argparse.Namespace) -> str:
    """The hot store a command works on: --db-url, else $NIGHTWATCH_DB_URL, else OUTPUT/nightwatch.db."""
    return outputs(args).db_url


def open_store(args: argparse.Namespace) -> HotStore:
    """The command's hot store, its schema created or migrated."""
    store = HotStore(store_url(args))
    store.ensure_schema()
    return store


def when(text: str | None, name: str) -> datetime:
    """A time given as option `name` (ISO 8601, UTC if no zone), or now."""
    return parse_iso_utc(text, name) if text else utcnow()


def utc_stamp() -> str:
    return f"{utcnow():%Y%m%dT%H%M%S}"


def system_actor() -> str:
    """Who acts when the command line does: the system, as the login running it (audited as such)."""
    return f"{SYSTEM}:{getpass.getuser()}"


def with_emulator(args: argparse.Namespace, project: str) -> AbstractContextManager[Any]:
    """An emulator to use: the one PUBSUB_EMULATOR_HOST names, a new one (stopped afterwards), or none."""
    wanted = args.emulator == "yes" or (args.emulator == "auto" and not os.environ.get(EMULATOR_ENV))
    if not wanted:
        return contextlib.nullcontext()
    print("nightwatch: starting the Pub/Sub emulator ...", file=sys.stderr, flush=True)
    return Emulator(project)
