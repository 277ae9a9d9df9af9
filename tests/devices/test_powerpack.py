"""PowerPack driver against the simulated battery over real sockets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.config import SiteConfig
from controller.core.clock import ManualClock
from devices.base import DeviceError
from devices.catalog import create_device
from devices.links import DeviceLinks
from devices.powerpack import registers as r
from devices.powerpack.driver import PowerPack
from simulator.config import FaultConfig
from simulator.modbus_devices import ModbusSite, PowerPackBank
from tests.helpers import free_port

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
BESS_ID = "7b0d0c6e-5d2a-4c43-9a57-000000000001"


def _site(port: int, **battery: Any) -> SiteConfig:
    entry = {"type": "powerpack", "name": "bess", "id": BESS_ID, "host": "127.0.0.1", "port": port,
             "unit_id": 3, "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000, "ramp_up_kw_per_s": 100,
             "ramp_down_kw_per_s": 50, "timeout_s": 1.0, "backoff_initial_s": 1.0, "backoff_max_s": 8.0,
             **battery}
    return SiteConfig.model_validate({
        "site": {"id": "t", "name": "t"}, "devices": [entry],
        "simulator": {"seed": 3, "site_model": {"initial_soe_kwh": 512.345}},
    })


def _driver(site: SiteConfig, clock: ManualClock) -> PowerPack:
    device = create_device(site.devices[0], clock, DeviceLinks())
    assert isinstance(device, PowerPack)
    return device


async def test_poll_reads_status_and_logs_config_block_once() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site(port)
    async with ModbusSite(site, clock) as sim:
        bess = _driver(site, clock)
        reading = await bess.poll(T0)
        assert reading.time == T0 and reading.device == "bess" and str(reading.device_id) == BESS_ID
        assert reading.fields == {"command_source": 0, "available_blocks": 2, "target_power_kw": 0.0,
                                  "soe_kwh": 512.345}
        assert bess.device_info["serial_number"] == "SIM-bess"
        assert bess.device_info["max_discharge_power_kw"] == 250.0
        assert bess.device_info["energy_kwh"] == 1000.0
        await bess.poll(T0)
        reads = sim.units["bess"].requests
        assert reads == 3  # status, config block, status: the config block is read once per connection
        await bess.close()


async def test_command_sequence_and_charge_bytes_on_the_wire() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site(port)
    async with ModbusSite(site, clock) as sim:
        bank = sim.bank("bess")
        assert isinstance(bank, PowerPackBank)
        bess = _driver(site, clock)
        await bess.write_setpoint(-150.0)
        # Ramp rates in W/s (100 kW/s = 0x000186A0, 50 kW/s = 0x0000C350), always-active, heartbeat,
        # -150 kW as two's complement 0xFFFDB610 high word first, then timeout and direct mode.
        assert bank.write_log == [
            (r.RAMP_UP_W_PER_S, [0x0001, 0x86A0]),
            (r.RAMP_DOWN_W_PER_S, [0x0000, 0xC350]),
            (r.ALWAYS_ACTIVE, [1]),
            (r.HEARTBEAT, [0xAA55]),
            (r.REAL_POWER_W, [0xFFFD, 0xB610]),
            (r.COMMAND_TIMEOUT_S, [10]),
            (r.REAL_POWER_MODE, [1]),
        ]
        bank.write_log.clear()
        await bess.write_setpoint(-150.0)
        await bess.write_setpoint(80.5)
        assert bank.write_log == [
            (r.HEARTBEAT, [0x55AA]), (r.REAL_POWER_W, [0xFFFD, 0xB610]),
            (r.HEARTBEAT, [0xAA55]), (r.REAL_POWER_W, [0x0001, 0x3A74]),
        ]
        await bess.close()


async def test_battery_follows_commands_then_idles_when_heartbeat_stops() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site(port, command_timeout_s=4)
    async with ModbusSite(site, clock) as sim:
        bess = _driver(site, clock)
        for _ in range(3):
            await bess.write_setpoint(-150.0)
            await clock.advance(2.0)
        reading = await bess.poll(clock.now())
        assert reading.fields["target_power_kw"] == -150.0
        assert reading.fields["command_source"] == 1
        soe = reading.number("soe_kwh")
        assert soe is not None and soe > 512.345
        await clock.advance(5.0)  # no heartbeat for longer than the 4 s command timeout
        reading = await bess.poll(clock.now())
        assert reading.fields["target_power_kw"] == 0.0
        assert sim.batteries["bess"].heartbeats_seen == 3
        await bess.close()


async def test_failed_write_is_raised_counted_and_retried_on_next_command() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site(port)
    async with ModbusSite(site, clock) as sim:
        bank = sim.bank("bess")
        assert isinstance(bank, PowerPackBank)
        bess = _driver(site, clock)
        sim.units["bess"].faults.config = FaultConfig(exception_probability=1.0)
        with pytest.raises(DeviceError, match="exception response"):
            await bess.write_setpoint(100.0)
        assert bess.health.extra["write_failures"] == 1
        assert bess.health.last_error is not None and "ramp_up" in bess.health.last_error
        assert bess.last_setpoint_kw is None
        sim.units["bess"].faults.config = FaultConfig()
        await bess.write_setpoint(100.0)
        # The whole once-per-connection setup is done on the retry, then the command.
        assert [a for a, _ in bank.write_log] == [r.RAMP_UP_W_PER_S, r.RAMP_DOWN_W_PER_S, r.ALWAYS_ACTIVE,
                                                  r.HEARTBEAT, r.REAL_POWER_W, r.COMMAND_TIMEOUT_S,
                                                  r.REAL_POWER_MODE]
        assert bess.last_setpoint_kw == 100.0
        await bess.close()


async def test_reconnects_after_the_simulator_restarts_and_redoes_connection_setup() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site(port)
    sim = ModbusSite(site, clock)
    await sim.start()
    bess = _driver(site, clock)
    await bess.write_setpoint(50.0)
    await bess.poll(T0)
    await sim.stop()
    with pytest.raises(DeviceError):
        await bess.poll(T0)
    with pytest.raises(DeviceError):
        await bess.write_setpoint(50.0)
    assert bess.health.extra["write_failures"] == 1
    await sim.start()
    try:
        await clock.advance(8.0)  # past the capped backoff
        reading = await bess.poll(clock.now())
        assert "soe_kwh" in reading.fields
        assert bess.conn.connection_id == 2
        bank = sim.bank("bess")
        assert isinstance(bank, PowerPackBank)
        bank.write_log.clear()
        await bess.write_setpoint(50.0)
        assert [a for a, _ in bank.write_log][:3] == [r.RAMP_UP_W_PER_S, r.RAMP_DOWN_W_PER_S, r.ALWAYS_ACTIVE]
    finally:
        await bess.close()
        await sim.stop()


async def test_refuses_non_finite_and_clamps_beyond_nameplate() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site(port)
    async with ModbusSite(site, clock) as sim:
        bank = sim.bank("bess")
        assert isinstance(bank, PowerPackBank)
        bess = _driver(site, clock)
        with pytest.raises(DeviceError, match="non-finite"):
            await bess.write_setpoint(float("nan"))
        await bess.write_setpoint(-900.0)
        assert (r.REAL_POWER_W, [0xFFFC, 0x2F70]) in bank.write_log  # -250000 W
        await bess.close()
