"""The poll scheduler on a manual clock against real Modbus servers: slots, telemetry, stalls, misses."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.config import LoadedSite, SiteConfig
from controller.core.bus import Bus
from controller.core.clock import ManualClock
from controller.core.component import STOP_POLLERS
from controller.core.reading import Reading
from controller.core.state import StateStore
from controller.runtime import Runtime
from controller.wiring import devices as devices_components
from devices.acuvim2 import registers as r
from devices.base import Device, HealthState
from devices.catalog import create_device
from devices.links import DeviceLinks
from devices.modbus import encode
from devices.scheduler import DevicePoller
from simulator.config import FaultConfig
from simulator.modbus_server import Faults, ModbusSimServer, RegisterBank, SimUnit
from tests.helpers import eventually, free_port

# Deliberately off any slot boundary, and late in its 2 s slot: the first poll is the next boundary's
# (a poller started early in its slot polls it at once: test_a_poller_started_early_in_its_slot_...).
START = datetime(2026, 6, 3, 11, 59, 51, 300000, tzinfo=UTC)


def _meter(name: str, port: int, uid: str, **extra: Any) -> dict[str, Any]:
    return {"type": "acuvim2", "name": name, "id": uid, "host": "127.0.0.1", "port": port, "poll_interval_s": 2,
            "telemetry_interval_s": 10, "ct1": 800, "ct2": 5, "timeout_s": 5.0, "backoff_initial_s": 0.5, "backoff_max_s": 1.0, **extra}


def _site(*devices: dict[str, Any]) -> SiteConfig:
    return SiteConfig.model_validate({"site": {"id": "t", "name": "t"}, "devices": list(devices)})


def _unit(name: str, faults: FaultConfig | None = None) -> SimUnit:
    bank = RegisterBank([(r.FLOAT_START, r.FLOAT_COUNT), (r.ENERGY_START, r.ENERGY_COUNT),
                         (r.PHASE_ENERGY_START, r.PHASE_ENERGY_COUNT)])
    bank.set(12288, encode(50.0, "float32"))
    return SimUnit(name, bank, Faults(faults, random.Random(2)))


def _set_power_kw(unit: SimUnit, kw: float) -> None:
    unit.bank.set(12322, encode(kw * 1000 / 160, "float32"))  # CT 800/5: raw secondary W x 160 / 1000 = kW
    for address in (12316, 12318, 12320):  # the phases add up to the total (the driver checks it)
        unit.bank.set(address, encode(kw * 1000 / 160 / 3, "float32"))


def _done(device: Device) -> int:
    h = device.health
    return h.polls_ok + h.polls_failed


async def _step(clock: ManualClock, *waiting_on: tuple[Device, int]) -> None:
    """Advance one 2 s slot, then wait (real time) until each device has finished that many polls."""
    await clock.advance(2.0)
    for device, count in waiting_on:
        await eventually(lambda d=device, c=count: _done(d) >= c, timeout=20)  # type: ignore[misc]


@contextlib.asynccontextmanager
async def _one_meter(clock: ManualClock, unit: SimUnit) -> AsyncIterator[tuple[Device, StateStore, list[Reading]]]:
    """One 2 s meter served from `unit` by a real Modbus server, its poller running (and the clock settled)
    for the block: (the device, the state store, the readings recorded)."""
    port = free_port()
    site = _site(_meter("m", port, "7b0d0c6e-5d2a-4c43-9a57-000000000002"))
    bus, state = Bus(), StateStore()
    recorded: list[Reading] = []
    bus.readings.on(recorded.append)
    async with ModbusSimServer("127.0.0.1", port, clock, {1: unit}):
        device = create_device(site.devices[0], clock, DeviceLinks())
        task = asyncio.create_task(DevicePoller(device, clock, state, bus).run())
        try:
            await clock.settle()
            yield device, state, recorded
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_aligned_slots_and_first_poll_of_each_telemetry_slot_recorded() -> None:
    port = free_port()
    clock = ManualClock(START)
    # The same meter twice (unit ids 1 and 2): one records every poll, one the first of each 10 s slot.
    site = _site(_meter("every", port, "7b0d0c6e-5d2a-4c43-9a57-000000000002", telemetry_interval_s=2),
                 _meter("first", port, "7b0d0c6e-5d2a-4c43-9a57-000000000003", unit_id=2))
    unit = _unit("m")
    bus, state = Bus(), StateStore()
    recorded: dict[str, list[Reading]] = {"every": [], "first": []}
    bus.readings.on(lambda x: recorded[x.device].append(x))
    async with ModbusSimServer("127.0.0.1", port, clock, {1: unit, 2: unit}):
        every = create_device(site.devices[0], clock, DeviceLinks())
        first = create_device(site.devices[1], clock, DeviceLinks())
        tasks = [asyncio.create_task(DevicePoller(d, clock, state, bus).run()) for d in (every, first)]
        await clock.settle()
        for k in range(1, 12):
            _set_power_kw(unit, 10.0 * k)
            await _step(clock, (every, k), (first, k))
            sample = state.get(every.config.id, "power_total_active")
            assert sample is not None and sample.value == 10.0 * k
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Slots are the 2 s boundaries from the first one after 11:59:50.7, whatever the clock's fraction.
    assert [x.time for x in recorded["every"]] == [
        datetime(2026, 6, 3, 11, 59, 52, tzinfo=UTC) + timedelta(seconds=2 * i) for i in range(11)]
    assert [x.fields["power_total_active"] for x in recorded["every"]] == [10.0 * k for k in range(1, 12)]
    # 10 s telemetry: 12:00:00 is the 5th poll (50 kW) and 12:00:10 the 10th (100 kW).
    assert [(x.time, x.fields["power_total_active"]) for x in recorded["first"]] == [
        (datetime(2026, 6, 3, 12, 0, 0, tzinfo=UTC), 50.0), (datetime(2026, 6, 3, 12, 0, 10, tzinfo=UTC), 100.0)]
    assert every.health.slots_missed == 0 and every.health.polls_ok == 11


@pytest.mark.parametrize(("start", "polled_at_once"), [
    (datetime(2026, 6, 3, 11, 59, 50, 400000, tzinfo=UTC), True),   # 1.6 of the slot's 2 s left
    (datetime(2026, 6, 3, 11, 59, 51, 0, tzinfo=UTC), True),        # half left
    (datetime(2026, 6, 3, 11, 59, 51, 300000, tzinfo=UTC), False),  # 0.7 s left: the poll would be cut off
])
async def test_a_poller_started_early_in_its_slot_polls_it_at_once(start: datetime, polled_at_once: bool) -> None:
    clock = ManualClock(start)
    unit = _unit("m")
    _set_power_kw(unit, 10.0)
    async with _one_meter(clock, unit) as (device, state, recorded):
        if polled_at_once:
            # Before the first boundary, on the clock that has not moved: the control loop has data at once.
            await eventually(lambda: _done(device) == 1, timeout=20)
            sample = state.get(device.config.id, "power_total_active")
            assert sample is not None and sample.value == 10.0 and sample.time == start
        else:
            await asyncio.sleep(0.3)
            assert _done(device) == 0 and state.get(device.config.id, "power_total_active") is None
        first = 1 if polled_at_once else 0
        for k in range(1, 7):  # 11:59:52 .. 12:00:02, each on its boundary
            _set_power_kw(unit, 10.0 * (k + 1))
            await _step(clock, (device, first + k))
    assert device.health.polls_ok == first + 6 and device.health.slots_missed == 0
    # The 11:59:50 telemetry slot began before the poller: its start poll is never recorded for it, and
    # 12:00:00 (the 5th boundary poll, 60 kW) is the first row, as without the start poll.
    assert [(x.time, x.fields["power_total_active"]) for x in recorded] == [
        (datetime(2026, 6, 3, 12, 0, 0, tzinfo=UTC), 60.0)]


async def test_a_failed_poll_at_the_slot_start_is_stood_in_for_by_the_next_that_answers() -> None:
    clock = ManualClock(START)
    unit = _unit("m")
    async with _one_meter(clock, unit) as (device, _, recorded):
        # Polls 11:59:52 .. 12:00:20; the three at 12:00:00, 12:00:02 and 12:00:20 answer with an exception.
        for k in range(1, 16):
            _set_power_kw(unit, 10.0 * k)
            failing = k in (5, 6, 15)
            unit.faults.config = FaultConfig(exception_probability=1.0 if failing else 0.0)
            await _step(clock, (device, k))
    assert device.health.polls_failed == 3
    # 11:59:50 began before the poller: nothing stands in for its start. 12:00:00 and 12:00:02 failed,
    # so 12:00:04 (70 kW) is the slot's reading, at its own time; 12:00:10 answered at the start;
    # the 12:00:20 slot is still open, and its start failed.
    assert [(x.time, x.fields["power_total_active"]) for x in recorded] == [
        (datetime(2026, 6, 3, 12, 0, 4, tzinfo=UTC), 70.0), (datetime(2026, 6, 3, 12, 0, 10, tzinfo=UTC), 100.0)]


async def test_mean_telemetry_is_the_mean_of_the_slot_stamped_at_its_start() -> None:
    port = free_port()
    clock = ManualClock(START)
    site = _site(_meter("m", port, "7b0d0c6e-5d2a-4c43-9a57-000000000002", telemetry="mean"))
    unit = _unit("m")
    bus, state = Bus(), StateStore()
    recorded = bus.readings.subscribe()
    async with ModbusSimServer("127.0.0.1", port, clock, {1: unit}):
        device = create_device(site.devices[0], clock, DeviceLinks())
        task = asyncio.create_task(DevicePoller(device, clock, state, bus).run())
        await clock.settle()
        for k in range(1, 10):  # polls 11:59:52 .. 12:00:08
            _set_power_kw(unit, 10.0 * k)
            await _step(clock, (device, k))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    records = [recorded.get_nowait() for _ in range(recorded.qsize())]
    # 11:59:50 slot: polls 1-4 (10..40 kW) -> 25; the 12:00:00 slot (polls 5-9) is complete only
    # with its 12:00:08 poll, which closes it: (50+60+70+80+90)/5 = 70.
    assert [(x.time, x.fields["power_total_active"]) for x in records] == [
        (datetime(2026, 6, 3, 11, 59, 50, tzinfo=UTC), 25.0),
        (datetime(2026, 6, 3, 12, 0, 0, tzinfo=UTC), 70.0),
    ]
    assert records[1].fields["frequency"] == 50.0


async def test_a_stalled_device_misses_its_slots_and_never_delays_another() -> None:
    port_a, port_b = free_port(), free_port()
    clock = ManualClock(START)
    site = _site(_meter("stalled", port_a, "7b0d0c6e-5d2a-4c43-9a57-00000000000a"),
                 _meter("healthy", port_b, "7b0d0c6e-5d2a-4c43-9a57-00000000000b"))
    # The stalled meter answers 30 s late (on the simulator's clock, the same manual clock).
    stalled_unit = _unit("stalled", FaultConfig(latency_s=30.0))
    healthy_unit = _unit("healthy")
    bus, state = Bus(), StateStore()
    alerts: list[str] = []
    recorded: list[Reading] = []
    bus.readings.on(recorded.append)
    async with (ModbusSimServer("127.0.0.1", port_a, clock, {1: stalled_unit}),
                ModbusSimServer("127.0.0.1", port_b, clock, {1: healthy_unit})):
        stalled = create_device(site.devices[0], clock, DeviceLinks())
        healthy = create_device(site.devices[1], clock, DeviceLinks())
        tasks = [asyncio.create_task(DevicePoller(d, clock, state, bus, lambda kind, *a, **k: alerts.append(kind))
                                     .run()) for d in (stalled, healthy)]
        await clock.settle()
        for k in range(1, 17):  # 32 s: longer than the stall
            await _step(clock, (healthy, k))
        assert healthy.health.polls_ok == 16 and healthy.health.slots_missed == 0
        # Every stalled poll was cut off at its slot's end (the poll of the current slot is still running).
        assert stalled.health.polls_ok == 0
        assert stalled.health.slots_missed == 15
        assert stalled.health.state == HealthState.DOWN
        assert "device_down" in alerts
        assert all(x.device == "healthy" for x in recorded)
        assert [x.time for x in recorded] == [datetime(2026, 6, 3, 12, 0, s, tzinfo=UTC) for s in (0, 10, 20)]
        # Healed: the poll in flight is cut off at the next slot, and the next slot's poll answers.
        stalled_unit.faults.config = FaultConfig()
        await _step(clock, (healthy, 17))
        await eventually(lambda: stalled.health.polls_ok >= 1, timeout=20)
        assert stalled.health.state == HealthState.OK
        assert "device_recovered" in alerts
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_poller_that_wakes_after_its_slot_counts_the_lost_slots() -> None:
    port = free_port()
    clock = ManualClock(START)
    site = _site(_meter("m", port, "7b0d0c6e-5d2a-4c43-9a57-000000000002"))
    async with ModbusSimServer("127.0.0.1", port, clock, {1: _unit("m")}):
        device = create_device(site.devices[0], clock, DeviceLinks())
        poller = DevicePoller(device, clock, StateStore(), Bus())
        task = asyncio.create_task(poller.run())
        await clock.settle()
        await _step(clock, (device, 1))  # 11:59:52 polled
        # The loop is blocked for 8.5 s: the poller's next wake-up (11:59:54) comes at 12:00:00.5, when
        # three whole slots (11:59:54, :56, :58) have passed.
        clock.jump(8.5)
        await clock.advance(0)
        await eventually(lambda: _done(device) >= 2, timeout=20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert device.health.slots_missed == 3


async def test_poller_rides_out_a_simulator_restart() -> None:
    port = free_port()
    clock = ManualClock(START)
    site = _site(_meter("m", port, "7b0d0c6e-5d2a-4c43-9a57-000000000002", timeout_s=1.0))
    unit = _unit("m")
    server = ModbusSimServer("127.0.0.1", port, clock, {1: unit})
    await server.start()
    device = create_device(site.devices[0], clock, DeviceLinks())
    alerts: list[str] = []
    task = asyncio.create_task(
        DevicePoller(device, clock, StateStore(), Bus(), lambda kind, *a, **k: alerts.append(kind)).run())
    try:
        await clock.settle()
        await _step(clock, (device, 1))
        await server.stop()
        for k in range(2, 6):
            await _step(clock, (device, k))
        assert device.health.state == HealthState.DOWN and device.health.polls_ok == 1
        await server.start()
        for k in range(6, 12):  # the reconnect backoff (0.5 .. 1 s) is shorter than a slot
            await _step(clock, (device, k))
            if device.health.polls_ok > 1:
                break
        assert device.health.polls_ok == 2 and device.health.state == HealthState.OK
        assert alerts == ["device_down", "device_recovered"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()

def _runtime(site: SiteConfig, clock: ManualClock) -> Runtime:
    return Runtime(site=LoadedSite(site, "<test>", "0" * 64), clock=clock)


def test_provider_creates_devices_synchronously_and_keys_each_poller_by_its_config() -> None:
    bess = {"type": "powerpack", "name": "bess", "id": "7b0d0c6e-5d2a-4c43-9a57-000000000001", "host": "127.0.0.1",
            "port": 15020, "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000}
    meter = _meter("m", 15021, "7b0d0c6e-5d2a-4c43-9a57-000000000002")
    clock = ManualClock(START)
    site = _site(bess, meter)
    runtime = _runtime(site, clock)
    specs = {s.name: s for s in devices_components(site, runtime)}
    assert set(specs) == {"poll:bess", "poll:m"}
    assert all(s.stop_order == STOP_POLLERS and not s.critical for s in specs.values())
    devices = runtime.services.devices
    assert devices["bess"].config == site.devices[0] and hasattr(devices["bess"], "write_setpoint")
    assert runtime.health["bess"] is devices["bess"].health
    first_meter = devices["m"]
    changed = _site({**bess, "ramp_up_kw_per_s": 50}, meter)
    specs2 = {s.name: s for s in devices_components(changed, runtime)}
    assert specs2["poll:m"].key == specs["poll:m"].key  # unchanged: not restarted on reload
    assert specs2["poll:bess"].key != specs["poll:bess"].key
    assert runtime.services.devices["m"] is first_meter
    devices_components(_site(bess), runtime)
    assert set(runtime.services.devices) == {"bess"} and "m" not in runtime.health

