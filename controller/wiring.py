"""The composition root: every component of the daemon, built from the site file with explicit imports.

This is the one place that knows every part (the way evcc wires everything in `cmd/setup.go`): each
builder below takes the site config and the runtime, hands its part only what that part uses
(clock, bus, state store, an alert callable, ...) and records the live objects others read in the
runtime's typed `services`. `COMPONENTS` is the daemon's default list of builders; on a reload the
daemon calls them all again and restarts only the components whose config key changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from controller.config.site import SiteConfig
from controller.config.views import site_buffer_dir, uploader_site
from controller.control_loop import ControlLoop, LoopIO
from controller.core.component import STOP_CONTROL, STOP_MARKET, ComponentSpec
from controller.core.httpclient import client_options
from controller.core.logs import get_logger
from controller.forecast.history import HistoryStore, history_path, read_rows
from controller.forecast.service import ForecastService, MeterIds
from controller.history_rebuild import rebuild_from_outbox
from controller.market.axle import AxleClient, TelemetrySource
from controller.market.modo import ModoClient
from controller.ops.provider import ops_components
from controller.planner.config import HttpPriceSource
from controller.planner.model import Plan
from controller.planner.prices import PriceFileError, agile_answer, read_prices
from controller.planner.runner import PlannerProcess
from controller.planner.service import KEEP as PLANNER_KEEP
from controller.planner.service import PlannerService, SiteView, solve_in_child
from controller.runtime import Runtime
from devices.scheduler import components as poller_components
from uploader.components import components as upload_components
from uploader.writer import OutboxService

Builder = Callable[[SiteConfig, Runtime], list[ComponentSpec]]
log = get_logger("wiring")


def devices(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    """One poller per device; drivers are (re)created here and kept in `services.devices`."""
    s = runtime.services
    return poller_components(config.devices, clock=runtime.clock, state=runtime.state, bus=runtime.bus,
                             alert=runtime.alert, health=runtime.health, links=s.links, live=s.devices)


def uploader(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    """The outbox writer (critical), one upload loop per sink, and the coverage check."""
    s = runtime.services
    if s.outbox is None:
        # Once per runtime: it listens on the bus from now on, so nothing published during a reload is missed.
        s.outbox = OutboxService(runtime.bus)
    # Looked up at each use: a reload (or a failed one, which restores the registry) may replace it.
    return upload_components(uploader_site(config), s.outbox, clock=runtime.clock, alert=runtime.alert,
                             beat=runtime.beat, devices=lambda: s.devices, counters=s.sinks)


def control_loop(config: SiteConfig, runtime: Runtime) -> ControlLoop:
    """The site's control loop (the site file must have a `controller:` block)."""
    assert config.controller is not None
    battery = config.controller.battery
    services = runtime.services
    io = LoopIO(battery=lambda: services.devices.get(battery), prices=lambda: services.modo,
                dispatch=lambda: services.axle,
                plan=lambda: None if services.planner is None else services.planner.current())
    return ControlLoop(config, clock=runtime.clock, state=runtime.state, bus=runtime.bus, overrides=runtime.overrides,
                       io=io, alert=runtime.alert, beat=runtime.beat, health=runtime.health)


