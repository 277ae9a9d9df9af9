"""The simulated Modbus site as `flux-edge simulate` runs it: provider, physics log, fault knobs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.config import SiteConfig
from controller.core.clock import ManualClock
from devices.acuvim2.driver import Acuvim2
from devices.base import DeviceError
from devices.catalog import create_device
from devices.links import DeviceLinks
from devices.powerpack.driver import PowerPack
from simulator import modbus_devices
from simulator.config import FaultConfig
from simulator.context import SimContext
from simulator.modbus_devices import ModbusSite
from simulator.run import serve
from tests.helpers import eventually, free_port

T0 = datetime(2026, 6, 3, 17, 0, tzinfo=UTC)


def _site(bess_port: int, meter_port: int, **simulator: Any) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"id": "t", "name": "t"},
        "devices": [
            {"type": "powerpack", "name": "bess", "id": "7b0d0c6e-5d2a-4c43-9a57-000000000001", "host": "127.0.0.1",
             "port": bess_port, "nameplate_power_kw": 100, "nameplate_energy_kwh": 200, "ramp_up_kw_per_s": 20,
             "ramp_down_kw_per_s": 20, "timeout_s": 1.0, "command_timeout_s": 5},
            {"type": "acuvim2", "name": "site-meter", "id": "7b0d0c6e-5d2a-4c43-9a57-000000000002",
             "host": "127.0.0.1", "port": meter_port, "ct1": 800, "ct2": 5, "timeout_s": 1.0},
        ],
        "simulator": {"seed": 11, "site_model": {"initial_soe_kwh": 100}, **simulator},
    })


async def test_provider_serves_the_site_and_logs_every_physics_step(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    log_path = tmp_path / "physics.jsonl"
    monkeypatch.setenv("FLUX_SIM_PHYSICS_LOG", str(log_path))
    clock = ManualClock(T0)
    site = _site(free_port(), free_port())
    stop = asyncio.Event()
    ready: dict[str, Any] = {}

    async def provider(ctx: Any) -> None:
        ready["ctx"] = ctx
        await modbus_devices.serve(ctx)

    runner = asyncio.create_task(serve(site, clock, stop, providers=[provider]))
    await eventually(lambda: "ctx" in ready and ready["ctx"].ready("modbus").is_set())
    bess = create_device(site.devices[0], clock, DeviceLinks())
    meter = create_device(site.devices[1], clock, DeviceLinks())
    assert isinstance(bess, PowerPack) and isinstance(meter, Acuvim2)
    for _ in range(4):  # 8 s of commands, 2 s apart
        await bess.write_setpoint(80.0)
        await clock.advance(2.0)
    await clock.advance(10.0)  # silence: the 5 s command timeout idles the battery
    reading = await meter.poll(clock.now())
    assert "power_total_active" in reading.fields
    stop.set()
    await runner
    await bess.close()
    await meter.close()
    lines = [json.loads(x) for x in log_path.read_text().splitlines()]
    assert len(lines) == 18  # one per simulated second
    assert set(lines[0]) == {"time", "soe_kwh", "battery_kw", "setpoint_kw", "site_kw", "load_kw", "solar_kw"}
    assert [x["battery_kw"] for x in lines[:5]] == [20.0, 40.0, 60.0, 80.0, 80.0]  # the 20 kW/s ramp
    assert all(abs(x["battery_kw"]) <= 100 and 0 <= x["soe_kwh"] <= 200 for x in lines)
    assert lines[-1]["battery_kw"] == 0.0 and lines[-1]["setpoint_kw"] == 80.0
    for x in lines:
        assert x["site_kw"] == pytest.approx(x["load_kw"] - x["solar_kw"] - x["battery_kw"])
    assert lines[-1]["soe_kwh"] < 100


async def test_provider_returns_at_once_when_nothing_is_simulated() -> None:
    site = _site(free_port(), free_port(), devices=[])
    await asyncio.wait_for(modbus_devices.serve(SimContext(site, ManualClock(T0))), timeout=10)


@pytest.mark.parametrize(("knob", "error"), [
    ({"drop_probability": 1.0}, r"read at"),
    ({"timeout_probability": 1.0}, r"no response|timed out"),
    ({"exception_probability": 1.0}, r"exception response code 6"),
])
async def test_fault_knobs_fail_the_poll_and_never_crash(knob: dict[str, float], error: str) -> None:
    clock = ManualClock(T0)
    site = _site(free_port(), free_port(), faults={"site-meter": knob})
    async with ModbusSite(site, clock) as sim:
        meter = create_device(site.devices[1], clock, DeviceLinks())
        with pytest.raises(DeviceError, match=error):
            await meter.poll(T0)
        sim.units["site-meter"].faults.config = FaultConfig()
        await clock.advance(60.0)  # past the reconnect backoff
        reading = await meter.poll(clock.now())
        assert reading.fields["frequency"] == 50.0
        await meter.close()


async def test_same_seed_and_clock_give_the_same_registers() -> None:
    results = []
    for _ in range(2):
        clock = ManualClock(T0)
        site = _site(free_port(), free_port())
        async with ModbusSite(site, clock) as sim:
            bess = create_device(site.devices[0], clock, DeviceLinks())
            meter = create_device(site.devices[1], clock, DeviceLinks())
            await bess.write_setpoint(-50.0)
            await clock.advance(3.0)
            await bess.write_setpoint(-50.0)
            await clock.advance(30.0)
            results.append(((await meter.poll(T0)).fields, (await bess.poll(T0)).fields, sim.model.load_kw))
            await bess.close()
            await meter.close()
    assert results[0] == results[1]
