"""What every HTTP client of the daemon shares: one TLS context and keep-alive long enough for its cadences.

The clients are the cloud sink, Modo, Axle and a price feed. Each would otherwise build its own TLS context
and load the CA bundle into it: about 0.8 MiB of resident memory per client (measured with httpx 0.28), for
years. An `ssl.SSLContext` is made to be shared by many connections; this one verifies as httpx's default
does (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR from the environment).

httpx drops an idle connection after 5 s by default, so a client that asks every 10 s (Axle's schedule and
telemetry) or uploads every few seconds connected afresh for nearly every request: over TLS, a handshake
each time. 30 s covers those cadences and stays below the idle timeouts servers commonly keep (60-75 s); a
connection the server closed anyway is noticed by httpcore before reuse.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

KEEPALIVE_S = 30.0


@functools.cache
def client_context() -> ssl.SSLContext:
    import httpx  # only processes that make HTTP clients pay for it

    return httpx.create_ssl_context()


def client_options() -> dict[str, Any]:
    """Keyword arguments for `httpx.AsyncClient`: the shared TLS context and the keep-alive above."""
    import httpx

    return {"verify": client_context(), "limits": httpx.Limits(keepalive_expiry=KEEPALIVE_S)}
