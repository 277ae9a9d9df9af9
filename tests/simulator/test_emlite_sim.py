"""The EMOP meter simulator as `flux-edge simulate` runs it: from the site file, through SIM_PROVIDERS."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from controller.config import SiteConfig
from controller.core.clock import align_down
from devices.emlite.client import EmopClient
from devices.emlite.codec import ElementRegisters, ObjectId
from devices.emlite.config import EmliteConfig
from devices.links import DeviceLinks
from simulator import emlite
from simulator.run import SIM_PROVIDERS, serve
from tests.devices.sim_sites import emlite_device, scaled_clock, site


def test_registered_as_a_simulator_provider() -> None:
    assert emlite.serve in SIM_PROVIDERS


async def _run(site_config: SiteConfig, names: list[str], body: object) -> None:
    clock = scaled_clock()
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(site_config, clock, stop, providers=[emlite.serve]))
    try:
        await asyncio.wait_for(_wait_ports(site_config, names), 10)
        await body(clock)  # type: ignore[operator]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _wait_ports(site_config: SiteConfig, names: list[str]) -> None:
    for d in (site_config.device(n) for n in names):
        while True:
            try:
                _, w = await asyncio.open_connection(d.host, d.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            w.close()
            break


async def test_serves_only_the_simulated_emlite_meters() -> None:
    devices = [emlite_device("a"), emlite_device("b", twin_element=True), emlite_device("real")]
    doc_site = site(devices)
    simulated = doc_site.model_copy(update={"simulator": doc_site.simulator.model_copy(  # type: ignore[union-attr]
        update={"devices": ["a", "b"]})})

    async def body(clock: object) -> None:
        links = DeviceLinks()
        for d in simulated.devices[:2]:
            assert isinstance(d, EmliteConfig)
            client = EmopClient(d.host, d.port, clock=clock, link=links.emop_link(d.host, 4),  # type: ignore[arg-type]
                                meter=d.name)
            regs = await client.read_value(ObjectId.ELEMENT_A_REGISTERS)
            assert isinstance(regs, ElementRegisters) and regs.import_wh > 1_000_000
        real = simulated.device("real")
        try:
            _, w = await asyncio.open_connection(real.host, real.port)
        except ConnectionRefusedError:
            return
        w.close()
        raise AssertionError("a device outside simulator.devices was served")

    await _run(simulated, ["a", "b"], body)


async def test_returns_at_once_without_emlite_devices() -> None:
    doc = site([{"type": "heat_mbus", "name": "h", "id": "7b0d0c6e-5d2a-4c43-9a57-000000000201",
                 "host": "127.0.0.1", "port": 1, "mbus_address": 1}])
    from simulator.context import SimContext
    await asyncio.wait_for(emlite.serve(SimContext(doc, scaled_clock())), 5)


def test_profile_consistent_with_registers_across_half_hours() -> None:
    clock = scaled_clock()
    now = clock.now()
    meter = emlite.SimulatedMeter("m", twin=True, seed=99, origin=align_down(now - timedelta(days=2), 1800))
    t = align_down(now, 1800) - timedelta(hours=3)
    answer = meter.profile(1, t, now)
    assert len(answer.records) == 4
    for r in answer.records:
        a, b = meter.import_wh(r.timestamp)
        assert (r.import_a_wh, r.import_b_wh) == (int(a), int(b))  # type: ignore[union-attr]
    # The integral of the power over a half hour is the register difference.
    t1 = t + timedelta(minutes=30)
    hh = int((t - emlite.EPOCH_2000).total_seconds()) // 1800
    assert abs((meter.import_wh(t1)[0] - meter.import_wh(t)[0]) - meter.power_a_w(hh) / 2) < 1e-6


def test_prepay_balance_falls_with_use_and_is_topped_up() -> None:
    now = scaled_clock().now()
    meter = emlite.SimulatedMeter("m", twin=False, seed=5, origin=align_down(now - timedelta(days=30), 1800))
    times = [now - timedelta(hours=h) for h in range(24 * 30, 0, -1)]
    balances = [meter.balance_units(t) / 100_000 for t in times]
    assert all(emlite.TOP_UP_AT_GBP <= b < emlite.TOP_UP_AT_GBP + emlite.TOP_UP_GBP for b in balances)
    rises = [i for i in range(1, len(balances)) if balances[i] > balances[i - 1]]
    assert rises  # a month of use needs top-ups
    for i in rises:  # credit only ever rises by a top-up
        assert balances[i] - balances[i - 1] > emlite.TOP_UP_GBP / 2
