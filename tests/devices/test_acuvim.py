"""Acuvim II driver over real sockets: known register contents, the simulated site, and bad values."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.config import SiteConfig
from controller.core.clock import ManualClock
from devices.acuvim2 import registers as r
from devices.acuvim2.driver import Acuvim2
from devices.base import DeviceError
from devices.catalog import create_device
from devices.links import DeviceLinks
from devices.modbus import encode
from simulator.config import FaultConfig
from simulator.modbus_devices import ModbusSite
from simulator.modbus_server import Faults, ModbusSimServer, RegisterBank, SimUnit
from tests.helpers import free_port

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
METER = {"type": "acuvim2", "name": "site-meter", "id": "7b0d0c6e-5d2a-4c43-9a57-000000000002",
         "host": "127.0.0.1", "timeout_s": 1.0}


def _site(devices: list[dict[str, Any]], **simulator: Any) -> SiteConfig:
    return SiteConfig.model_validate({"site": {"id": "t", "name": "t"}, "devices": devices,
                                      "simulator": {"seed": 5, **simulator}})


def _meter(site: SiteConfig, clock: ManualClock, index: int = 0) -> Acuvim2:
    device = create_device(site.devices[index], clock, DeviceLinks())
    assert isinstance(device, Acuvim2)
    return device


def _bank() -> RegisterBank:
    return RegisterBank([(r.FLOAT_START, r.FLOAT_COUNT), (r.ENERGY_START, r.ENERGY_COUNT),
                         (r.PHASE_ENERGY_START, r.PHASE_ENERGY_COUNT)])


# Secondary-side raw values written to the registers, and the primary-side values expected back with
# PT 11000/110 (x100) and CT 800/5 (x160): powers x 100 x 160 / 1000 = x16 to kW.
RAW_AND_EXPECTED: dict[str, tuple[float, float]] = {
    "frequency": (50.0, 50.0),
    "voltage_line_average": (110.0, 11000.0),
    "current_phase_a": (2.5, 400.0),
    "current_phase_b": (2.0, 320.0),
    "current_phase_c": (1.5, 240.0),
    "current_phase_average": (2.0, 320.0),
    "power_phase_a_active": (250.0, 4000.0),
    "power_phase_b_active": (-125.0, -2000.0),
    "power_phase_c_active": (62.5, 1000.0),
    "power_total_active": (187.5, 3000.0),
    "power_total_reactive": (-31.25, -500.0),
    "power_total_apparent": (200.0, 3200.0),
    "power_factor_total": (-0.9375, -0.9375),
}
ENERGY_COUNTS = {name: 12345 + 1000 * i for i, name in enumerate(r.ENERGY_FIELDS)}


async def test_every_field_round_trips_with_scaling_and_word_order() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site([{**METER, "port": port, "unit_id": 7, "pt1": 11000, "pt2": 110, "ct1": 800, "ct2": 5}])
    bank = _bank()
    for name, (address, _) in r.FLOAT_FIELDS.items():
        bank.set(address, encode(RAW_AND_EXPECTED[name][0], "float32"))
    for name, address in r.ENERGY_FIELDS.items():
        bank.set(address, encode(ENERGY_COUNTS[name], "int32"))
    # Word order pinned by hand: 50.0 Hz is 0x42480000, high word first; 12345 counts is 0x00003039.
    assert [bank.registers[12288], bank.registers[12289]] == [0x4248, 0x0000]
    assert [bank.registers[16456], bank.registers[16457]] == [0x0000, 0x3039]
    unit = SimUnit("site-meter", bank, Faults(None, random.Random(1)))
    async with ModbusSimServer("127.0.0.1", port, clock, {7: unit}):
        meter = _meter(site, clock)
        reading = await meter.poll(T0)
        await meter.close()
    expected: dict[str, float] = {name: exp for name, (_, exp) in RAW_AND_EXPECTED.items()}
    expected.update({name: round(count * 0.1, 1) for name, count in ENERGY_COUNTS.items()})
    assert set(reading.fields) == set(expected)
    for name, value in expected.items():
        assert reading.fields[name] == pytest.approx(value, rel=1e-6), name
    assert reading.fields["energy_imported_active"] == 1234.5
    assert meter.health.fields_rejected == 0


async def test_nan_absurd_and_negative_values_are_dropped_and_counted() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site([{**METER, "port": port, "ct1": 800, "ct2": 5}])
    bank = _bank()
    for name, (address, _) in r.FLOAT_FIELDS.items():
        bank.set(address, encode(RAW_AND_EXPECTED[name][0], "float32"))
    for name, address in r.ENERGY_FIELDS.items():
        bank.set(address, encode(ENERGY_COUNTS[name], "int32"))
    bank.set(12288, [0x7FC0, 0x0000])  # NaN frequency
    bank.set(12322, encode(1e30, "float32"))  # absurd total power
    bank.set(12316, [0x7F80, 0x0000])  # +inf phase A power
    bank.set(12306, encode(-3.0, "float32"))  # negative current
    bank.set(16458, encode(-5, "int32"))  # negative exported energy
    unit = SimUnit("site-meter", bank, Faults(None, random.Random(1)))
    async with ModbusSimServer("127.0.0.1", port, clock, {1: unit}):
        meter = _meter(site, clock)
        reading = await meter.poll(T0)
        await meter.close()
    dropped = {"frequency", "power_total_active", "power_phase_a_active", "current_phase_a", "energy_exported_active"}
    assert dropped.isdisjoint(reading.fields)
    assert meter.health.fields_rejected == len(dropped)
    assert reading.fields["energy_imported_active"] == 1234.5
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in reading.fields.values())


async def test_simulated_site_meter_is_consistent_and_integrates() -> None:
    ports = [free_port(), free_port()]
    clock = ManualClock(T0)
    devices = [
        {"type": "powerpack", "name": "bess", "id": "7b0d0c6e-5d2a-4c43-9a57-000000000001", "host": "127.0.0.1",
         "port": ports[0], "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000},
        {**METER, "port": ports[1], "ct1": 800, "ct2": 5},
        {**METER, "name": "bess-meter", "id": "7b0d0c6e-5d2a-4c43-9a57-000000000003", "port": ports[1],
         "unit_id": 2, "ct1": 600, "ct2": 5},
    ]
    site = SiteConfig.model_validate({
        "site": {"id": "t", "name": "t"}, "devices": devices, "simulator": {"seed": 5},
        "controller": {"site_meter": "site-meter", "battery": "bess", "battery_meter": "bess-meter",
                       "soe_min_kwh": 50, "soe_max_kwh": 950, "battery_charge_limit_kw": 250,
                       "battery_discharge_limit_kw": 250, "site_import_limit_kw": 300,
                       "site_export_limit_kw": 300}})
    async with ModbusSite(site, clock) as sim:
        assert len(sim.servers) == 2  # both meters behind one port, by unit id
        battery = sim.batteries["bess"]
        battery.real_power_mode = 1
        battery.command_timeout_s = 600
        battery.write_heartbeat(0xAA55, sim.model.t)
        battery.write_setpoint(60.0)
        await clock.advance(120.0)
        site_meter, bess_meter = _meter(site, clock, 1), _meter(site, clock, 2)
        first = await site_meter.poll(clock.now())
        b = await bess_meter.poll(clock.now())
        model = sim.model
        expected_site = model.load_kw - model.solar_kw - battery.power_kw
        assert first.fields["power_total_active"] == pytest.approx(expected_site, rel=1e-5, abs=1e-3)
        assert b.fields["power_total_active"] == pytest.approx(60.0, rel=1e-5)
        phases = sum(float(first.fields[f"power_phase_{p}_active"]) for p in "abc")  # type: ignore[arg-type]
        assert phases == pytest.approx(float(first.fields["power_total_active"]), rel=1e-4)  # type: ignore[arg-type]
        await clock.advance(600.0)
        later = await site_meter.poll(clock.now())
        def delta(name: str) -> float:
            return float(later.fields[name]) - float(first.fields[name])  # type: ignore[arg-type]

        net_kwh = delta("energy_imported_active") - delta("energy_exported_active")
        # Ten minutes at roughly the first power reading; the 0.1 kWh register steps bound the error.
        assert net_kwh == pytest.approx(expected_site * 600 / 3600, abs=0.2 + abs(expected_site) * 0.05)
        assert abs(net_kwh) > 0.5
        await site_meter.close()
        await bess_meter.close()


async def test_energy_counters_are_read_once_per_telemetry_slot_by_its_first_poll_that_answers() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site([{**METER, "port": port, "ct1": 800, "ct2": 5, "poll_interval_s": 20}])
    bank = _bank()
    for name, (address, _) in r.FLOAT_FIELDS.items():
        bank.set(address, encode(RAW_AND_EXPECTED[name][0], "float32"))
    for name, address in r.ENERGY_FIELDS.items():
        bank.set(address, encode(ENERGY_COUNTS[name], "int32"))
    unit = SimUnit("site-meter", bank, Faults(None, random.Random(1)))
    has_energy: list[bool] = []
    async with ModbusSimServer("127.0.0.1", port, clock, {1: unit}):
        meter = _meter(site, clock)
        for k in range(6):  # 12:00:00 .. 12:01:40, every 20 s; the 12:01:00 poll fails
            slot = T0 + timedelta(seconds=20 * k)
            unit.faults.config = FaultConfig(exception_probability=1.0 if k == 3 else 0.0)
            try:
                reading = await meter.poll(slot)
            except DeviceError:
                has_energy.append(False)
                continue
            assert "power_total_active" in reading.fields
            has_energy.append(set(r.ENERGY_FIELDS) <= set(reading.fields))
        await meter.close()
    assert has_energy == [True, False, False, False, True, False]


async def test_garbage_answers_never_reach_the_reading_as_non_numbers() -> None:
    port = free_port()
    clock = ManualClock(T0)
    site = _site([{**METER, "port": port, "ct1": 800, "ct2": 5}],
                 faults={"site-meter": {"garbage_probability": 1.0}})
    async with ModbusSite(site, clock) as sim:
        meter = _meter(site, clock)
        for _ in range(5):
            reading = await meter.poll(clock.now())
            assert all(isinstance(v, int | float) and math.isfinite(v) for v in reading.fields.values())
        assert meter.health.fields_rejected > 0
        # Five polls of one telemetry slot: the first reads all three blocks, the others the instantaneous one.
        assert sim.units["site-meter"].faults.counts["garbage"] == 7
        sim.units["site-meter"].faults.config = FaultConfig()
        await meter.close()


def test_a_total_the_phases_do_not_add_up_to_is_rejected() -> None:
    """A corrupted answer with a plausible total (a few kW while the site imports hundreds) never stands."""
    from controller.core.clock import RealClock
    from devices.acuvim2.config import Acuvim2Config
    from devices.acuvim2.driver import Acuvim2

    meter = Acuvim2(Acuvim2Config(type="acuvim2", name="m", id="00000000-0000-4000-8000-0000000000c1",
                                  host="127.0.0.1"), RealClock())
    good: dict[str, float | int] = {"power_phase_a_active": 36.0, "power_phase_b_active": 33.0,
                                    "power_phase_c_active": 31.0, "power_total_active": 100.0}
    meter._check_phases(good)
    assert good["power_total_active"] == 100.0
    bad: dict[str, float | int] = {"power_phase_a_active": 1e-3, "power_phase_b_active": 120.0,
                                   "power_phase_c_active": -7.0, "power_total_active": 1.0, "frequency": 50.0}
    meter._check_phases(bad)
    assert bad == {"frequency": 50.0}
    partial: dict[str, float | int] = {"power_phase_a_active": 36.0, "power_total_active": 1.0}
    meter._check_phases(partial)
    assert "power_total_active" not in partial
    assert meter.health.fields_rejected == 2
