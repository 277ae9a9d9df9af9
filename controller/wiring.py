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

from controller.config.site import SiteConfig
from controller.config.views import site_buffer_dir, uploader_site
from controller.control_loop import ControlLoop, LoopIO
from controller.core.component import STOP_CONTROL, STOP_MARKET, ComponentSpec
from controller.forecast.history import HistoryStore, history_path
from controller.forecast.service import ForecastService, MeterIds
from controller.history_rebuild import rebuild_from_outbox
from controller.market.axle import AxleClient, TelemetrySource
from controller.market.modo import ModoClient
from controller.ops.provider import ops_components
from controller.runtime import Runtime
from devices.scheduler import components as poller_components
from uploader.components import components as upload_components
from uploader.writer import OutboxService

Builder = Callable[[SiteConfig, Runtime], list[ComponentSpec]]


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
                dispatch=lambda: services.axle)
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

    async def run() -> None:
        missing = not history_path(directory).exists()
        store = HistoryStore.open(directory, synchronous=synchronous)
        if missing:
            await asyncio.to_thread(rebuild_from_outbox, store, directory, config, ids, runtime.clock.now())
        service = ForecastService(store, runtime.clock, runtime.bus, ids, publish=runtime.bus.forecasts.publish)
        runtime.services.forecast = service
        runtime.health["forecast"] = service.counts  # live counters
        try:
            await service.run()
        finally:
            if runtime.services.forecast is service:
                runtime.services.forecast = None
            store.close()

    return [ComponentSpec("forecast", (ids, str(directory), synchronous), run, stop_order=STOP_MARKET)]


COMPONENTS: tuple[Builder, ...] = (
    uploader,
    devices,
    control,
    modo,
    axle,
    forecast,
    ops_components,
)
