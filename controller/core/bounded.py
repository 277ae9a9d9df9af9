"""Bounded parsing of untrusted bytes: size and nesting depth checked before the parser runs.

`json.loads` recurses per nesting level (400 kB of brackets raised RecursionError deep inside the MQTT
bridge and wedged it) and happily builds a 400-digit integer; this checks the size, scans the nesting
depth in one linear pass (strings and escapes respected), and turns every parser failure into one
`BoundedParseError` line.
"""

from __future__ import annotations

import json
import math
from typing import Any

DEFAULT_MAX_DEPTH = 32


class BoundedParseError(ValueError):
    """One line saying why the input was refused."""


def nesting_depth(text: str, limit: int) -> int:
    """The deepest bracket nesting of a JSON text, stopping early once beyond `limit`."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise BoundedParseError(f"{name} is not a number JSON allows")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 18:
        raise BoundedParseError(f"integer with {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BoundedParseError(f"number {text[:40]} is out of range")
    return value


def loads(data: bytes | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """JSON from untrusted input, or BoundedParseError (one line)."""
    size = len(data)
    if size > max_bytes:
        raise BoundedParseError(f"{size} bytes is more than the {max_bytes} allowed")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BoundedParseError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    else:
        text = data
    depth = nesting_depth(text, max_depth)
    if depth > max_depth:
        raise BoundedParseError(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_int, parse_float=_float)
    except BoundedParseError:
        raise
    except json.JSONDecodeError as exc:
        raise BoundedParseError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise BoundedParseError(f"not usable JSON: {type(exc).__name__}") from None
