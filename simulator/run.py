"""`flux-edge simulate`: serve every simulated device, market API and cloud endpoint of a site file.

Each simulated subsystem is a provider listed in SIM_PROVIDERS: `async def serve(ctx: SimContext)`
that runs until cancelled and returns at once when the site file asks for nothing it serves.
Providers share state through `ctx.shared` (the physical site model is shared by the battery and
its meters). A new simulated device kind is its own module plus one entry here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from controller.config import SiteConfig
from controller.core.clock import Clock
from controller.core.logs import get_logger
from simulator import cloud, emlite, heat_modbus, market, mbus_gateway, modbus_devices
from simulator.context import SimContext

log = get_logger("simulator")

SimProvider = Callable[[SimContext], Awaitable[None]]

SIM_PROVIDERS: tuple[SimProvider, ...] = (
    cloud.serve,
    modbus_devices.serve,
    emlite.serve,
    mbus_gateway.serve,
    heat_modbus.serve,
    market.serve,
)


async def serve(site: SiteConfig, clock: Clock, stop: asyncio.Event,
                providers: list[SimProvider] | None = None) -> None:
    ctx = SimContext(site, clock)
    if providers is None:
        providers = list(SIM_PROVIDERS)
    tasks: list[asyncio.Future[None]] = [asyncio.ensure_future(p(ctx)) for p in providers]
    log.info("simulator_started", site=site.site.id, providers=len(tasks))
    stop_task: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        pending: set[asyncio.Future[Any]] = set(tasks)
        while not stop.is_set() and pending:
            done, pending = await asyncio.wait(pending | {stop_task}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stop_task)
            for t in done:
                if t is not stop_task and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        await stop.wait()
    finally:
        stop_task.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("simulator_stopped")
