"""Acceptance: an HMCE-size site (54 Emlite meters on slow links, 6 heat meters) read in every minute.

Runs the real poll scheduler against the simulators over real TCP on a scaled clock: every meter
has a reading for every one-minute slot, and no slot is missed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.bus import Bus
from controller.clock import ScaledClock
from controller.config import SiteConfig
from controller.state import StateStore
from devices.base import Reading
from devices.catalog import create_device
from devices.scheduler import DevicePoller
from simulator.emlite import EmliteSimulator
from simulator.heat_modbus import build_servers
from simulator.mbus_gateway import MbusGatewaySimulator
from simulator.run import SimContext
from tests.devices.sim_sites import emlite_device, site, unique_port

EMLITE_METERS = 54
SLOTS = 3
SPEED = 12.0


def hmce_site() -> SiteConfig:
    # As config/sites/hmce.yaml: three 4G routers (20, 20 and 14 meters), communal heat on one M-Bus gateway;
    # one heat meter here has a Modbus TCP module instead, so both routes run together.
    devices: list[dict[str, Any]] = [
        emlite_device(f"home-{i:02d}", twin_element=i % 9 == 0, link=f"4g-router-{(i - 1) // 20 + 1}")
        for i in range(1, EMLITE_METERS + 1)]
    gateway_port = unique_port()
    devices += [{"type": "heat_mbus", "name": f"heat-{a}", "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"heat-{a}")),
                 "host": "127.0.0.1", "port": gateway_port, "mbus_address": a} for a in range(1, 6)]
    devices += [{"type": "heat_modbus", "name": "heat-6", "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "heat-6")),
                 "host": "127.0.0.1", "port": unique_port(),
                 "registers": {"energy_kwh": {"address": 0, "data_type": "uint32"},
                               "power_kw": {"address": 2, "data_type": "uint32", "scale": 0.1}}}]
    # 4G links: 1 to 3 s per answer on every meter.
    faults = {f"home-{i:02d}": {"latency_s": 1.0, "latency_jitter_s": 2.0} for i in range(1, EMLITE_METERS + 1)}
    return site(devices, faults)


@pytest.mark.slow
async def test_54_emlite_and_6_heat_meters_all_read_in_every_minute() -> None:
    s = hmce_site()
    clock = ScaledClock(datetime(2026, 3, 2, 17, 59, 58, tzinfo=UTC), SPEED)  # evening peak
    ctx = SimContext(s, clock)
    emlite = EmliteSimulator.from_site(ctx)
    await emlite.start({d.name: (d.host, d.port) for d in s.devices if d.type == "emlite"})
    mbus = MbusGatewaySimulator.from_site(ctx)
    await mbus.start()
    modbus = build_servers(ctx)
    for server in modbus.values():
        await server.start()
    bus, state, shared = Bus(), StateStore(), {}
    recorded: list[Reading] = []
    bus.readings.on(recorded.append)
    devices = [create_device(d, clock, shared) for d in s.devices]
    pollers = [asyncio.ensure_future(DevicePoller(d, clock, state, bus).run()) for d in devices]
    first = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    try:
        await clock.sleep_until(first + timedelta(minutes=SLOTS, seconds=1))
    finally:
        for p in pollers:
            p.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        await emlite.close()
        await mbus.close()
        for server in modbus.values():
            await server.stop()
    slots = {first + timedelta(minutes=i) for i in range(SLOTS)}
    got: dict[str, set[datetime]] = {d.config.name: set() for d in devices}
    for r in recorded:
        got[r.device].add(r.time)
    missing = {name: sorted(slots - times) for name, times in got.items() if not slots <= times}
    assert missing == {}
    assert all(d.health.slots_missed == 0 and d.health.polls_failed == 0 for d in devices)
    # Every Emlite reading carries the minute's registers, power and balance; twins their B element.
    for r in recorded:
        if r.kind == "emlite":
            assert {"import_a_kwh", "power_kw", "balance_gbp"} <= set(r.fields)
            assert ("import_b_kwh" in r.fields) == (r.device in {f"home-{i:02d}" for i in range(9, 55, 9)})
    assert len(emlite.servers) == EMLITE_METERS and sum(s.refused for s in emlite.servers.values()) == 0
