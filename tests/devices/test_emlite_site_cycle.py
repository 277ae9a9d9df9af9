"""Acceptance: an HMCE-size site (54 Emlite meters on slow links, 6 heat meters) read in every minute.

Runs the real poll scheduler against the simulators over real TCP on a scaled clock: every meter
has a reading for every one-minute slot, and no slot is missed; meters that fail go down without
costing the others a slot.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.config import SiteConfig
from controller.core.bus import Bus
from controller.core.clock import ScaledClock
from controller.core.reading import Reading
from controller.core.state import StateStore
from devices.base import Device, HealthState
from devices.catalog import create_device
from devices.links import DeviceLinks
from devices.scheduler import DevicePoller
from simulator.context import SimContext
from simulator.emlite import EmliteSimulator
from simulator.heat_modbus import build_servers
from simulator.mbus_gateway import MbusGatewaySimulator
from tests.devices.sim_sites import emlite_device, site, unique_port

EMLITE_METERS = 54
SPEED = 12.0
FIRST_SLOT = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # evening peak
TWINS = {f"home-{i:02d}" for i in range(9, EMLITE_METERS + 1, 9)}


def hmce_devices() -> list[dict[str, Any]]:
    # As config/sites/hmce.yaml: three 4G routers (20, 20 and 14 meters), communal heat on one M-Bus gateway;
    # one heat meter here has a Modbus TCP module instead, so both routes run together.
    devices: list[dict[str, Any]] = [
        emlite_device(f"home-{i:02d}", twin_element=f"home-{i:02d}" in TWINS, link=f"4g-router-{(i - 1) // 20 + 1}")
        for i in range(1, EMLITE_METERS + 1)]
    gateway_port = unique_port()
    devices += [{"type": "heat_mbus", "name": f"heat-{a}", "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"heat-{a}")),
                 "host": "127.0.0.1", "port": gateway_port, "mbus_address": a} for a in range(1, 6)]
    devices += [{"type": "heat_modbus", "name": "heat-6", "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "heat-6")),
                 "host": "127.0.0.1", "port": unique_port(),
                 "registers": {"energy_kwh": {"address": 0, "data_type": "uint32"},
                               "power_kw": {"address": 2, "data_type": "uint32", "scale": 0.1}}}]
    return devices


def slow_links() -> dict[str, dict[str, Any]]:
    """4G links: 1 to 3 s per answer on every meter."""
    return {f"home-{i:02d}": {"latency_s": 1.0, "latency_jitter_s": 2.0} for i in range(1, EMLITE_METERS + 1)}


@dataclass
class SiteRun:
    devices: list[Device]
    recorded: list[Reading] = field(default_factory=list)
    emlite: EmliteSimulator | None = None

    def slots_of(self, name: str) -> set[datetime]:
        return {r.time for r in self.recorded if r.device == name}


async def run_site(s: SiteConfig, slots: int) -> SiteRun:
    """Simulators plus one scheduler poller per device, from just before FIRST_SLOT for `slots` minutes."""
    clock = ScaledClock(FIRST_SLOT - timedelta(seconds=2), SPEED)
    ctx = SimContext(s, clock)
    emlite = EmliteSimulator.from_site(ctx)
    await emlite.start({d.name: (d.host, d.port) for d in s.devices if d.name in emlite.servers})
    mbus = MbusGatewaySimulator.from_site(ctx)
    await mbus.start()
    modbus = build_servers(ctx)
    for server in modbus.values():
        await server.start()
    bus, state, links = Bus(), StateStore(), DeviceLinks()
    run = SiteRun([create_device(d, clock, links) for d in s.devices], emlite=emlite)
    bus.readings.on(run.recorded.append)
    pollers = [asyncio.ensure_future(DevicePoller(d, clock, state, bus).run()) for d in run.devices]
    try:
        await clock.sleep_until(FIRST_SLOT + timedelta(minutes=slots, seconds=1))
    finally:
        for p in pollers:
            p.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        await emlite.close()
        await mbus.close()
        for server in modbus.values():
            await server.stop()
    return run


@pytest.mark.slow
async def test_54_emlite_and_6_heat_meters_all_read_in_every_minute() -> None:
    slots = 3
    run = await run_site(site(hmce_devices(), slow_links()), slots)
    wanted = {FIRST_SLOT + timedelta(minutes=i) for i in range(slots)}
    missing = {d.config.name: sorted(wanted - run.slots_of(d.config.name)) for d in run.devices
               if not wanted <= run.slots_of(d.config.name)}
    assert missing == {}
    assert all(d.health.slots_missed == 0 and d.health.polls_failed == 0 for d in run.devices)
    # Every Emlite reading carries the minute's registers, power and balance; twins their B element.
    for r in run.recorded:
        if r.kind == "emlite":
            assert {"import_a_kwh", "power_kw", "balance_gbp"} <= set(r.fields)
            assert ("import_b_kwh" in r.fields) == (r.device in TWINS)
    assert run.emlite is not None and len(run.emlite.servers) == EMLITE_METERS
    assert sum(s.refused for s in run.emlite.servers.values()) == 0


@pytest.mark.slow
async def test_failing_meters_go_down_without_costing_the_others_a_slot() -> None:
    slots = 4
    devices = hmce_devices()
    # Two meters unplugged (nothing listens), two silent on a dead modem, one with a noisy line,
    # and a heat meter address nobody answers on the shared bus.
    unplugged, silent, noisy = {"home-05", "home-25"}, {"home-06", "home-41"}, "home-07"
    devices.append({"type": "heat_mbus", "name": "heat-9", "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "heat-9")),
                    "host": "127.0.0.1", "port": devices[EMLITE_METERS]["port"], "mbus_address": 9,
                    "timeout_s": 0.5})
    faults = slow_links()
    for name in silent:
        faults[name] = {"timeout_probability": 1.0}
    faults[noisy] = {"latency_s": 1.0, "garbage_probability": 0.3}
    # One silent meter times out within the minute; the other's 10 s timeouts (real seconds, so 2 minutes on
    # this clock) outlast its slot and the scheduler abandons the poll: both must end up paced down.
    for d in devices:
        if d["name"] == "home-06":
            d["timeout_s"] = 1.0
    s = site(devices, faults)
    served = [d.name for d in s.devices if d.name not in unplugged and d.name != "heat-9"]
    s = s.model_copy(update={"simulator": s.simulator.model_copy(update={"devices": served})})  # type: ignore[union-attr]
    run = await run_site(s, slots)
    wanted = {FIRST_SLOT + timedelta(minutes=i) for i in range(slots)}
    failing = unplugged | silent | {"heat-9", noisy}
    healthy = [d for d in run.devices if d.config.name not in failing]
    missing = {d.config.name: sorted(wanted - run.slots_of(d.config.name)) for d in healthy
               if not wanted <= run.slots_of(d.config.name)}
    assert missing == {}
    assert all(d.health.slots_missed == 0 for d in healthy)
    for d in run.devices:
        if d.config.name in unplugged | silent | {"heat-9"}:
            assert run.slots_of(d.config.name) == set()
            assert d.health.state == HealthState.DOWN
            assert d.health.extra.get("polls_skipped_down", 0) >= 1  # asked less often once down
    noisy_device = next(d for d in run.devices if d.config.name == noisy)
    assert noisy_device.health.extra.get("frame_crc", 0) >= 1  # counted, and mostly recovered by the retry