def control(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    c = config.controller
    if c is None:
        return []
    key = (c, config.device(c.site_meter).id, config.device(c.battery).id)
    services = runtime.services

    async def run() -> None:
        loop = control_loop(config, runtime)
        services.control = loop
        try:
            await loop.run()
        finally:
            if services.control is loop:
                services.control = None

    return [ComponentSpec("control", key, run, critical=True, stop_order=STOP_CONTROL)]


def modo(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    modo_config = config.market.modo
    if modo_config is None:
        return []

    async def run() -> None:
        client = ModoClient(modo_config, runtime.clock)
        # Left in place when it stops: its last values stay usable (by their age) until a new one replaces it.
        runtime.services.modo = client
        runtime.health["modo"] = client.counts  # live counters
        await client.run()

    return [ComponentSpec("modo", modo_config, run, stop_order=STOP_MARKET)]


def axle_telemetry(site: SiteConfig) -> list[TelemetrySource]:
    """What Axle is told about the site: boundary power, the battery inverter's import, stored energy."""
    c = site.controller
    if c is None:
        return []
    out = [TelemetrySource("boundary_import_kw", site.device(c.site_meter).id, "power_total_active")]
    if c.battery_meter is not None:
        # The battery meter reads + for the battery's output; Axle wants the inverter's import (modes.md).
        out.append(TelemetrySource("battery_inverter_import_kw", site.device(c.battery_meter).id,
                                   "power_total_active", negate=True))
    out.append(TelemetrySource("battery_stored_energy_kwh", site.device(c.battery).id, "soe_kwh"))
    return out


def axle(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    axle_config = config.market.axle
    if axle_config is None:
        return []
    sources = axle_telemetry(config)

    async def run() -> None:
        client = AxleClient(axle_config, runtime.clock, runtime.state, sources)
        runtime.services.axle = client
        runtime.health["axle"] = client.counts  # live counters
        await client.run()

    return [ComponentSpec("axle", (axle_config, tuple(sources)), run, stop_order=STOP_MARKET)]


def forecast(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    """The local half-hour history and the forecasts refreshed from it at every settlement period,
    published on `bus.forecasts` (needs a `controller:` block: its meters say what to record)."""
    c = config.controller
    if c is None:
        return []
    ids = MeterIds(config.device(c.site_meter).id, config.device(c.battery).id,
                   config.device(c.battery_meter).id if c.battery_meter is not None else None)
    directory = site_buffer_dir(config)
    synchronous = config.buffer.synchronous
    # As far ahead as the planner looks, where there is one (48 periods otherwise).
    horizon = round(config.planner.horizon_h * 2) if config.planner is not None else 48

    async def run() -> None:
        missing = not history_path(directory).exists()
        store = HistoryStore.open(directory, synchronous=synchronous)
        if missing:
            await asyncio.to_thread(rebuild_from_outbox, store, directory, config, ids, runtime.clock.now())
        service = ForecastService(store, runtime.clock, runtime.bus, ids, horizon=horizon,
                                  publish=runtime.bus.forecasts.publish)
        runtime.services.forecast = service
        runtime.health["forecast"] = service.counts  # live counters
        try:
            await service.run()
        finally:
            if runtime.services.forecast is service:
                runtime.services.forecast = None
            store.close()

    return [ComponentSpec("forecast", (ids, str(directory), synchronous, horizon), run, stop_order=STOP_MARKET)]
def planner_view(config: SiteConfig, runtime: Runtime) -> SiteView:
    """What the planner reads of the running site: the SoE, the net load (site power + the setpoint in force),
    the Modo price and Axle's schedule."""
    c = config.controller
    assert c is not None
    state, services = runtime.state, runtime.services
    site_id, battery_id = config.device(c.site_meter).id, config.device(c.battery).id

    def soe() -> float | None:
        s = state.get(battery_id, "soe_kwh")
        return None if s is None else s.value

    def net_load() -> float | None:
        s = state.get(site_id, "power_total_active")
        loop = services.control
        setpoint = loop.commanded_kw if loop is not None and loop.commanded_kw is not None else 0.0
        return None if s is None else s.value + setpoint

    return SiteView(soe, net_load, price=lambda: None if services.modo is None else services.modo.price,
                    axle=lambda: () if services.axle is None else tuple(services.axle.schedule),
                    forecast=lambda: None if services.forecast is None else services.forecast.latest)


def publish_plan(runtime: Runtime, plan: Plan) -> None:
    """Every plan, as an event (to the outbox, the cloud's events and MQTT, as every event goes) carrying the
    `plan --json` body; `uploader.tables.map_plan` files that body in the plans table (migration 0004)."""
    body = plan.as_json()
    body["periods"] = [{k: p[k] for k in ("start", "battery_kw", "soe_end_kwh", "price_p_per_kwh", "net_load_kw")}
                       for p in body["periods"]]
    runtime.alert("plan_made", "info", f"plan {plan.plan_id}: {plan.status}, "
                  f"{plan.expected_value_gbp:.2f} GBP expected", plan=body)


async def price_feed(source: HttpPriceSource, service: PlannerService, runtime: Runtime) -> None:
    """Poll an Agile-style price feed; garbage or no answer keeps the prices already fetched (counted, alerted)."""
    failures = 0
    async with httpx.AsyncClient(timeout=source.timeout_s, **client_options()) as client:
        while True:
            try:
                response = await client.get(source.url)
                service.update_prices(agile_answer(response.status_code, response.text, source.url, source.value))
            except (httpx.HTTPError, PriceFileError) as exc:
                failures += 1
                service.counts["price_feed_failures"] = failures
                log.warning("price_feed_failed", error=str(exc), failures=failures)
                runtime.alert("price_feed_failed", "warning", f"price feed: {exc}", failures=failures)
            await runtime.clock.sleep(source.poll_interval_s)


def planner(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    """The planner (site file `planner:` block): re-plans in its child process; the `plan` mode tracks it."""
    c, p = config.controller, config.planner
    if c is None or p is None:
        return []
    services = runtime.services

    async def run() -> None:
        prices = None
        if p.price.type == "schedule":
            path = Path(p.price.path)
            try:
                prices = read_prices(path if path.is_absolute() else Path(runtime.site.path).parent / path)
            except PriceFileError as exc:  # no prices from the file: the planner says so in every plan
                runtime.alert("price_file_failed", "warning", str(exc))
                log.warning("price_file_failed", error=str(exc))
        if p.price.type == "http":
            prices = {}  # filled by the feed below
        process = PlannerProcess()
        service = PlannerService(p, c.limits(), clock=runtime.clock, view=planner_view(config, runtime),
                                 solve=lambda x, limit: solve_in_child(process, x, limit),
                                 import_rates=c.import_rates, export_rates=c.export_rates, prices=prices,
                                 alert=runtime.alert, publish=lambda plan: publish_plan(runtime, plan))
        now = runtime.clock.now()
        rows = await asyncio.to_thread(read_rows, site_buffer_dir(config), now - PLANNER_KEEP, now)
        seeded = service.seed((r.period_start, None if (e := r.net_load_kwh()) is None else e * 2.0,
                               r.imbalance_price_p_per_kwh) for r in rows)
        log.info("planner_seeded", periods=len(rows), priced=seeded)
        services.planner = service
        runtime.health["planner"] = service.health  # live
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(service.run())
                if isinstance(p.price, HttpPriceSource):
                    tg.create_task(price_feed(p.price, service, runtime))
        finally:
            if services.planner is service:
                services.planner = None
            process.close()

    return [ComponentSpec("planner", (p, c), run, stop_order=STOP_MARKET)]


COMPONENTS: tuple[Builder, ...] = (
    uploader,
    devices,
    control,
    modo,
    axle,
    forecast,
    planner,
    ops_components,
)
