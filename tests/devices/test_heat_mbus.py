"""Heat meters on M-Bus: recorded RSP_UD frames with known values, and the shared gateway over real TCP."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.config import SiteConfig
from controller.core.clock import ScaledClock, align_down
from devices.base import DeviceError
from devices.heat_mbus.config import HeatMbusConfig
from devices.heat_mbus.driver import HeatMbusMeter
from devices.heat_mbus.gateway import MbusTimeout
from devices.heat_mbus.records import MbusDecodeError, decode_rsp_ud, short_frame
from devices.links import DeviceLinks
from simulator.context import SimContext
from simulator.mbus_gateway import MbusGatewaySimulator
from tests.devices.sim_sites import scaled_clock, site
from tests.helpers import free_port

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> bytes:
    """A documented frame file: hex bytes, each line's '#' comment says what they are."""
    lines = (line.split("#", 1)[0] for line in (DATA / name).read_text().splitlines())
    return bytes.fromhex("".join(lines))


def test_binary_records_of_a_multical_style_frame() -> None:
    records = decode_rsp_ud(recorded("mbus_kamstrup_rsp_ud.txt"))
    assert (records.address, records.identification, records.manufacturer) == (5, "12345678", "KAM")
    assert records.fields == {
        "energy_kwh": 12345.0, "volume_m3": 4567.89, "power_kw": 15.3, "flow_m3h": 1.234,
        "flow_temperature_c": 70.25, "return_temperature_c": 45.12, "temperature_difference_k": 25.13,
        "error_flags": 0,
    }
    assert records.skipped == 2  # the date/time record and the billing-date (storage 1) energy


def test_bcd_records_energy_in_joules_tariffs_and_maxima_skipped() -> None:
    records = decode_rsp_ud(recorded("mbus_bcd_rsp_ud.txt"))
    assert (records.address, records.identification, records.manufacturer) == (17, "87654321", "SEN")
    assert records.fields == {
        "energy_kwh": 156503.333, "volume_m3": 456.789, "power_kw": 15.3, "flow_m3h": 1.234,
        "flow_temperature_c": 70.3, "return_temperature_c": 45.1, "temperature_difference_k": 25.2,
        "error_flags": 4,
    }
    assert records.skipped == 2  # tariff 1 energy, maximum power


def test_values_are_plain_rounded_numbers() -> None:
    for value in decode_rsp_ud(recorded("mbus_kamstrup_rsp_ud.txt")).fields.values():
        assert type(value) in (float, int)


@pytest.mark.parametrize("damage", ["truncate", "not_rsp_ud"])
def test_damaged_frames_raise_decode_error(damage: str) -> None:
    raw = recorded("mbus_kamstrup_rsp_ud.txt")
    bad = raw[:30] if damage == "truncate" else short_frame(0x5B, 5)
    with pytest.raises(MbusDecodeError):
        decode_rsp_ud(bad)


def test_importing_pymeterbus_left_the_root_logger_alone() -> None:
    root = logging.getLogger()
    assert not any(type(h) is logging.StreamHandler and getattr(h.stream, "name", None) == "<stderr>"
                   for h in root.handlers)


def test_short_frames() -> None:
    assert short_frame(0x5B, 5) == bytes.fromhex("10 5B 05 60 16")
    assert short_frame(0x40, 0xFE) == bytes.fromhex("10 40 FE 3E 16")


# --- over TCP, against the gateway simulator -------------------------------------------------------

