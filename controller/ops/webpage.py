"""The local web page: static files shipped in the package (`controller/ops/web/`), no build step, no CDN.

The admin endpoint (loopback) serves it at `/` beside `/status`. `ops.web.host` may bind a second,
read-only listener to another address (the site's VPN address), where `/status` and `/today` need the token
(`Authorization: Bearer ...`; the page takes it from its URL's fragment, `#token=...`, which browsers
never send to the server). The page itself holds no data, so it is served without the token.
"""

from __future__ import annotations

import asyncio
import hmac
from importlib import resources
from typing import TYPE_CHECKING

from controller.core.logs import get_logger
from controller.ops.chart import today_view
from controller.ops.httpd import HttpEndpoint, HttpRequest, HttpResponse
from controller.ops.status import take_view

if TYPE_CHECKING:
    from controller.ops.tally import DecisionTally
    from controller.runtime import Runtime

log = get_logger("ops.web")

STATIC: dict[str, tuple[str, str]] = {  # path -> (file in controller/ops/web, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
# The page is read-only and loads nothing from elsewhere: say so to the browser too.
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"}


def static_file(name: str) -> bytes:
    return (resources.files("controller.ops") / "web" / name).read_bytes()


def static_response(path: str) -> HttpResponse | None:
    """The page's file at `path`, or None when `path` is not one of them."""
    entry = STATIC.get(path)
    if entry is None:
        return None
    name, content_type = entry
    return HttpResponse(200, static_file(name), content_type, dict(HEADERS))


def authorized(request: HttpRequest, token: str | None) -> bool:
    if token is None:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


class WebServer:
    """The page and a read-only `/status` and `/today` on `ops.web.host`, behind the token."""

    def __init__(self, runtime: Runtime, tally: DecisionTally | None, host: str, port: int,
                 token: str | None) -> None:
        self._runtime = runtime
        self._tally = tally
        self._token = token
        self.endpoint = HttpEndpoint(self._handle, host, port)

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET":
            return HttpResponse(405, b"read-only\n")
        page = static_response(request.path)
        if page is not None:
            return page
        if request.path in ("/status", "/today"):
            if not authorized(request, self._token):
                return HttpResponse(401, b"token required\n", headers={"WWW-Authenticate": "Bearer"})
            if request.path == "/today":
                return HttpResponse.json(await today_view(self._runtime))
            view = await take_view(self._runtime, self._tally.last if self._tally is not None else None)
            return HttpResponse.json(view.to_json())
        return HttpResponse(404, b"not found\n")

    async def run(self) -> None:
        await self.endpoint.start()
        log.info("web_listening", host=self.endpoint.host, port=self.endpoint.port)
        try:
            await asyncio.Event().wait()
        finally:
            await self.endpoint.close()
