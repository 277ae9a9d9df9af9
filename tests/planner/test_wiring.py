"""The planner component as the daemon builds it (controller.wiring): a real plan through the real child
process, handed to the control loop's `plan` lookup and published as an event; none without a planner block."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.config import load_site
from controller.config.views import site_buffer_dir
from controller.core.bus import Event
from controller.core.clock import ManualClock
from controller.core.reading import Reading
from controller.engine.site_state import MarketValue
from controller.forecast.history import HistoryStore
from controller.forecast.rows import PeriodRow
from controller.planner.service import PlannerService
from controller.runtime import Runtime
from controller.wiring import planner

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "sites" / "demo.yaml"
NOW = datetime(2026, 6, 3, 12, 5, tzinfo=UTC)


class Modo:
    price = MarketValue(9.0, datetime(2026, 6, 3, 11, 30, tzinfo=UTC))
    volume = None


async def _first_plan(runtime: Runtime) -> PlannerService:
    """The planner once it holds a plan (real time: the child process starts and solves, seconds at most)."""
    for _ in range(600):
        await asyncio.sleep(0.05)
        if runtime.services.planner is not None and runtime.services.planner.plan is not None:
            break
    service = runtime.services.planner
    assert service is not None and service.plan is not None, runtime.health.get("planner")
    return service


async def test_the_planner_component_plans_in_its_child_and_publishes_the_plan(tmp_path: Path) -> None:
    site_file = tmp_path / "site.yaml"  # the demo site, planning from the first price
    site_file.write_text(DEMO.read_text().replace("min_history_h: 36", "min_history_h: 0"))
    site = load_site(site_file)
    runtime = Runtime(site=site, clock=ManualClock(NOW))
    c = site.config.controller
    assert c is not None
    for name, fields in ((c.battery, {"soe_kwh": 500.0}), (c.site_meter, {"power_total_active": 40.0})):
        d = site.config.device(name)
        runtime.state.update(Reading(d.id, d.name, d.type, NOW, fields, NOW))
    runtime.services.modo = Modo()  # type: ignore[assignment]
    events: list[Event] = []
    runtime.bus.events.on(events.append)
    [spec] = planner(site.config, runtime)
    task = asyncio.create_task(spec.factory())
    try:
        service = await _first_plan(runtime)
        assert runtime.health["planner"]["status"] in ("optimal", "breaches")
        targets = service.current()
        assert targets is not None and targets.target_at(NOW) is not None
        assert [e.kind for e in events] == ["plan_made"]
        assert events[0].data["plan"]["plan_id"] == service.plan.plan_id
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert runtime.services.planner is None  # gone with its component


async def test_a_restarted_planner_plans_at_once_on_the_local_history(tmp_path: Path) -> None:
    # The demo waits for 36 h of price history: two days of it in the site's history file are enough,
    # without a period sampled since the start.
    site_file = tmp_path / "site.yaml"
    site_file.write_text(DEMO.read_text().replace("path: var/demo", f"path: {tmp_path / 'buffer'}"))
    site = load_site(site_file)
    store = HistoryStore.open(site_buffer_dir(site.config))
    periods = [NOW.replace(minute=0) - timedelta(minutes=30 * k) for k in range(1, 97)]
    store.put((PeriodRow(t, site_import_kwh=20.0, site_export_kwh=0.0, battery_charge_kwh=0.0,
                         battery_discharge_kwh=0.0, imbalance_price_p_per_kwh=5.0 + (t.hour >= 16) * 20.0), None)
              for t in periods)
    store.close()
    runtime = Runtime(site=site, clock=ManualClock(NOW))
    c = site.config.controller
    assert c is not None
    d = site.config.device(c.battery)
    runtime.state.update(Reading(d.id, d.name, d.type, NOW, {"soe_kwh": 500.0}, NOW))
    [spec] = planner(site.config, runtime)
    task = asyncio.create_task(spec.factory())
    try:
        service = await _first_plan(runtime)
        # The history's net load (40 kW: 20 kWh a half-hour) is what the stand-in forecast planned on.
        assert service.plan.periods[0].net_load_kw == 40.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_no_planner_block_no_component(tmp_path: Path) -> None:
    head, rest = DEMO.read_text().split("\nplanner:\n", 1)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(head + rest[rest.index("\nmarket:"):])
    site = load_site(site_file)
    assert planner(site.config, Runtime(site=site, clock=ManualClock(NOW))) == []
