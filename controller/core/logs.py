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
    # Libraries log through stdlib logging; keep their warnings, drop their chatter.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    for noisy in ("pymodbus", "httpx", "httpcore", "aiomqtt"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if noisy == "pymodbus" else logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
