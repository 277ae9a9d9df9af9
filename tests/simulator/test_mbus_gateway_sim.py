"""The M-Bus gateway simulator as `flux-edge simulate` runs it, and its own RSP_UD framing."""

from __future__ import annotations

import asyncio
import zlib

from controller.config import SiteConfig
from controller.core.clock import align_down
from devices.catalog import create_device
from devices.heat_mbus.records import decode_rsp_ud
from devices.links import DeviceLinks
from simulator import mbus_gateway
from simulator.context import SimContext
from simulator.mbus_gateway import SimulatedHeatMeter
from simulator.run import SIM_PROVIDERS, serve
from tests.devices.sim_sites import emlite_device, scaled_clock, site
from tests.helpers import free_port


def test_registered_as_a_simulator_provider() -> None:
    assert mbus_gateway.serve in SIM_PROVIDERS


def test_simulated_frame_decodes_to_its_own_state() -> None:
    clock = scaled_clock()
    meter = SimulatedHeatMeter("m", 9, zlib.crc32(b"m"))
    records = decode_rsp_ud(meter.rsp_ud(clock.now()))
    power, flow_c, return_c, flow = meter.state(clock.now())
    assert records.address == 9 and records.manufacturer == "KAM"
    assert records.fields["energy_kwh"] == int(meter.energy_kwh)
    assert abs(float(records.fields["power_kw"]) - power) < 0.001  # type: ignore[arg-type]
    assert abs(float(records.fields["flow_m3h"]) - flow) < 0.001  # type: ignore[arg-type]
    assert abs(float(records.fields["flow_temperature_c"]) - flow_c) < 0.01  # type: ignore[arg-type]
    assert abs(float(records.fields["return_temperature_c"]) - return_c) < 0.01  # type: ignore[arg-type]
    # Heat = flow x water heat capacity x temperature difference.
    assert abs(power - flow * mbus_gateway.WATER_KWH_PER_M3K * (flow_c - return_c)) < 1e-6


async def test_serve_from_site_and_read_through_create_device() -> None:
    port = free_port()
    devices = [{"type": "heat_mbus", "name": f"h{a}", "id": f"7b0d0c6e-5d2a-4c43-9a57-00000000020{a}",
                "host": "127.0.0.1", "port": port, "mbus_address": a} for a in (1, 2)]
    s: SiteConfig = site(devices)
    clock = scaled_clock()
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(s, clock, stop, providers=[mbus_gateway.serve]))
    try:
        links = DeviceLinks()
        meters = [create_device(d, clock, links) for d in s.devices]
        for _ in range(500):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        slot = align_down(clock.now(), 60)
        readings = await asyncio.gather(*(m.poll(slot) for m in meters))
        assert [r.device for r in readings] == ["h1", "h2"]
        assert all("energy_kwh" in r.fields for r in readings)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_returns_at_once_without_heat_mbus_devices() -> None:
    await asyncio.wait_for(mbus_gateway.serve(SimContext(site([emlite_device("e")]), scaled_clock())), 5)
