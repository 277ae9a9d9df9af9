"""Structured logging: JSON lines on stdout for journald, or a console renderer for people.

Events are named (`log.info("poll_failed", device=..., error=...)`); values never get formatted into
prose. A redaction processor drops anything registered as a secret, wherever it appears.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.parse
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]

_secrets: set[str] = set()
REDACTED = "***"


MIN_SECRET_LENGTH = 8  # shorter values ("flux", "1234") would redact ordinary words everywhere


def register_secret(value: str) -> None:
    """Never let `value` reach a log line, an alert or an acknowledgement (every resolved secret of the
    site file). Also its escaped spellings: inside JSON or a repr (quotes, backslashes, non-ASCII) and
    percent-encoded in a URL (a DSN's password)."""
    if len(value) < MIN_SECRET_LENGTH:  # not redacted (no log line here: validate's stdout is a contract)
        return
    variants = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1],
                urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    _secrets.update(v for v in variants if len(v) >= MIN_SECRET_LENGTH)


def redactions() -> frozenset[str]:
    """Every spelling registered so far (the config validator's child sends them to the daemon)."""
    return frozenset(_secrets)


def register_redactions(spellings: Iterable[str]) -> None:
    """Spellings from `redactions()` of another process: already expanded, taken as they are."""
    _secrets.update(s for s in spellings if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH)


def forget_secrets() -> None:
    """Drop every registered secret (tests: one test's secrets must not redact another's output)."""
    _secrets.clear()


def redact_text(value: str) -> str:
    """`value` with every registered secret (in any spelling) replaced by ***."""
    if _secrets:
        for secret in sorted(_secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, REDACTED)
    return value


def redact(value: Any, _depth: int = 0) -> Any:
    """A value with secrets redacted inside strings, keeping the structure of lists, tuples and dicts."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float | bool | type(None)):
        return value
    if _depth < 8 and isinstance(value, dict):
        return {redact(k, _depth + 1): redact(v, _depth + 1) for k, v in value.items()}
    if _depth < 8 and isinstance(value, list | tuple):
        return type(value)(redact(v, _depth + 1) for v in value)
    text = str(value)  # exceptions, paths, anything else: as its text
    return redact_text(text) if any(secret in text for secret in _secrets) else value


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not _secrets:
        return event_dict
    for key, value in list(event_dict.items()):
        if key == "_record":
            continue
        event_dict[key] = redact(value)
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
