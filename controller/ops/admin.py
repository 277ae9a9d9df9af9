"""The local admin endpoint (loopback only): `flux-edge status` and `flux-edge config apply` talk to it.

GET  /status        the operator view as JSON
GET  /today         today's periods (history) and the forecast and plan ahead, for the page's chart
GET  /              the local web page (controller/ops/web/, see controller.ops.webpage)
POST /config/apply  body: the new site file; headers X-Flux-Actor (who) and X-Flux-Site (the path the
                    caller means, refused when it is not the file this daemon runs)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from controller.core.logs import get_logger
from controller.ops import auth
from controller.ops.chart import today_view
from controller.ops.httpd import HttpEndpoint, HttpRequest, HttpResponse
from controller.ops.remote_config import same_file
from controller.ops.status import take_view
from controller.ops.webpage import static_response

if TYPE_CHECKING:
    from controller.ops.tally import DecisionTally
    from controller.runtime import Runtime

log = get_logger("ops.admin")

ACTOR_HEADER = "x-flux-actor"
SITE_HEADER = "x-flux-site"


class AdminServer:
    def __init__(self, runtime: Runtime, tally: DecisionTally | None, host: str, port: int) -> None:
        self._runtime = runtime
        self._tally = tally
        self.endpoint = HttpEndpoint(self._handle, host, port)

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/status" and request.method == "GET":
            view = await take_view(self._runtime, self._tally.last if self._tally is not None else None)
            return HttpResponse.json(view.to_json())
        if request.path == "/today" and request.method == "GET":
            return HttpResponse.json(await today_view(self._runtime))
        if request.method == "GET" and (page := static_response(request.path)) is not None:
            return page
        if request.path == "/config/apply" and request.method == "POST":
            return await self._apply(request)
        if request.path in ("/status", "/today", "/config/apply"):
            return HttpResponse(405, b"method not allowed\n")
        return HttpResponse(404, b"not found\n")

    async def _apply(self, request: HttpRequest) -> HttpResponse:
        app = self._runtime.applier()
        meant = request.headers.get(SITE_HEADER)
        if meant and not same_file(meant, app.site_path):
            return HttpResponse.json({"ok": False, "status": "wrong_site",
                                      "message": f"this daemon runs {app.site_path}, not {meant}"}, 409)
        claimed = request.headers.get(ACTOR_HEADER) or "admin-endpoint"
        if auth.auth_required():
            if not auth.admin_token_ok(request.headers.get("authorization")):
                log.warning("admin_write_refused", claimed_actor=claimed[:200], path=request.path)
                self._runtime.alert("command_refused", "Warning", "admin config push refused: no valid token",
                                    claimed_actor=claimed[:200])
                return HttpResponse.json({"ok": False, "status": "unauthorized",
                                          "message": f"a write needs Authorization: Bearer ${auth.ADMIN_TOKEN_ENV}"},
                                         401)
            actor = "admin-token"  # what was verified; the header is only a claim
        else:
            actor = claimed
        log.info("config_apply_requested", actor=actor, claimed_actor=claimed[:200], bytes=len(request.body))
        result = await app.apply(request.body, actor)
        return HttpResponse.json(result.to_json(), 200 if result.ok else 422)

    async def run(self) -> None:
        await self.endpoint.start()
        log.info("admin_listening", host=self.endpoint.host, port=self.endpoint.port)
        try:
            await asyncio.Event().wait()
        finally:
            await self.endpoint.close()
