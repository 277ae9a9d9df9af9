"""`flux-edge simulate`: serve every simulated device, market API and cloud endpoint of a site file.

Each simulated subsystem registers a provider in SIM_PROVIDERS ("module:function"); a provider is
`async def serve(ctx: SimContext) -> None` that runs until cancelled and returns at once when the
site file asks for nothing it serves. Providers share state through `ctx.shared` (the physical
site model is shared by the battery and its meters).
"""

from __future__ import annotations

import asyncio
import importlib
import random
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controller.config import SiteConfig
from controller.core.clock import Clock
from controller.core.logs import get_logger
from simulator.config import SimulatorConfig

log = get_logger("simulator")

SimProvider = Callable[["SimContext"], Awaitable[None]]

SIM_PROVIDERS: list[str] = [
    "simulator.cloud:serve",
    "simulator.modbus_devices:serve",
    "simulator.emlite:serve",
    "simulator.mbus_gateway:serve",
    "simulator.heat_modbus:serve",
    "simulator.market:serve",
]


@dataclass
class SimContext:
    site: SiteConfig
    clock: Clock
    shared: dict[str, Any] = field(default_factory=dict)
    started: dict[str, asyncio.Event] = field(default_factory=dict)

    @property
    def sim(self) -> SimulatorConfig:
        return self.site.simulator or SimulatorConfig()

    def rng(self, name: str) -> random.Random:
        """A random stream of its own per name: deterministic for the site's seed."""
        return random.Random((self.sim.seed << 32) ^ zlib.crc32(name.encode()))

    def simulated(self, device_name: str) -> bool:
        names = self.sim.devices
        return names is None or device_name in names

    def ready(self, name: str) -> asyncio.Event:
        return self.started.setdefault(name, asyncio.Event())


async def serve(site: SiteConfig, clock: Clock, stop: asyncio.Event,
                providers: list[SimProvider] | None = None) -> None:
    ctx = SimContext(site, clock)
    if providers is None:
        providers = []
        for ref in SIM_PROVIDERS:
            module, _, attr = ref.partition(":")
            providers.append(getattr(importlib.import_module(module), attr))
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
