"""The value expected today in `flux-edge status` (text and --json), from a runtime with real parts: a history
store holding today's periods, the forecast component over it, a planner that solved a real plan, the admin
endpoint on a real port, and the `status` command run as its own process.

The plan is made at 19:00 BST with a 5-hour horizon and no terminal value: its periods end at local midnight,
so the planner's own expected value (controller.planner.model.read_plan) is exactly what is left of today, an
independent check of the day's sums. Each recorded period discharges 10 kWh while the site imports 50 kWh at
20 p, with 20 GBP/MWh of wear: 60 x 20 - 50 x 20 - 10 x 2 = 180 p.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from controller.commands.status import render
from controller.config import load_site
from controller.core.clock import ManualClock
from controller.forecast.history import ControllerPeriod, HistoryStore
from controller.forecast.rows import PeriodRow
from controller.forecast.service import ForecastService, MeterIds
from controller.ops.admin import AdminServer
from controller.ops.status import take_view
from controller.planner.service import PlannerService, SiteView
from controller.runtime import Runtime
from tests.conftest import ROOT
from tests.helpers import free_port
from tests.ops.conftest import site_dict
from tests.planner.test_service import Solve

MIDNIGHT = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)  # 1 July 2026, local (BST)
NOW = MIDNIGHT + timedelta(hours=19)  # 19:00 BST, a period boundary
SP = timedelta(minutes=30)
PLANNER = {"price": {"type": "imbalance"}, "throughput_cost_gbp_per_mwh": 20, "terminal_value_p_per_kwh": 0,
           "horizon_h": 5, "min_history_h": 0}


def runtime_with_history(tmp_path: Path, *, planner: bool, port: int) -> tuple[Runtime, HistoryStore]:
    site = site_dict(ops={"admin": {"enabled": True, "port": port}}, buffer={"path": str(tmp_path / "buffer")},
                     site={"id": "testsite", "name": "Test site", "timezone": "Europe/London"})
    if planner:
        site["planner"] = PLANNER
        site["controller"]["modes"].insert(0, {"type": "plan"})
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    runtime = Runtime(site=load_site(path), clock=ManualClock(NOW))
    store = HistoryStore.open(tmp_path / "buffer", synchronous="normal")
    rows = []
    for k in range(-48, 38):  # yesterday (local) and today's 38 ended periods, but for 03:00 and 03:30
        if k in (8, 9):
            continue
        rows.append((PeriodRow(MIDNIGHT + k * SP, site_import_kwh=50.0, site_export_kwh=0.0, battery_charge_kwh=0.0,
                               battery_discharge_kwh=10.0, soe_end_kwh=500.0, imbalance_price_p_per_kwh=20.0),
                     ControllerPeriod(site_power_mean_kw=100.0, battery_power_mean_kw=20.0)))
    store.put(rows)
    config = runtime.config
    assert config.controller is not None
    ids = MeterIds(config.device(config.controller.site_meter).id, config.device(config.controller.battery).id)
    runtime.services.forecast = ForecastService(store, runtime.clock, runtime.bus, ids)
    return runtime, store


async def status_command(site: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", "status", "--site", str(site), *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    return out.decode()


async def test_status_shows_what_today_earned_and_what_the_plan_expects_of_the_rest(tmp_path: Path) -> None:
    port = free_port()
    runtime, store = runtime_with_history(tmp_path, planner=True, port=port)
    config = runtime.config
    assert config.controller is not None and config.planner is not None
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    service = PlannerService(config.planner, config.controller.limits(), clock=clock,
                             view=SiteView(lambda: 600.0, lambda: 120.0), solve=Solve(clock))
    seeded = service.seed((r.period_start, 100.0, r.imbalance_price_p_per_kwh) for r in store.rows())
    assert seeded == 84
    assert await service.replan(NOW, "test")
    runtime.services.planner = service
    plan = service.plan
    assert plan is not None and plan.periods[-1].start + SP == MIDNIGHT + timedelta(days=1)
    admin = AdminServer(runtime, None, "127.0.0.1", port)
    await admin.endpoint.start()
    try:
        answer: dict[str, Any] = json.loads(await status_command(tmp_path / "site.yaml", "--json"))
        text = await status_command(tmp_path / "site.yaml")
    finally:
        await admin.endpoint.close()
        store.close()
    v = answer["value_today"]
    assert {k: v[k] for k in ("day", "periods", "earned_gbp", "earned_periods", "unrecorded_periods",
                              "expected_periods", "unplanned_periods", "plan_id", "no_plan")} == {
        "day": "2026-07-01", "periods": 48, "earned_gbp": 64.8, "earned_periods": 36, "unrecorded_periods": 2,
        "expected_periods": 10, "unplanned_periods": 0, "plan_id": plan.plan_id, "no_plan": None}
    assert v["expected_gbp"] == round(plan.expected_value_gbp, 2)  # the planner's own sum of the same periods
    assert v["total_gbp"] == round(64.8 + v["expected_gbp"], 2)
    # Extended, not changed: the plan's whole-horizon value is where it was.
    assert answer["plan"]["expected_value_gbp"] == round(plan.expected_value_gbp, 2)
    line = next(x for x in text.splitlines() if x.startswith("value today "))
    assert line == (f"value today £{v['total_gbp']:.2f} = earned £64.80 (36 ended periods, 2 not recorded) + "
                    f"planned £{v['expected_gbp']:.2f} (10 periods left)")
    assert render(answer) == text.rstrip("\n")


async def test_without_a_plan_status_says_so_instead_of_a_number(tmp_path: Path) -> None:
    runtime, store = runtime_with_history(tmp_path, planner=True, port=free_port())
    config = runtime.config
    assert config.controller is not None and config.planner is not None
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    # SoE unknown: nothing to plan on, the modes decide.
    service = PlannerService(config.planner, config.controller.limits(), clock=clock,
                             view=SiteView(lambda: None, lambda: 120.0), solve=Solve(clock))
    assert not await service.replan(NOW, "test")
    runtime.services.planner = service
    try:
        answer = json.loads(json.dumps((await take_view(runtime)).to_json()))
    finally:
        store.close()
    v = answer["value_today"]
    assert v["earned_gbp"] == 64.8 and v["expected_gbp"] is None and v["total_gbp"] is None
    assert v["no_plan"] == "no plan yet: the rule-based modes decide (nothing to plan on: no SoE)"
    assert v["unplanned_periods"] == 10
    line = next(x for x in render(answer).splitlines() if x.startswith("value today "))
    assert line == ("value today earned £64.80 (36 ended periods, 2 not recorded); the rest of the day: "
                    "no plan yet: the rule-based modes decide (nothing to plan on: no SoE)")


async def test_a_site_without_a_planner_is_valued_at_the_planner_defaults(tmp_path: Path) -> None:
    runtime, store = runtime_with_history(tmp_path, planner=False, port=free_port())
    try:
        v = (await take_view(runtime)).to_json()["value_today"]
    finally:
        store.close()
    # The imbalance price, no throughput cost: 60 x 20 - 50 x 20 = 200 p a period.
    assert v["earned_gbp"] == 72.0 and v["expected_gbp"] is None
    assert v["no_plan"] == "no planner in the site file: the rule-based modes decide"
