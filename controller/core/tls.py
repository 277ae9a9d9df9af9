"""One TLS client context for the process: the cloud sink, the market APIs and a price feed share it.

An httpx client left to itself builds its own context and loads the CA bundle into it, about 0.8 MiB of
resident memory per client (measured with httpx 0.28); a site has three or four such clients for years.
An `ssl.SSLContext` is made to be shared by many connections, and this one verifies as httpx's default does
(certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR from the environment).
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_context() -> ssl.SSLContext:
    import httpx  # only processes that make HTTPS clients pay for it

    return httpx.create_ssl_context()
