"""`GET /today`: today's periods from the local history (the site's local day), the forecast and the plan
ahead, from a runtime with a populated history store; open on the admin endpoint like `/status`, behind the
token on the page's second listener."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.config import load_site
from controller.core.clock import ManualClock
from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast
from controller.forecast.history import ControllerPeriod, HistoryStore
from controller.forecast.rows import PeriodRow
from controller.forecast.service import ForecastService, MeterIds
from controller.ops.admin import AdminServer
from controller.ops.httpd import HttpRequest
from controller.ops.webpage import WebServer
from controller.planner.model import Plan, PlanPeriod
from controller.runtime import Runtime
from tests.ops.conftest import write_site

# 11:10 BST on a Wednesday: the local day began at 23:00 UTC the day before.
NOW = datetime(2026, 7, 1, 10, 10, tzinfo=UTC)
MIDNIGHT = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
SP = timedelta(minutes=30)


class _Planner:
    def __init__(self, plan: Plan) -> None:
        self.plan: Plan | None = plan
        self.status = plan.status


def _runtime(tmp_path: Path, now: datetime = NOW) -> tuple[Runtime, HistoryStore]:
    runtime = Runtime(site=load_site(write_site(tmp_path / "site.yaml", site={"timezone": "Europe/London"})),
                      clock=ManualClock(now))
    store = HistoryStore.open(tmp_path / "buffer", synchronous="normal")
    rows = []
    for i in range(-2, 22):  # two periods of yesterday (local), then today up to the current period
        start = MIDNIGHT + i * SP
        row = PeriodRow(start, site_import_kwh=50.0 + i, site_export_kwh=0.0, battery_charge_kwh=0.0,
                        battery_discharge_kwh=10.0, soe_end_kwh=600.0 - 5 * i, imbalance_price_p_per_kwh=20.0 + i)
        did = ControllerPeriod(site_power_mean_kw=100.0 + 2 * i, battery_power_mean_kw=None if i % 2 else 20.0,
                               target_kw_mean=25.0)
        rows.append((row, did))
    store.put(rows)
    config = runtime.config
    assert config.controller is not None
    ids = MeterIds(config.device(config.controller.site_meter).id, config.device(config.controller.battery).id, None)
    service = ForecastService(store, runtime.clock, runtime.bus, ids)
    current = MIDNIGHT + 22 * SP  # 10:00 UTC
    service.latest = Forecast(NOW - timedelta(minutes=10), tuple(
        PeriodForecast(current + k * SP, {NET_LOAD: Band(150.0, 120.0, 190.0), PRICE: Band.exact(30.0 + k)})
        for k in range(-1, 48)))
    runtime.services.forecast = service
    plan = Plan("p-1", NOW - timedelta(minutes=9), "optimal", tuple(
        PlanPeriod(current + k * SP, -50.0 if k < 4 else 100.0, 600.0 + 25 * k, 30.0 + k, 150.0, 0.0, 0.0)
        for k in range(-1, 48)), (), 12.345, 0.5)
    runtime.services.planner = _Planner(plan)  # type: ignore[assignment]
    return runtime, store


def _get(path: str, token: str | None = None) -> HttpRequest:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return HttpRequest("GET", path, headers, b"")


async def test_today_has_the_local_day_so_far_and_the_forecast_and_plan_ahead(tmp_path: Path) -> None:
    runtime, store = _runtime(tmp_path)
    try:
        admin = AdminServer(runtime, None, "127.0.0.1", 0)
        response = await admin._handle(_get("/today"))
        assert response.status == 200 and response.content_type == "application/json"
        today: dict[str, Any] = json.loads(response.body)
        assert today["day_start"] == MIDNIGHT.isoformat()
        assert today["day_end"] == (MIDNIGHT + timedelta(days=1)).isoformat()
        assert today["soe_capacity_kwh"] == 1000.0

        history = today["history"]
        assert [h["start"] for h in history] == [(MIDNIGHT + i * SP).isoformat() for i in range(22)]  # not yesterday
        first, second = history[0], history[1]
        assert first == {"start": MIDNIGHT.isoformat(), "site_kw": 100.0, "battery_kw": 20.0,
                         "battery_source": "measured", "soe_end_kwh": 600.0, "price_p_per_kwh": 20.0}
        # No mean battery power recorded: the period's energy over its half-hour (10 kWh discharged = 20 kW).
        assert second["battery_kw"] == 20.0 and second["site_kw"] == 102.0 and second["soe_end_kwh"] == 595.0

        forecast = today["forecast"]
        starts = [p["start"] for p in forecast["periods"]]
        # From the current period (10:00 UTC) to the end of the local day (23:00 UTC): 26 periods.
        assert starts[0] == "2026-07-01T10:00:00+00:00" and starts[-1] == "2026-07-01T22:30:00+00:00"
        assert len(starts) == 26
        assert forecast["periods"][0]["net_load_kw"] == {"value": 150.0, "lower": 120.0, "upper": 190.0}
        assert forecast["periods"][0]["price_p_per_kwh"] == 30.0

        plan = today["plan"]
        assert plan["plan_id"] == "p-1" and plan["status"] == "optimal" and plan["expected_value_gbp"] == 12.35
        assert plan["periods"][0] == {"start": "2026-07-01T10:00:00+00:00", "battery_kw": -50.0,
                                      "soe_end_kwh": 600.0, "site_kw": 200.0, "price_p_per_kwh": 30.0}
        assert len(plan["periods"]) == 26

        assert (await admin._handle(HttpRequest("POST", "/today", {}, b""))).status == 405
    finally:
        store.close()


async def test_today_without_history_forecast_or_plan(tmp_path: Path) -> None:
    runtime = Runtime(site=load_site(write_site(tmp_path / "site.yaml")), clock=ManualClock(NOW))
    today = json.loads((await AdminServer(runtime, None, "127.0.0.1", 0)._handle(_get("/today"))).body)
    assert today["history"] == [] and today["forecast"] is None and today["plan"] is None


async def test_today_late_in_the_day_still_looks_hours_ahead(tmp_path: Path) -> None:
    runtime, store = _runtime(tmp_path, MIDNIGHT + timedelta(hours=23, minutes=10))  # 23:10 local
    try:
        today = json.loads((await AdminServer(runtime, None, "127.0.0.1", 0)._handle(_get("/today"))).body)
        assert today["until"] == (MIDNIGHT + timedelta(hours=27, minutes=10)).isoformat()
    finally:
        store.close()


async def test_today_on_the_second_listener_needs_the_token(tmp_path: Path) -> None:
    runtime, store = _runtime(tmp_path)
    try:
        web = WebServer(runtime, None, "127.0.0.1", 0, "t0ken-for-the-vpn")
        assert (await web._handle(_get("/today"))).status == 401
        assert (await web._handle(_get("/today", "wrong"))).status == 401
        good = await web._handle(_get("/today", "t0ken-for-the-vpn"))
        assert good.status == 200 and len(json.loads(good.body)["history"]) == 22
    finally:
        store.close()
