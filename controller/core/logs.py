"""Structured logging: JSON lines on stdout for journald, or a console renderer for people.

Events are named (`log.info("poll_failed", device=..., error=...)`); values never get formatted into
prose. A redaction processor drops anything registered as a secret, wherever it appears.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]

_secrets: set[str] = set()
REDACTED = "***"


def register_secret(value: str) -> None:
    """Never let `value` reach a log line (used for every resolved secret of the site file)."""
    if len(value) >= 4:
        _secrets.add(value)


def forget_secrets() -> None:
    """Drop every registered secret (tests: one test's secrets must not redact another's output)."""
    _secrets.clear()


def _redact_value(value: Any) -> Any:
    if isinstance(value, str) and _secrets:
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
    return value


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not _secrets:
        return event_dict
    for key, value in list(event_dict.items()):
        if isinstance(value, int | float | bool | type(None)):
            continue
        text = value if isinstance(value, str) else str(value)
        if any(secret in text for secret in _secrets):
            event_dict[key] = _redact_value(text)
    return event_dict


def configure_logging(fmt: LogFormat = "json", level: str = "info", stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging: their records go through the same processors (redaction
    # included) and renderer as ours, one line each, a traceback reduced to its last line (pymodbus wrote
    # hundreds of multi-line tracebacks into the JSON log). Keep their warnings, drop their chatter.
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=renderer,
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.processors.add_log_level,
                           structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"), _library_record,
                           _redact]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("pymodbus", "httpx", "httpcore", "aiomqtt"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if noisy == "pymodbus" else logging.WARNING)


def _library_record(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A library's record as one of our events: its message as `message`, an exception as one line."""
    record = event_dict.get("_record")
    event_dict["message"] = " ".join(str(event_dict.pop("event", "")).split())[:1000]
    event_dict["event"] = "library_log"
    exc_info = event_dict.pop("exc_info", None) or (record.exc_info if record is not None else None)
    if isinstance(exc_info, tuple) and exc_info[1] is not None:
        event_dict["error"] = " ".join(f"{type(exc_info[1]).__name__}: {exc_info[1]}".split())[:500]
    if record is not None:
        record.exc_info = None  # the formatter would append the traceback otherwise
        record.exc_text = None
    return event_dict


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
