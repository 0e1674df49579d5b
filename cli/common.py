"""What the command groups share: the store options and the hot store they name, the flag vocabulary's
deprecated aliases, the Pub/Sub emulator, time stamps and the system actor.

Flag vocabulary: `nightwatch` options are kebab-case (`--db-url`, `--config`, `--run-id`, `--temp-location`).
The spellings the pipeline's and Beam's own options use for the same things (`--db_url`, `--config_dir`,
`--run_id`, `--temp_location`, ...) still work as deprecated aliases: hidden from --help, with a one-line note.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from access.accounts import SYSTEM
from config.base import ConfigError
from core.decoders.common import parse_iso_utc
from core.event import utcnow
from devtools.pubsub import EMULATOR_ENV, Emulator
from store.errors import store_unreachable
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


def open_in_force(args: argparse.Namespace) -> tuple[Any, HotStore]:
    """The configuration in force (the console's stored documents over the files) and the hot store."""
    from config.settings import load_config
    from store.configs import in_force

    store = open_store(args)
    return in_force(load_config(getattr(args, "config", None)), store), store


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


# --- known failures: one line naming the cause and the fix, and the exit code ---------------------------------

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_CANNOT_CHECK = 5  # `health` only: it could not look (its 1-4 are SEV levels)


def _first_line(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig is not None else exc
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _path_of(exc: OSError) -> str:
    return f" {exc.filename}" if exc.filename else ""


def known_failure(exc: BaseException) -> tuple[str, int] | None:
    """A failure every command can meet, as (one line naming the cause and the fix, exit code); None if it is
    not one of them (a bug: the traceback is worth having). The one place that maps exceptions to lines."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full writing{_path_of(exc)}: free space or point --output elsewhere", EXIT_FAILURE
    if isinstance(exc, sa.exc.OperationalError) and "disk is full" in str(exc):
        return f"disk full: the hot store cannot grow ({_first_line(exc)}); free space and rerun", EXIT_FAILURE
    if isinstance(exc, sa.exc.DBAPIError | sa.exc.InterfaceError) and store_unreachable(exc):
        return (
            f"hot store unreachable: {_first_line(exc)}; start it or fix --db-url / $NIGHTWATCH_DB_URL",
            EXIT_FAILURE,
        )
    if isinstance(exc, sa.exc.ArgumentError | sa.exc.NoSuchModuleError):
        return f"bad hot store URL: {_first_line(exc)}; fix --db-url / $NIGHTWATCH_DB_URL", EXIT_USAGE
    if isinstance(exc, ConfigError):
        return f"bad configuration: {_first_line(exc)}; fix the file or give --config a valid folder", EXIT_USAGE
    reasons = (
        (NotADirectoryError, "a part of the path is a file, not a folder"),
        (FileExistsError, "a file is in the way of a folder"),
        (IsADirectoryError, "it is a folder"),
        (PermissionError, "permission denied"),
    )
    why = next((text for kind, text in reasons if isinstance(exc, kind)), None)
    if (
        why is not None and isinstance(exc, OSError) and exc.errno is not None
    ):  # the system's refusal (not a role's: access.roles)
        return f"cannot write{_path_of(exc)}: {why}; choose a writable --output (or fix its permissions)", EXIT_FAILURE
    if isinstance(exc, FileNotFoundError):
        return f"not found:{_path_of(exc) or ' ' + _first_line(exc)}; check the path given", EXIT_USAGE
    if isinstance(exc, ValueError | RuntimeError | PermissionError):  # the commands' own refusals, as before
        return _first_line(exc), EXIT_USAGE
    return None
