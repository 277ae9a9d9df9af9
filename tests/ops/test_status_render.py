"""`flux-edge status` text from a status answer taken from a populated runtime (real view, real JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from controller.commands.status import render
from controller.config import load_site
from controller.core.clock import ManualClock
from controller.core.reading import Reading
from controller.ops.status import take_view
from controller.runtime import Runtime
from devices.base import DeviceHealth
from tests.ops.conftest import BESS_ID, METER_ID, write_site

NOW = datetime(2026, 6, 3, 12, 0, 0, tzinfo=UTC)


async def test_render_shows_modes_override_devices_and_sinks(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site.yaml", mqtt={"host": "127.0.0.1"},
                      uploader={"sinks": [{"type": "postgrest", "name": "cloud", "url": "http://127.0.0.1:1"}]})
    runtime = Runtime(site=load_site(site), clock=ManualClock(NOW))
    bess, meter = DeviceHealth(), DeviceHealth()
    bess.record_success(NOW)
    meter.record_failure("timeout after 0.5 s")
    runtime.health.update({"bess": bess, "site-meter": meter})
    runtime.state.update(Reading(UUID(BESS_ID), "bess", "powerpack", NOW, {"soe_kwh": 512.25},
                                 NOW - timedelta(seconds=3)))
    runtime.state.update(Reading(UUID(METER_ID), "site-meter", "acuvim2", NOW, {"power_total_active": -12.0},
                                 NOW - timedelta(seconds=70)))
    ov = runtime.overrides
    ov.manual_setpoint_kw, ov.until, ov.source = -80.0, NOW + timedelta(minutes=15), "mqtt:alice"
    decision = {"target_kw": -80.0, "active_modes": ["export_avoidance"], "effective_modes": [],
                "constraints": ["site_export"]}
    runtime.beat("control")
    answer = json.loads(json.dumps((await take_view(runtime, decision)).to_json()))
    answer["mqtt_dropped"] = 12  # as a bridge that lost its broker would report
    text = render(answer)
    lines = text.splitlines()
    assert lines[0].startswith(f"site        testsite   config {runtime.site.sha256[:12]}")
    assert lines[1] == "mode        manual setpoint   (active: export_avoidance)   dry run: off"
    assert lines[2] == "setpoint    -80.0 kW   SoE 512.2 kWh   site power -12.0 kW (stale 70 s)"
    assert lines[3].startswith("why         charging 80 kW: ")
    assert "reloads     ok 0, failed 0   mqtt disconnected" in lines
    assert "limits      site_export" in lines
    assert any(line.startswith("liveness    control ") and line.endswith(" s ago") for line in lines)
    assert "dropped     mqtt messages 12" in lines
    assert "override    setpoint -80 kW until 2026-06-03T12:15:00+00:00 by mqtt:alice" in lines
    meter_row = next(line for line in lines if line.startswith("site-meter"))
    assert meter_row.split()[1:6] == ["acuvim2", "degraded", "0", "1", "70"]
    assert meter_row.endswith("timeout after 0.5 s")
    assert any(line.split()[:2] == ["cloud", "-"] and line.endswith("never") for line in lines)


async def test_render_shows_the_plan_and_its_next_hours(tmp_path: Path) -> None:
    from controller.engine.site_state import MarketValue
    from controller.planner.config import PlannerConfig
    from controller.planner.service import PlannerService, SiteView
    from tests.planner.test_service import LIMITS, Solve

    site = write_site(tmp_path / "site.yaml")
    clock = ManualClock(NOW)
    runtime = Runtime(site=load_site(site), clock=clock)
    view = SiteView(lambda: 500.0, lambda: 40.0, lambda: MarketValue(10.0, NOW - timedelta(minutes=30)))
    service = PlannerService(PlannerConfig(horizon_h=4, min_history_h=0), LIMITS, clock=clock, view=view,
                             solve=Solve(clock))
    assert await service.replan(NOW, "test")
    runtime.services.planner = service
    text = render(json.loads(json.dumps((await take_view(runtime)).to_json())))
    plan_line = next(line for line in text.splitlines() if line.startswith("plan        "))
    assert plan_line.startswith(f"plan        optimal   {service.plan.plan_id}   ")  # type: ignore[union-attr]
    assert plan_line.endswith(" GBP expected")
    next_line = next(line for line in text.splitlines() if line.startswith("plan next   "))
    assert next_line.count(" kWh") == 8  # four hours of half-hours


async def test_status_shows_the_latest_forecast(tmp_path: Path) -> None:
    from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast

    site = write_site(tmp_path / "site.yaml")
    runtime = Runtime(site=load_site(site), clock=ManualClock(NOW + timedelta(minutes=10)))
    before = json.loads(json.dumps((await take_view(runtime)).to_json()))
    assert before["forecast"] is None and "forecast" not in render(before)

    class Service:
        latest = Forecast(NOW - timedelta(minutes=30), tuple(
            PeriodForecast(NOW + timedelta(minutes=30 * (i - 1)), {
                NET_LOAD: Band(40.0 + i, 30.0 + i, 55.0 + i), PRICE: Band(12.5, 9.0, 16.25)}) for i in range(10)),
            {NET_LOAD: "profile", PRICE: "persistence"}, ("price_p_per_kwh: 3 of 28 days of history",))

    runtime.services.forecast = Service()  # type: ignore[assignment]
    answer = json.loads(json.dumps((await take_view(runtime)).to_json()))
    assert set(answer) == set(before)  # one new key, the existing ones unchanged
    f = answer["forecast"]
    assert f["made_at"] == (NOW - timedelta(minutes=30)).isoformat()
    assert f["forecasters"] == {NET_LOAD: "profile", PRICE: "persistence"}
    assert f["notes"] == ["price_p_per_kwh: 3 of 28 days of history"]
    assert [p["start"] for p in f["next"]] == [(NOW + timedelta(minutes=30 * i)).isoformat() for i in range(6)]
    assert f["next"][0][NET_LOAD] == {"value": 41.0, "lower": 31.0, "upper": 56.0}
    lines = render(answer).splitlines()
    assert "forecast    made 11:30 by net_load_kw profile, price_p_per_kwh persistence" in lines
    assert "  12:00     net load 41 kW (31..56)   price 12.5 p/kWh (9.0..16.2)" in lines
    assert "  note      price_p_per_kwh: 3 of 28 days of history" in lines
    assert sum(line.startswith("  1") and "net load" in line for line in lines) == 6
