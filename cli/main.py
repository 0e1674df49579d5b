"""The `nightwatch` command: the entry point.

It assembles one parser from each command group's `add_commands`, sets up logging and runs the chosen
command. Exit codes: what the command returns (0 all well, 1 it found a problem, or its own, e.g. `health`'s
severity), 1 for a known failure (the store unreachable, an output not writable, a full disk), 2 for a usage or
configuration error; a known failure is one line naming the cause and the fix (`cli.common.known_failure`), and
`health` exits 5 for any of them (it could not check: not a SEV level).
"""

from __future__ import annotations

import sys

from cli import (
    agents,
    api,
    configure,
    data,
    deploy,
    incidents,
    maintenance,
    notify,
    ops,
    release,
    run,
    schedule,
    stream,
    systemtest,
    thresholds,
    users,
    workers,
)
from cli.common import Parser, known_failure
from config.environment import environment
from core import logs

# In the order `nightwatch --help` lists their commands.
GROUPS = (
    run,
    stream,
    data,
    thresholds,
    release,
    configure,
    users,
    agents,
    notify,
    maintenance,
    incidents,
    api,
    ops,
    deploy,
    systemtest,
    workers,
    schedule,
)
JOBS = ("run", "stream", "replay")  # the commands that pass options they do not know on to Beam


def build_parser() -> Parser:
    parser = Parser(
        prog="nightwatch",
        description="Nightwatch: ingest, classify, route and archive astronomical event packets.",
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        help="log one JSON object per line (also NIGHTWATCH_LOG_FORMAT=json); default: readable lines",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # --log-json may come anywhere before a `--` (before or after the command's name).
    end = argv.index("--") if "--" in argv else len(argv)
    log_json = "--log-json" in argv[:end]
    argv = [arg for i, arg in enumerate(argv) if not (i < end and arg == "--log-json")]
    args, beam_args = parser.parse_known_args(argv)
    if args.command not in JOBS and beam_args:
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    # Once, here: readable lines, or one JSON object per line with --log-json or NIGHTWATCH_LOG_FORMAT=json.
    logs.configure(json_lines=log_json or environment().log_format == "json")
    try:
        return args.handler(args, beam_args)
    except Exception as exc:
        known = known_failure(exc)
        if known is None:
            raise
        line, code = known
        print(f"nightwatch: error: {line}", file=sys.stderr)
        return getattr(args, "failure_code", None) or code


if __name__ == "__main__":
    sys.exit(main())
