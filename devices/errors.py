"""Device errors in words: what an operator reads in `flux-edge status`, never a Python repr."""

from __future__ import annotations

import errno
import socket

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the device",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EPIPE: "connection closed by the device",
    errno.EADDRNOTAVAIL: "address not available",
}


def describe(exc: BaseException) -> str:
    """"connection refused", "timed out", "name not resolved: nowhere.invalid"... from an exception."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    if isinstance(exc, OSError):
        words = _ERRNO_WORDS.get(exc.errno or 0) if exc.errno else None
        if words is None and isinstance(exc, ConnectionRefusedError):
            words = "connection refused"
        if words is None:
            text = exc.strerror or str(exc)
            words = text[:1].lower() + text[1:] if text else type(exc).__name__
        return words
    text = str(exc).strip()
    if type(exc).__name__.startswith("Modbus"):  # pymodbus: "Modbus Error: [Input/Output] No response ..."
        if "no response" in text.lower():
            return "no response from the device"
        return text.replace("Modbus Error: ", "").strip("[] ") or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
