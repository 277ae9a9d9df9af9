"""The market stand-ins as `flux-edge simulate` starts them: from the site's simulator.modo / simulator.axle
blocks, with the site's Axle credentials, and the daemon's market components reading them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import yaml

from controller.config import LoadedSite, SiteConfig, parse_site
from controller.core.clock import ScaledClock
from controller.daemon import Daemon
from controller.market.axle import AxleClient
from controller.market.modo import ModoClient
from controller.wiring import axle as axle_provider
from controller.wiring import modo as modo_provider
from simulator.context import SimContext
from simulator.market import serve
from tests.helpers import eventually, free_port

T0 = datetime(2026, 6, 3, 16, 45, tzinfo=UTC)


def market_site(modo_port: int, axle_port: int) -> SiteConfig:
    doc: dict[str, Any] = {
        "site": {"id": "mkt", "name": "market"},
        "devices": [
            {"type": "powerpack", "name": "bess", "id": "00000000-0000-4000-8000-0000000000b1", "host": "127.0.0.1",
             "port": free_port(), "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000},
            {"type": "acuvim2", "name": "site-meter", "id": "00000000-0000-4000-8000-0000000000b2",
             "host": "127.0.0.1", "port": free_port()},
        ],
        "controller": {"site_meter": "site-meter", "battery": "bess", "soe_min_kwh": 50, "soe_max_kwh": 950,
                       "battery_charge_limit_kw": 250, "battery_discharge_limit_kw": 250,
                       "site_import_limit_kw": 300, "site_export_limit_kw": 350},
        "market": {"modo": {"base_url": f"http://127.0.0.1:{modo_port}", "poll_interval_s": 2},
                   "axle": {"base_url": f"http://127.0.0.1:{axle_port}", "asset_id": "a1", "username": "site",
                            "password": "s3cret-pw", "schedule_poll_interval_s": 1}},
        "simulator": {"modo": {"port": modo_port}, "axle": {"port": axle_port}},
    }
    return parse_site(yaml.safe_dump(doc), "<market>")


@contextlib.asynccontextmanager
async def simulated(site: SiteConfig, clock: ScaledClock) -> AsyncIterator[SimContext]:
    ctx = SimContext(site, clock)
    task = asyncio.create_task(serve(ctx))
    try:
        await asyncio.wait_for(ctx.ready("modo").wait(), 20)
        await asyncio.wait_for(ctx.ready("axle").wait(), 20)
        yield ctx
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_nothing_to_serve_returns_at_once() -> None:
    site = market_site(free_port(), free_port()).model_copy(update={"simulator": None})
    await asyncio.wait_for(serve(SimContext(site, ScaledClock(T0, 1))), 5)


async def test_daemon_market_components_read_the_stand_ins() -> None:
    site = market_site(free_port(), free_port())
    clock = ScaledClock(T0, speed=10)
    async with simulated(site, clock) as ctx:
        daemon = Daemon("<market>", clock, builders=[modo_provider, axle_provider])
        task = asyncio.create_task(daemon.run(LoadedSite(site, "<market>", "0")))
        try:
            await eventually(lambda: daemon.runtime is not None and daemon.runtime.services.modo is not None
                             and daemon.runtime.services.axle is not None, timeout=20)
            assert daemon.runtime is not None
            modo = daemon.runtime.services.modo
            axle = daemon.runtime.services.axle
            assert isinstance(modo, ModoClient) and isinstance(axle, AxleClient)
            await eventually(lambda: modo.price is not None and modo.volume is not None and axle.schedule != (),
                             timeout=30)
            assert modo.volume is not None and modo.volume.settlement_period <= clock.now()
            now = clock.now()
            assert any(s.covers(now) for s in axle.schedule)
            assert ctx.shared["axle"].tokens  # logged in with the site file's credentials
        finally:
            daemon.request_stop()
            await asyncio.wait_for(task, 30)
