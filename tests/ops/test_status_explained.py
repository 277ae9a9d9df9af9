"""`flux-edge status` explains: reason, market, next mode change, battery measured vs commanded, today's
energy and value, the last alerts and stale marks, from a populated runtime (real view, real JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from controller.commands.status import render
from controller.config import load_site
from controller.core.bus import Event
from controller.core.clock import ManualClock
from controller.core.config import Period
from controller.core.reading import Reading
from controller.engine.site_state import MarketValue
from controller.engine.upcoming import next_mode_change
from controller.ops.provider import site_day
from controller.ops.status import take_view
from controller.runtime import Runtime
from devices.base import DeviceHealth
from tests.ops.conftest import BESS_ID, METER_ID, write_site

NOW = datetime(2026, 11, 23, 16, 16, 0, tzinfo=UTC)  # a Monday, GMT
SP = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


class _Modo:
    price = MarketValue(45.24, SP)
    volume = MarketValue(184.0, SP)


def _reading(device: str, t: datetime, **fields: float) -> Reading:
    ids = {"bess": BESS_ID, "site-meter": METER_ID}
    kind = "powerpack" if device == "bess" else "acuvim2"
    return Reading(UUID(ids[device]), device, kind, t, fields, t)


async def test_status_explains_the_decision_and_today(tmp_path: Path) -> None:
    runtime = Runtime(site=load_site(write_site(tmp_path / "site.yaml")), clock=ManualClock(NOW))
    runtime.services.modo = _Modo()  # type: ignore[assignment]
    day = site_day(runtime)
    day.price = lambda: _Modo.price
    # Half an hour of readings a minute apart: the site imports 100 kW, the battery discharges 200 kW.
    start = NOW - timedelta(minutes=30)
    for i in range(31):
        t = start + timedelta(minutes=i)
        for r in (_reading("site-meter", t, power_total_active=100.0), _reading("bess", t, target_power_kw=200.0,
                                                                                 soe_kwh=600.0)):
            runtime.state.update(r)
            day.observe(r)
    day.alert(Event(NOW - timedelta(minutes=3), "battery_write_failed", "Error", "setpoint write failed"))
    bess = DeviceHealth()
    bess.record_success(NOW)
    runtime.health["bess"] = bess  # the site meter has no health yet: never polled
    decision = {"time": NOW.isoformat(), "target_kw": 200.0, "constraints": [], "active_modes": [],
                "effective_modes": [], "explanation": "discharging 200 kW: system short, peak discharge"}
    view = json.loads(json.dumps((await take_view(runtime, decision)).to_json()))

    assert view["reason"] == "discharging 200 kW: system short, peak discharge"
    assert view["market"]["imbalance_volume"] == {"value": 184.0, "settlement_period": SP.isoformat()}
    assert view["freshness"]["imbalance_price"]["stale"] is False
    assert view["freshness"]["soe_kwh"] == {"age_s": 0.0, "max_age_s": 30.0, "stale": False}
    assert view["next_mode_change"] == {"time": "2026-11-24T01:00:00+00:00", "mode": "overnight",
                                        "change": "starts"}
    today = view["today"]
    assert today["since"] == start.isoformat() and today["from_midnight"] is False
    assert abs(today["imported_kwh"] - 50.0) < 1e-6 and abs(today["discharged_kwh"] - 100.0) < 1e-6
    assert abs(today["battery_value_gbp"] - 100.0 * 45.24 / 100) < 0.01
    assert view["alerts"][-1]["kind"] == "battery_write_failed"
    assert {d["name"]: d["state"] for d in view["devices"]} == {"bess": "ok", "site-meter": "pending"}
    for key in ("site_id", "target_kw", "soe_kwh", "site_power_kw", "devices", "sinks", "backlog"):
        assert key in view  # the existing keys stay

    lines = render(view).splitlines()
    assert "why         discharging 200 kW: system short, peak discharge" in lines
    assert "market      price 45.24 p/kWh   NIV +184 MWh   SP 2026-11-23T16:00+00:00" in lines
    assert "next        overnight starts at 2026-11-24T01:00+00:00" in lines
    assert any(line.startswith("today (since 2026-11-23T15:46+00:00)   charged 0.0 kWh, discharged 100.0 kWh, "
                               "imported 50.0 kWh") for line in lines)
    assert "2026-11-23T16:13+00:00  Error    battery_write_failed: setpoint write failed" in lines
    assert next(line for line in lines if line.startswith("site-meter")).split()[2] == "pending"

    # Ten minutes on with no new reading: every top number is marked stale, the reason too.
    await runtime.clock.advance(600)  # type: ignore[attr-defined]
    view = json.loads(json.dumps((await take_view(runtime, decision)).to_json()))
    assert all(view["freshness"][k]["stale"] for k in ("soe_kwh", "site_power_kw", "target_kw"))
    text = render(view)
    assert "SoE 600.0 kWh (stale 600 s)" in text and "site power 100.0 kW (stale 600 s)" in text
    assert "why         discharging 200 kW: system short, peak discharge (stale 600 s)" in text.splitlines()


def test_today_restarts_at_local_midnight(tmp_path: Path) -> None:
    runtime = Runtime(site=load_site(write_site(tmp_path / "site.yaml")), clock=ManualClock(NOW))
    day = site_day(runtime)
    midnight = datetime(2026, 11, 24, tzinfo=UTC)
    for t in (midnight - timedelta(minutes=2), midnight - timedelta(minutes=1), midnight,
              midnight + timedelta(minutes=1)):
        day.observe(_reading("site-meter", t, power_total_active=-60.0))
    assert day.totals is not None and day.totals.since == midnight and day.totals.from_midnight
    assert abs(day.totals.exported_kwh - 1.0) < 1e-9  # only the minute after midnight is today's


def test_next_mode_change_joins_back_to_back_windows() -> None:
    def p(start: str, end: str, days: str = "all") -> Period:
        return Period.model_validate({"start": start, "end": end, "days": days, "timezone": "Europe/London"})

    t = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    night = [p("22:00", "24:00"), p("00:00", "06:00")]
    assert next_mode_change([("night", night)], t) == next_mode_change([("night", [p("22:00", "06:00")])], t)
    change = next_mode_change([("always", [p("00:00", "24:00")]), ("night", night)], t)
    assert change is not None and (change.mode, change.change, change.time) == (
        "night", "ends", datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
