"""Structured logs: one line per event of note, readable on a terminal or one JSON object per line.

`log_event(logger, "dead_letter", "message", source=..., stage=..., reason=...)` logs the message with its
fields through the standard `logging` (so Beam's and the libraries' lines go the same way); the formatter
`configure` installs (once, in the `nightwatch` entry point) writes either

    2026-11-27 23:41:02 nightwatch.stream: draining (idle for 10 s) [event=drain run_id=stream-...]

or, with `--log-json` or `NIGHTWATCH_LOG_FORMAT=json`,

    {"logger": "nightwatch.stream", "level": "info", "ts": "2026-11-27T23:41:02.123456Z",
     "message": "draining (idle for 10 s)", "event": "drain", "run_id": "stream-..."}

(JSON is rendered by structlog's ProcessorFormatter over the standard library's records.)

Events of note (`event` values): run_start, run_end, drain, dead_letter, agent_timeout, breaker_change,
delivery_failed. Fields where they apply: run_id, source, event_id, stage, reason, agent, channel. Any other
log line (a library's, a plain `log.info`) is written in the same format with `event` = "log".
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

FIELDS = "nightwatch_fields"
EVENTS = ("run_start", "run_end", "drain", "dead_letter", "agent_timeout", "breaker_change", "delivery_failed")


def log_event(logger: logging.Logger, event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event of note with its fields (None values are left out)."""
    if logger.isEnabledFor(level):
        clean = {key: value for key, value in fields.items() if value is not None}
        logger.log(level, message, extra={FIELDS: {"event": event, **clean}})


def _fields(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the stdlib record's message as `message`, its Nightwatch fields beside it."""
    record = event_dict.get("_record")
    fields = getattr(record, FIELDS, None) or {"event": "log"}
    event_dict["message"] = event_dict.pop("event", "")
    event_dict.update(fields)
    return event_dict


def _shared() -> list[Any]:
    return [
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _fields,
    ]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """One JSON object per record: ts, level, logger, message, event and the event's fields."""

    def __init__(self) -> None:
        super().__init__(
            foreign_pre_chain=_shared(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str),
            ],
        )


class TextFormatter(logging.Formatter):
    """Readable: `time logger: message [event=... key=value ...]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, FIELDS, None)
        if fields:
            text += " [" + " ".join(f"{key}={value}" for key, value in fields.items()) + "]"
        return text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a redirected or replaced stderr included)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(json_lines: bool = False, stream: Any = None) -> None:
    """Root logging to stderr, WARNING and up, Nightwatch's own loggers INFO; JSON lines or readable text.

    Importing Beam installs a root handler, hence the replacement of every root handler.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("nightwatch").setLevel(logging.INFO)
