"""Register codecs and the shared Modbus TCP connection, against a real pymodbus server."""

from __future__ import annotations

import asyncio
import math
import random
import struct
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import SiteConfig
from controller.core.clock import ManualClock
from devices.base import DeviceError
from devices.modbus import ModbusConnection, decode, decode_string, encode, encode_int32, encode_string
from devices.powerpack.config import PowerPackConfig
from simulator.config import FaultConfig
from simulator.modbus_server import Faults, ModbusSimServer, RegisterBank, SimUnit
from tests.helpers import free_port

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def test_decode_known_words() -> None:
    assert decode([0x1234], "uint16") == 0x1234
    assert decode([0xFFFE], "int16") == -2
    assert decode([0x0001, 0x0002], "uint32") == 0x00010002
    assert decode([0x0001, 0x0002], "uint32", "little") == 0x00020001
    assert decode([0xFFFF, 0xFF38], "int32") == -200
    assert decode([0x4248, 0x0000], "float32") == 50.0
    assert decode([0x0000, 0x4248], "float32", "little") == 50.0
    assert decode([0, 0, 0, 7], "uint64") == 7
    assert decode([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], "int64") == -1
    assert decode([0x4049, 0x0FDB, 0x0000, 0x0000], "float64") == struct.unpack(
        ">d", bytes.fromhex("40490FDB00000000"))[0]
    assert math.isnan(decode([0x7FC0, 0x0000], "float32"))


def test_decode_rejects_wrong_register_count() -> None:
    with pytest.raises(ValueError):
        decode([1], "uint32")


def test_charge_setpoint_is_twos_complement_high_word_first() -> None:
    # -150 kW charge = -150000 W: 0xFFFDB610 on the wire, high word first.
    assert encode_int32(-150_000) == [0xFFFD, 0xB610]
    assert encode_int32(250_000) == [0x0003, 0xD090]
    with pytest.raises(ValueError):
        encode_int32(2**31)
    with pytest.raises(ValueError):
        encode(-1, "uint16")


def test_strings_round_trip() -> None:
    assert decode_string(encode_string("PP2-1234", 16)) == "PP2-1234"


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_round_trip(value: int, order: str) -> None:
    assert decode(encode(value, "int32", order), "int32", order) == value  # type: ignore[arg-type]


@given(st.floats(width=32, allow_nan=False), st.sampled_from(["float32", "float64"]))
def test_float_round_trip(value: float, data_type: str) -> None:
    assert decode(encode(value, data_type), data_type) == value  # type: ignore[arg-type]


def _config(port: int, **kw: object) -> PowerPackConfig:
    entry = {"type": "powerpack", "name": "bess", "id": str(uuid.uuid4()), "host": "127.0.0.1", "port": port,
             "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000, "timeout_s": 1.0,
             "backoff_initial_s": 1.0, "backoff_max_s": 4.0, **kw}
    device = SiteConfig.model_validate({"site": {"id": "t", "name": "t"}, "devices": [entry]}).devices[0]
    assert isinstance(device, PowerPackConfig)
    return device


def _server(port: int, clock: ManualClock, faults: FaultConfig | None = None) -> tuple[ModbusSimServer, SimUnit]:
    bank = RegisterBank([(0, 10)], writable=[(100, 4)])
    bank.set(0, [11, 22, 33])
    unit = SimUnit("bess", bank, Faults(faults, random.Random(1)))
    return ModbusSimServer("127.0.0.1", port, clock, {1: unit}), unit


async def test_read_write_and_exception_over_tcp() -> None:
    port = free_port()
    clock = ManualClock(T0)
    server, unit = _server(port, clock)
    async with server:
        conn = ModbusConnection(_config(port), clock)
        assert await conn.read_holding(0, 3) == [11, 22, 33]
        await conn.write_registers(100, encode_int32(-150_000))
        assert unit.writes == [(100, [0xFFFD, 0xB610])]
        with pytest.raises(DeviceError, match="exception response code 2"):
            await conn.read_holding(500, 2)  # illegal address
        assert conn.connection_id == 1  # an exception answer keeps the link
        await conn.close()


async def test_backoff_then_reconnect() -> None:
    port = free_port()
    clock = ManualClock(T0)
    conn = ModbusConnection(_config(port), clock, rng=random.Random(3))
    with pytest.raises(DeviceError, match="connect"):
        await conn.read_holding(0, 1)
    # Inside the backoff window the connection does not even try.
    with pytest.raises(DeviceError, match="backoff"):
        await conn.read_holding(0, 1)
    server, _ = _server(port, clock)
    async with server:
        with pytest.raises(DeviceError, match="backoff"):
            await conn.read_holding(0, 1)
        await clock.advance(1.0)
        assert await conn.read_holding(0, 1) == [11]
    await conn.close()


def test_backoff_is_capped_and_jittered() -> None:
    conn = ModbusConnection(_config(1), ManualClock(T0), rng=random.Random(5))
    delays = [conn.backoff_delay(n) for n in range(1, 10)]
    assert all(d <= 4.0 for d in delays)
    assert delays[0] <= 1.0 and delays[1] > delays[0] * 1.5 * 0.8 / 1.0 * 0.9
    assert delays[-1] >= 4.0 * 0.8
    assert len({round(d, 6) for d in delays[5:]}) > 1  # jitter: not all the same


async def test_no_answer_times_out_and_drops_connection() -> None:
    port = free_port()
    clock = ManualClock(T0)
    server, unit = _server(port, clock, FaultConfig(timeout_probability=1.0))
    async with server:
        conn = ModbusConnection(_config(port, timeout_s=0.3), clock)
        with pytest.raises(DeviceError, match=r"timed out|no response"):
            await conn.read_holding(0, 1)
        assert not conn.connected
        unit.faults.config = FaultConfig()
        await clock.advance(1.0)
        assert await conn.read_holding(0, 2) == [11, 22]
        assert conn.connection_id == 2
        await conn.close()


async def test_connect_outlives_a_poll_abandoned_at_its_slot_end() -> None:
    """pymodbus spends 0.1 s in every connect: a poll slot shorter than that must not keep the device
    from ever connecting (the poll is abandoned, the connect goes on, the next slot finds it done)."""
    port = free_port()
    clock = ManualClock(T0)
    server, _ = _server(port, clock)
    async with server:
        conn = ModbusConnection(_config(port), clock)
        for _ in range(2):  # two "slots", together shorter than one connect
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.read_holding(0, 1), timeout=0.03)
        await asyncio.sleep(0.15)  # the one connect in flight finishes meanwhile
        assert await asyncio.wait_for(conn.read_holding(0, 3), timeout=0.04) == [11, 22, 33]
        assert conn.connects == 1
        await conn.close()