def heat_device(name: str, port: int, address: int, **extra: Any) -> dict[str, Any]:
    return {"type": "heat_mbus", "name": name, "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            "host": "127.0.0.1", "port": port, "mbus_address": address, **extra}


@dataclass
class Rig:
    clock: ScaledClock
    site: SiteConfig
    sim: MbusGatewaySimulator
    links: DeviceLinks

    def meter(self, name: str, **changes: Any) -> HeatMbusMeter:
        config = self.site.device(name)
        assert isinstance(config, HeatMbusConfig)
        return HeatMbusMeter(config.model_copy(update=changes), self.clock, self.links)


async def make_rig(faults: dict[str, dict[str, Any]] | None = None, speed: float = 100.0) -> Rig:
    port = free_port()
    s = site([heat_device("h1", port, 1), heat_device("h2", port, 2), heat_device("h3", port, 3)], faults)
    clock = scaled_clock(speed)
    sim = MbusGatewaySimulator.from_site(SimContext(s, clock))
    await sim.start()
    return Rig(clock, s, sim, DeviceLinks())


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await make_rig()
    yield r
    await r.sim.close()


async def test_meters_share_one_gateway_connection(rig: Rig) -> None:
    meters = [rig.meter(n) for n in ("h1", "h2", "h3")]
    slot = align_down(rig.clock.now(), 60)
    readings = await asyncio.gather(*(m.poll(slot) for m in meters))
    (gateway,) = rig.sim.gateways.values()
    assert gateway.connections == 1 and gateway.answers == 3
    for m, r in zip(meters, readings, strict=True):
        assert r.device == m.config.name and r.time == slot and r.kind == "heat_mbus"
        sim_meter = gateway.meters[m.config.mbus_address]
        assert r.fields["energy_kwh"] == int(sim_meter.energy_kwh)
        assert set(r.fields) == {"energy_kwh", "volume_m3", "power_kw", "flow_m3h", "flow_temperature_c",
                                 "return_temperature_c", "temperature_difference_k", "error_flags"}
        flow, ret = float(r.fields["flow_temperature_c"]), float(r.fields["return_temperature_c"])  # type: ignore[arg-type]
        assert abs(flow - ret - float(r.fields["temperature_difference_k"])) < 0.02  # type: ignore[arg-type]
    assert meters[0].gateway is meters[1].gateway is rig.links.mbus_gateway("127.0.0.1", meters[0].config.port)


async def test_registers_advance_between_polls() -> None:
    rig = await make_rig(speed=100_000)
    try:
        m = rig.meter("h1")
        first = await m.poll(align_down(rig.clock.now(), 60))
        await rig.clock.sleep(7200)
        second = await m.poll(align_down(rig.clock.now(), 60))
        assert float(second.fields["energy_kwh"]) > float(first.fields["energy_kwh"])  # type: ignore[arg-type]
        assert float(second.fields["volume_m3"]) > float(first.fields["volume_m3"])  # type: ignore[arg-type]
    finally:
        await rig.sim.close()


async def test_sleeping_meter_is_woken_with_snd_nke() -> None:
    r = await make_rig({"h2": {"timeout_probability": 1.0}})
    try:
        m = r.meter("h2", timeout_s=0.5)
        reading = await m.poll(align_down(r.clock.now(), 60))
        assert "energy_kwh" in reading.fields
        assert m.gateway.counters["wake_ups"] == 1 and m.gateway.counters["timeouts"] == 1
    finally:
        await r.sim.close()


async def test_late_answer_from_another_meter_is_not_taken() -> None:
    r = await make_rig({"h1": {"exception_probability": 1.0}})
    try:
        m = r.meter("h1")
        reading = await m.poll(align_down(r.clock.now(), 60))
        (gateway,) = r.sim.gateways.values()
        assert reading.fields["energy_kwh"] == int(gateway.meters[1].energy_kwh)
        assert m.gateway.counters["foreign_answers"] == 1
    finally:
        await r.sim.close()


async def test_bad_checksum_fails_the_poll_and_the_next_poll_reconnects() -> None:
    r = await make_rig({"h3": {"garbage_probability": 1.0}})
    try:
        bad, good = r.meter("h3"), r.meter("h1")
        with pytest.raises(DeviceError, match="checksum"):
            await bad.poll(align_down(r.clock.now(), 60))
        assert bad.gateway.counters["checksum_errors"] == 1
        assert "energy_kwh" in (await good.poll(align_down(r.clock.now(), 60))).fields
        (gateway,) = r.sim.gateways.values()
        assert gateway.connections == 2
    finally:
        await r.sim.close()


async def test_absent_address_times_out_after_one_wake_up(rig: Rig) -> None:
    m = rig.meter("h1", mbus_address=42, timeout_s=0.3)
    with pytest.raises(MbusTimeout):
        await m.poll(align_down(rig.clock.now(), 60))
    assert m.gateway.counters["wake_ups"] == 1 and m.gateway.counters["timeouts"] == 3


async def test_gateway_down_is_a_device_error() -> None:
    s = site([heat_device("h", free_port(), 1)])
    m = HeatMbusMeter(s.device("h"), scaled_clock(), DeviceLinks())  # type: ignore[arg-type]
    with pytest.raises(DeviceError, match="connect failed"):
        await m.poll(align_down(scaled_clock().now(), 60))
    await m.close()


async def test_a_meter_that_keeps_failing_is_asked_less_often(rig: Rig) -> None:
    m = rig.meter("h1", mbus_address=77, timeout_s=0.2)
    slot = align_down(rig.clock.now(), 60)
    for i in range(3):
        with pytest.raises(MbusTimeout):
            await m.poll(slot + timedelta(minutes=i))
    asked = rig.sim.gateways[("127.0.0.1", m.config.port)].requests
    with pytest.raises(DeviceError, match="meter down"):
        await m.poll(slot + timedelta(minutes=3))
    assert m.health.extra["polls_skipped_down"] == 1
    assert rig.sim.gateways[("127.0.0.1", m.config.port)].requests == asked  # the bus was left alone
    good = await rig.meter("h2").poll(slot + timedelta(minutes=3))
    assert "energy_kwh" in good.fields


async def test_gateway_dropping_the_connection_fails_one_poll_only() -> None:
    r = await make_rig({"h2": {"drop_probability": 1.0}})
    try:
        slot = align_down(r.clock.now(), 60)
        with pytest.raises(DeviceError, match="connection lost"):
            await r.meter("h2").poll(slot)
        reading = await r.meter("h1").poll(slot)  # the next meter reconnects
        assert "energy_kwh" in reading.fields
        (gateway,) = r.sim.gateways.values()
        assert gateway.connections == 2
    finally:
        await r.sim.close()
