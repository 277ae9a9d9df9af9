"""Heat meters over Modbus TCP: register maps from the site file against the pymodbus simulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controller.config import SiteConfig
from controller.core.clock import align_down
from devices.base import DeviceError
from devices.catalog import create_device
from devices.heat_modbus.config import HeatModbusConfig, RegisterSpec
from devices.heat_modbus.driver import HeatModbusMeter, plan_reads
from devices.links import DeviceLinks
from simulator.context import SimContext
from simulator.heat_modbus import HeatModbusBank, build_servers
from simulator.modbus_server import ModbusSimServer
from tests.devices.sim_sites import scaled_clock, site
from tests.helpers import free_port

DEMO_MAP = {
    "energy_kwh": {"address": 0, "data_type": "uint32", "scale": 1},
    "volume_m3": {"address": 2, "data_type": "uint32", "scale": 0.01},
    "power_kw": {"address": 4, "data_type": "uint32", "scale": 0.1},
    "flow_m3h": {"address": 6, "data_type": "uint32", "scale": 0.001},
    "flow_temperature_c": {"address": 8, "data_type": "int16", "scale": 0.01},
    "return_temperature_c": {"address": 9, "data_type": "int16", "scale": 0.01},
}
# Another module: floats with the low word first, spread over two blocks, error flags as a plain word.
FLOAT_MAP = {
    "energy_kwh": {"address": 100, "data_type": "float64", "word_order": "little"},
    "power_kw": {"address": 104, "data_type": "float32", "word_order": "little"},
    "temperature_difference_k": {"address": 106, "data_type": "float32", "word_order": "little"},
    "error_flags": {"address": 300, "data_type": "uint16"},
}


def heat_device(name: str, registers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "heat_modbus", "name": name, "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            "host": "127.0.0.1", "port": free_port(), "registers": registers, **extra}


def test_register_map_is_read_in_as_few_requests_as_possible() -> None:
    specs = {k: RegisterSpec.model_validate(v) for k, v in DEMO_MAP.items()}
    (span,) = plan_reads(specs.items())
    assert (span.start, span.count, len(span.fields)) == (0, 10, 6)
    floats = {k: RegisterSpec.model_validate(v) for k, v in FLOAT_MAP.items()}
    assert [(s.start, s.count) for s in plan_reads(floats.items())] == [(100, 8), (300, 1)]


class Rig:
    def __init__(self, site_config: SiteConfig, servers: dict[tuple[str, int], ModbusSimServer]) -> None:
        self.site = site_config
        self.servers = servers
        self.clock = scaled_clock()

    def bank(self, name: str) -> HeatModbusBank:
        config = self.site.device(name)
        assert isinstance(config, HeatModbusConfig)
        bank = self.servers[(config.host, config.port)].units[config.unit_id].bank
        assert isinstance(bank, HeatModbusBank)
        return bank


async def start(devices: list[dict[str, Any]], faults: dict[str, dict[str, Any]] | None = None) -> Rig:
    s = site(devices, faults)
    clock = scaled_clock()
    servers = build_servers(SimContext(s, clock))
    rig = Rig(s, servers)
    rig.clock = clock
    for server in servers.values():
        await server.start()
    return rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await start([heat_device("plant", DEMO_MAP), heat_device("block", FLOAT_MAP, unit_id=3)])
    yield r
    for server in r.servers.values():
        await server.stop()


async def test_demo_register_map_reads_the_simulated_meter(rig: Rig) -> None:
    meter = create_device(rig.site.device("plant"), rig.clock, DeviceLinks())
    assert isinstance(meter, HeatModbusMeter)
    try:
        reading = await meter.poll(align_down(rig.clock.now(), 60))
        expected = rig.bank("plant").values(rig.clock.now())
        f = reading.fields
        assert set(f) == set(DEMO_MAP)
        # Integer registers of the demo module truncate to their scale's resolution.
        assert 0 <= expected["energy_kwh"] - float(f["energy_kwh"]) < 1.01  # type: ignore[arg-type]
        assert 0 <= expected["volume_m3"] - float(f["volume_m3"]) < 0.0101  # type: ignore[arg-type]
        assert abs(expected["flow_temperature_c"] - float(f["flow_temperature_c"])) < 0.011  # type: ignore[arg-type]
        assert f["volume_m3"] == round(float(f["volume_m3"]), 2)  # type: ignore[arg-type]
    finally:
        await meter.close()


async def test_float_map_with_low_word_first(rig: Rig) -> None:
    meter = create_device(rig.site.device("block"), rig.clock, DeviceLinks())
    try:
        reading = await meter.poll(align_down(rig.clock.now(), 60))
        expected = rig.bank("block").values(rig.clock.now())
        assert abs(expected["energy_kwh"] - float(reading.fields["energy_kwh"])) < 0.01  # type: ignore[arg-type]
        assert abs(expected["power_kw"] - float(reading.fields["power_kw"])) < 0.01  # type: ignore[arg-type]
        assert reading.fields["error_flags"] == 0
    finally:
        await meter.close()


async def test_registers_refresh_once_a_minute(rig: Rig) -> None:
    meter = create_device(rig.site.device("block"), rig.clock, DeviceLinks())
    try:
        first = await meter.poll(align_down(rig.clock.now(), 60))
        second = await meter.poll(align_down(rig.clock.now(), 60))
        if align_down(rig.clock.now(), 60) == first.time:
            assert first.fields == second.fields
    finally:
        await meter.close()


async def test_garbage_values_are_rejected_or_fail_never_pass_as_numbers() -> None:
    r = await start([heat_device("noisy", FLOAT_MAP)], faults={"noisy": {"garbage_probability": 1.0}})
    try:
        config = r.site.device("noisy")
        assert isinstance(config, HeatModbusConfig)
        meter = HeatModbusMeter(config, r.clock)
        for _ in range(5):
            try:
                reading = await meter.poll(align_down(r.clock.now(), 60))
            except DeviceError:
                continue
            for name, value in reading.fields.items():
                assert isinstance(value, int | float) and value == value  # NaN is never equal to itself
                if name in ("energy_kwh", "error_flags"):
                    assert float(value) >= 0
        assert meter.health.fields_rejected > 0
        await meter.close()
    finally:
        for server in r.servers.values():
            await server.stop()


async def test_no_server_is_a_device_error() -> None:
    s = site([heat_device("gone", DEMO_MAP)])
    config = s.device("gone")
    assert isinstance(config, HeatModbusConfig)
    meter = HeatModbusMeter(config, scaled_clock())
    with pytest.raises(DeviceError):
        await meter.poll(align_down(scaled_clock().now(), 60))
    await meter.close()


def test_simulator_provider_registered() -> None:
    from simulator import heat_modbus
    from simulator.run import SIM_PROVIDERS
    assert heat_modbus.serve in SIM_PROVIDERS
