"""Stand-ins for the market APIs: Modo's imbalance data and Axle Energy's dispatch endpoints.

Both serve realistic, scriptable data on the addresses of the site's `simulator.modo` / `simulator.axle`
blocks. Modo answers a day of settlement-period prices and volumes (simulator/data/modo_day.csv,
repeated every day; SPs appear once they have started, as the live feed does). Axle answers a daily
battery schedule and keeps every telemetry reading it is sent. Fault knobs and scripted data are set
from Python (`ctx.shared["modo"]`, `ctx.shared["axle"]`) or over HTTP: `POST /_sim/faults` with
`{"fail_status": 503, "malformed": true, ...}` and `POST /_sim/script` with the scripted data.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from controller.core.clock import Clock
from controller.core.logs import get_logger
from controller.engine.schedule import local_to_utc, zone
from controller.engine.settlement import periods_in_day, sp_start, today_gb
from simulator.context import SimContext
from simulator.http import HttpServer, Request, Response

log = get_logger("simulator.market")

MODO_PRICE = "/pub/v1/gb/modo/markets/system-price-live"
MODO_NIV = "/pub/v1/gb/modo/markets/niv-live"


def load_day(text: str | None = None) -> list[tuple[float, float]]:
    """(system price £/MWh, NIV MWh) per settlement period 1..48 from the bundled CSV (or `text`)."""
    if text is None:
        text = resources.files("simulator").joinpath("data/modo_day.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    day = [(float(r["system_price"]), float(r["niv"])) for r in rows]
    if len(day) != 48:
        raise ValueError(f"a day needs 48 settlement periods, got {len(day)}")
    return day


@dataclass
class Faults:
    fail_status: int | None = None  # answer every request with this status
    malformed: bool = False  # answer a body that is not what the API promises
    empty: bool = False  # answer no results
    drop: bool = False  # drop the connection without answering
    latency_s: float = 0.0

    def update(self, data: dict[str, Any]) -> None:
        for key, value in data.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault knob '{key}'")
            setattr(self, key, value)


@dataclass
class ModoStandIn:
    clock: Clock
    day: list[tuple[float, float]] = field(default_factory=load_day)
    faults: Faults = field(default_factory=Faults)
    publish_delay_s: float = 0.0  # an SP's data appears this long after it starts
    future_periods: int = 0  # a misbehaving feed: also answer this many SPs that have not started
    script: dict[tuple[date, int], tuple[float, float]] = field(default_factory=dict)  # (date, SP) -> (price, niv)
    requests: Counter[str] = field(default_factory=Counter)

    def value(self, day: date, number: int) -> tuple[float, float]:
        return self.script.get((day, number), self.day[(number - 1) % len(self.day)])

    def results(self, day: date, field_name: str) -> list[dict[str, Any]]:
        now = self.clock.now() - timedelta(seconds=self.publish_delay_s)
        out = []
        started = 0
        for number in range(1, periods_in_day(day) + 1):
            if sp_start(day, number) <= now:
                started = number
        last = min(periods_in_day(day), started + self.future_periods)
        for number in range(last, 0, -1):  # newest first
            price, niv = self.value(day, number)
            out.append({"date": day.isoformat(), "settlement_period": number,
                        field_name: price if field_name == "system_price" else niv})
        return out

    async def handle(self, req: Request) -> Response:
        if req.path.startswith("/_sim/"):
            return _admin(req, self.faults, self._script)
        self.requests[req.path] += 1
        if req.method != "GET" or req.path not in (MODO_PRICE, MODO_NIV):
            return Response.json({"detail": "Not Found"}, 404)
        faulty = await _fault(self.faults)
        if faulty is not None:
            return faulty
        try:
            day = date.fromisoformat(req.arg("date_from") or today_gb(self.clock.now()).isoformat())
        except ValueError:
            return Response.json({"detail": "bad date_from"}, 422)
        if self.faults.malformed:
            return Response.json({"results": "not a list"})
        if self.faults.empty:
            return Response.json({"results": []})
        return Response.json({"results": self.results(day, "system_price" if req.path == MODO_PRICE else "niv")})

    def _script(self, data: Any) -> None:
        for item in data.get("periods", []):
            key = (date.fromisoformat(item["date"]), int(item["settlement_period"]))
            self.script[key] = (float(item["system_price"]), float(item["niv"]))
        self.publish_delay_s = float(data.get("publish_delay_s", self.publish_delay_s))
        self.future_periods = int(data.get("future_periods", self.future_periods))


# A day of Axle dispatch, in local time: overnight charge, a midday solar soak, the evening peak.
DEFAULT_STEPS = (("02:00", "03:30", "charge_max"), ("11:30", "14:00", "avoid_export"),
                 ("16:30", "17:30", "discharge_max"), ("17:30", "19:00", "avoid_import"))


@dataclass
class AxleStandIn:
    clock: Clock
    username: str | None = None  # None: any credentials are accepted
    password: str | None = None
    timezone: str = "Europe/London"
    faults: Faults = field(default_factory=Faults)
    steps: list[dict[str, Any]] | None = None  # scripted schedule; None: the default day, today and tomorrow
    tokens: set[str] = field(default_factory=set)
    readings: list[dict[str, Any]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    _seq: Any = field(default_factory=itertools.count)

    def default_schedule(self) -> list[dict[str, Any]]:
        tz = zone(self.timezone)
        today = self.clock.now().astimezone(tz).date()
        out = []
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            for start, end, action in DEFAULT_STEPS:
                s = local_to_utc(day, time.fromisoformat(start), tz)
                e = local_to_utc(day, time.fromisoformat(end), tz)
                out.append({"start_timestamp": s.isoformat(), "end_timestamp": e.isoformat(), "action": action,
                            "allow_deviation": False})
        return out

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def _authorised(self, req: Request) -> bool:
        auth = req.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    async def handle(self, req: Request) -> Response:
        if req.path.startswith("/_sim/"):
            return _admin(req, self.faults, self._script)
        self.requests[req.path] += 1
        faulty = await _fault(self.faults)
        if faulty is not None:
            return faulty
        if req.path == "/auth/token-form" and req.method == "POST":
            form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
            if self.username is not None and (form.get("username") != self.username
                                              or form.get("password") != self.password):
                return Response.json({"detail": "Incorrect username or password"}, 401)
            token = f"sim-{next(self._seq)}-{secrets.token_hex(8)}"
            self.tokens.add(token)
            return Response.json({"access_token": token, "token_type": "bearer"})
        if not self._authorised(req):
            return Response.json({"detail": "Not authenticated"}, 401)
        if req.path.startswith("/entities/asset/") and req.path.endswith("/battery-schedule") and req.method == "GET":
            if self.faults.malformed:
                return Response.json({"schedule_steps": {"oops": 1}})
            steps = self.steps if self.steps is not None else self.default_schedule()
            return Response.json({"schedule_steps": [] if self.faults.empty else steps})
        if req.path == "/data/readings" and req.method == "POST":
            try:
                body = req.json()
                readings = body["readings"]
                if not isinstance(readings, list):
                    raise TypeError("readings must be a list")
            except (ValueError, KeyError, TypeError) as exc:
                return Response.json({"detail": str(exc)}, 422)
            self.readings.extend(readings)
            return Response.json({"accepted": len(readings)})
        return Response.json({"detail": "Not Found"}, 404)

    def _script(self, data: Any) -> None:
        if "steps" in data:
            self.steps = data["steps"]


async def _fault(faults: Faults) -> Response | None:
    if faults.latency_s:
        await asyncio.sleep(faults.latency_s)
    if faults.drop:
        return Response(close=True)
    if faults.fail_status is not None:
        return Response.json({"detail": "simulated failure"}, faults.fail_status)
    return None


def _admin(req: Request, faults: Faults, script: Any) -> Response:
    try:
        data = req.json() if req.body else {}
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        if req.path == "/_sim/faults" and req.method == "POST":
            faults.update(data)
            return Response.json({"faults": faults.__dict__})
        if req.path == "/_sim/script" and req.method == "POST":
            script(data)
            return Response.json({"ok": True})
    except (ValueError, KeyError, TypeError) as exc:
        return Response.json({"detail": str(exc)}, 422)
    return Response.json({"detail": "Not Found"}, 404)


async def serve(ctx: SimContext) -> None:
    sim = ctx.sim
    if sim.modo is None and sim.axle is None:
        return
    servers: list[HttpServer] = []
    try:
        if sim.modo is not None:
            modo = ModoStandIn(ctx.clock)
            ctx.shared["modo"] = modo
            servers.append(HttpServer(modo.handle, sim.modo.host, sim.modo.port))
        if sim.axle is not None:
            creds = ctx.site.market.axle
            axle = AxleStandIn(
                ctx.clock, timezone=ctx.site.site.timezone,
                username=creds.username.get_secret_value() if creds else None,
                password=creds.password.get_secret_value() if creds else None)
            ctx.shared["axle"] = axle
            servers.append(HttpServer(axle.handle, sim.axle.host, sim.axle.port))
        for server in servers:
            await server.start()
            log.info("market_stand_in_listening", url=server.url)
        for name in ("modo", "axle"):
            if name in ctx.shared:
                ctx.ready(name).set()
        await asyncio.Event().wait()
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                await server.close()
