"""Emlite client and driver against the EMOP simulator over real TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.config import SiteConfig
from controller.core.clock import ScaledClock, align_down
from devices.base import DeviceError, HasProfileLog
from devices.emlite.client import BusyError, EmopClient, UnreachableError
from devices.emlite.codec import (
    ElementRegisters,
    FrameError,
    NakCode,
    NakError,
    ObjectId,
    SignalQuality,
)
from devices.emlite.config import EmliteConfig
from devices.emlite.driver import EmliteMeter
from devices.links import DeviceLinks
from simulator.context import SimContext
from simulator.emlite import EmliteSimulator, SimulatedMeter
from tests.devices.sim_sites import emlite_device, scaled_clock, site
from tests.helpers import eventually


def errors(counters: dict[str, int]) -> dict[str, int]:
    """The client's counters without its link-queueing time."""
    return {k: v for k, v in counters.items() if k != "link_wait_ms"}


@dataclass
class Rig:
    clock: ScaledClock
    site: SiteConfig
    sim: EmliteSimulator
    configs: dict[str, EmliteConfig]
    links: DeviceLinks

    def meter(self, name: str) -> SimulatedMeter:
        return self.sim.servers[name].meter

    def driver(self, name: str, **changes: Any) -> EmliteMeter:
        config = self.configs[name].model_copy(update=changes)
        return EmliteMeter(config, self.clock, self.links)

    def client(self, name: str, timeout_s: float = 10.0) -> EmopClient:
        c = self.configs[name]
        return EmopClient(c.host, c.port, clock=self.clock, link=self.links.emop_link(c.host, 4), meter=name,
                          timeout_s=timeout_s, client_address=c.client_address)


async def make_rig(devices: list[dict[str, Any]], faults: dict[str, dict[str, Any]] | None = None,
                   sim_devices: list[dict[str, Any]] | None = None) -> Rig:
    """Simulator built from `sim_devices` (default: the same devices the drivers are configured with)."""
    clock = scaled_clock()
    driver_site = site(devices, faults)
    sim_site = site(sim_devices, faults) if sim_devices is not None else driver_site
    sim = EmliteSimulator.from_site(SimContext(sim_site, clock))
    await sim.start({d.name: (d.host, d.port) for d in sim_site.devices})
    configs = {d.name: d for d in driver_site.devices if isinstance(d, EmliteConfig)}
    return Rig(clock, driver_site, sim, configs, DeviceLinks())


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await make_rig([emlite_device("home-1"), emlite_device("home-2", twin_element=True)])
    yield r
    await r.sim.close()


async def test_every_object_reads_over_tcp(rig: Rig) -> None:
    client = rig.client("home-2")
    meter = rig.meter("home-2")
    for object_id in ObjectId:
        value = await client.read_value(object_id)
        now = rig.clock.now()
        expected = meter.value(object_id, now)
        if isinstance(value, ElementRegisters):
            assert isinstance(expected, ElementRegisters)
            # The registers keep counting while the answer travels: a few Wh at most.
            assert 0 <= expected.import_wh - value.import_wh < 50
        elif object_id == ObjectId.PREPAY_BALANCE:
            assert isinstance(expected, int) and abs(expected - value) < 2_000  # < 2p
        elif object_id == ObjectId.CLOCK:
            assert isinstance(value, datetime) and abs((now - value).total_seconds()) < 30
        else:
            assert value == expected, object_id
    assert isinstance(await client.read_value(ObjectId.SIGNAL_QUALITY), SignalQuality)
    assert rig.sim.servers["home-2"].answers == len(ObjectId) + 1


async def test_unknown_object_is_a_nak_without_retry(rig: Rig) -> None:
    client = rig.client("home-1")
    with pytest.raises(NakError) as err:
        await client.read_value(ObjectId.ELEMENT_B_REGISTERS)  # single-element meter
    assert err.value.code == NakCode.UNKNOWN_OBJECT
    assert errors(client.counters) == {"naks": 1}
    with pytest.raises(NakError):
        await client.read_object(0x123456)


async def test_driver_poll_reads_registers_power_balance(rig: Rig) -> None:
    driver = rig.driver("home-2", extras_interval_s=60, clock_check_interval_s=60)
    slot = align_down(rig.clock.now(), 60)
    reading = await driver.poll(slot)
    f = reading.fields
    assert reading.time == slot and reading.kind == "emlite" and reading.device_id == driver.config.id
    expected_a = rig.meter("home-2").registers(rig.clock.now(), "a")
    expected_b = rig.meter("home-2").registers(rig.clock.now(), "b")
    assert 0 <= expected_a.import_wh / 1000 - float(f["import_a_kwh"]) < 0.1  # type: ignore[arg-type]
    assert 0 <= expected_b.import_wh / 1000 - float(f["import_b_kwh"]) < 0.1  # type: ignore[arg-type]
    assert set(f) >= {"export_a_kwh", "reactive_import_a_kvarh", "reactive_export_a_kvarh", "export_b_kwh",
                      "power_kw", "balance_gbp", "voltage_v", "signal_csq", "clock_drift_s"}
    assert 0 < float(f["power_kw"]) < 10  # type: ignore[arg-type]
    assert 200 < float(f["voltage_v"]) < 260  # type: ignore[arg-type]
    assert abs(float(f["clock_drift_s"])) < 30  # type: ignore[arg-type]
    assert isinstance(driver, HasProfileLog)


async def test_extras_are_read_only_at_their_phase(rig: Rig) -> None:
    driver = rig.driver("home-1")
    slot = align_down(rig.clock.now(), 60)
    due = [s for s in range(60) if driver._due(slot + timedelta(minutes=s), 900, driver._extras_phase_s)]
    assert len(due) == 4  # every 15 minutes
    reading = await driver.poll(slot + timedelta(minutes=due[0]))
    assert "voltage_v" in reading.fields and "signal_csq" in reading.fields
    not_due = next(s for s in range(60) if s not in due)
    reading = await driver.poll(slot + timedelta(minutes=not_due))
    assert "voltage_v" not in reading.fields and "import_a_kwh" in reading.fields


async def test_profile_log_backfill_matches_the_registers(rig: Rig) -> None:
    for name, twin in (("home-1", False), ("home-2", True)):
        driver = rig.driver(name)
        end = align_down(rig.clock.now(), 1800)
        start = end - timedelta(hours=5)
        readings = await driver.read_profile(start, end)
        assert [r.time for r in readings] == [start + timedelta(minutes=30 * i) for i in range(10)]
        meter = rig.meter(name)
        for r in readings:
            a, b = meter.import_wh(r.time)
            assert r.fields["import_a_kwh"] == int(a) / 1000
            assert r.fields["reactive_import_a_kvarh"] == int(int(a) * 0.2) / 1000
            assert ("import_b_kwh" in r.fields) == twin
            if twin:
                assert r.fields["import_b_kwh"] == int(b) / 1000
                assert "reactive_import_b_kvarh" in r.fields
        registers = [float(r.fields["import_a_kwh"]) for r in readings]  # type: ignore[arg-type]
        assert registers == sorted(registers)
        now_reading = await driver.poll(align_down(rig.clock.now(), 60))
        assert float(now_reading.fields["import_a_kwh"]) >= registers[-1]  # type: ignore[arg-type]


async def test_profile_log_past_history_and_future_give_no_data(rig: Rig) -> None:
    driver = rig.driver("home-1")
    now = align_down(rig.clock.now(), 1800)
    before = rig.sim.servers["home-1"].answers
    assert await driver.read_profile(now + timedelta(hours=1), now + timedelta(hours=3)) == []
    assert rig.sim.servers["home-1"].answers == before + 1  # log 1 says "nothing": log 2 is not asked
    # Before the meter's history the meter answers with later records: that means "no more data".
    long_ago = now - timedelta(days=400)
    assert await driver.read_profile(long_ago, long_ago + timedelta(hours=2)) == []


async def test_profile_log_up_to_now_stops_at_the_present(rig: Rig) -> None:
    driver = rig.driver("home-2")
    now = rig.clock.now()
    readings = await driver.read_profile(align_down(now, 1800) - timedelta(hours=1), now + timedelta(days=1))
    assert [r.time for r in readings] == [align_down(now, 1800) - timedelta(minutes=30 * i) for i in (2, 1, 0)]


async def test_corrupted_crc_is_rejected_and_counted() -> None:
    r = await make_rig([emlite_device("m")], faults={"m": {"garbage_probability": 1.0}})
    try:
        client = r.client("m")
        with pytest.raises(FrameError, match="crc"):
            await client.read_value(ObjectId.POWER_TOTAL)
        assert errors(client.counters) == {"frame_crc": 2, "retries": 1}
        driver = r.driver("m")
        with pytest.raises(DeviceError):
            await driver.poll(align_down(r.clock.now(), 60))
        assert driver.health.extra["frame_crc"] >= 2
    finally:
        await r.sim.close()


async def test_nak_answers_are_retried_once_then_fail() -> None:
    r = await make_rig([emlite_device("m")], faults={"m": {"exception_probability": 1.0}})
    try:
        client = r.client("m")
        with pytest.raises(NakError) as err:
            await client.read_value(ObjectId.POWER_TOTAL)
        assert err.value.code == NakCode.FRAME_LENGTH_INCORRECT
        assert errors(client.counters) == {"naks": 2, "retries": 1}
    finally:
        await r.sim.close()


async def test_busy_meter_backs_off_once() -> None:
    r = await make_rig([emlite_device("m")], faults={"m": {"busy_probability": 1.0}})
    try:
        client = r.client("m")
        t0 = r.clock.monotonic()
        with pytest.raises(BusyError):
            await client.read_value(ObjectId.POWER_TOTAL)
        assert errors(client.counters) == {"busy": 2, "retries": 1}
        assert r.clock.monotonic() - t0 >= 2.0  # the back-off is on the (scaled) clock
        assert r.sim.servers["m"].refused == 2
    finally:
        await r.sim.close()


async def test_dropped_connection_and_silence() -> None:
    r = await make_rig([emlite_device("drop"), emlite_device("mute")],
                       faults={"drop": {"drop_probability": 1.0}, "mute": {"timeout_probability": 1.0}})
    try:
        with pytest.raises(BusyError):
            await r.client("drop").read_value(ObjectId.POWER_TOTAL)
        mute = r.client("mute", timeout_s=0.3)
        with pytest.raises(UnreachableError):
            await mute.read_value(ObjectId.POWER_TOTAL)
        assert errors(mute.counters) == {"timeouts": 2, "retries": 1}
    finally:
        await r.sim.close()


async def test_missing_object_leaves_the_field_missing_not_zero() -> None:
    # The driver thinks the meter is twin-element; the meter has no element B and NAKs it.
    dev = emlite_device("m", twin_element=True)
    single = dict(dev, twin_element=False)
    r = await make_rig([dev], sim_devices=[single])
    try:
        driver = r.driver("m")
        reading = await driver.poll(align_down(r.clock.now(), 60))
        assert "import_a_kwh" in reading.fields and "power_kw" in reading.fields
        assert "import_b_kwh" not in reading.fields
        assert driver.health.extra["naks"] == 1 and driver.health.extra["reads_failed"] == 1
    finally:
        await r.sim.close()


async def test_meter_clock_far_off_is_recorded_not_fixed() -> None:
    r = await make_rig([emlite_device("m", clock_check_interval_s=60)], faults={"m": {"clock_offset_s": -900}})
    try:
        driver = r.driver("m")
        reading = await driver.poll(align_down(r.clock.now(), 60))
        assert -930 < float(reading.fields["clock_drift_s"]) < -870  # type: ignore[arg-type]
        assert driver.health.extra["clock_far_off"] == 1
        assert all(s.answers > 0 for s in r.sim.servers.values())
    finally:
        await r.sim.close()


async def test_serial_mismatch_fails_the_poll() -> None:
    r = await make_rig([emlite_device("m", serial="NOT-THIS-ONE")])
    try:
        driver = r.driver("m")
        with pytest.raises(DeviceError, match="serial"):
            await driver.poll(align_down(r.clock.now(), 60))
        assert driver.health.extra["serial_mismatch"] == 1
        right = r.meter("m").value(ObjectId.SERIAL, r.clock.now())
        good = r.driver("m", serial=right)
        assert "import_a_kwh" in (await good.poll(align_down(r.clock.now(), 60))).fields
    finally:
        await r.sim.close()


async def test_dead_meter_goes_down_and_is_polled_less_often() -> None:
    dead = emlite_device("dead")  # nothing listens on its port
    r = await make_rig([dead], sim_devices=[emlite_device("other")])
    try:
        driver = r.driver("dead")
        slot = align_down(r.clock.now(), 60)
        for i in range(3):
            with pytest.raises(DeviceError):
                await driver.poll(slot + timedelta(minutes=i))
        assert driver.health.extra["busy"] == 6  # refused twice per poll (one retry)
        with pytest.raises(DeviceError, match="meter down"):
            await driver.poll(slot + timedelta(minutes=3))
        assert driver.health.extra["polls_skipped_down"] == 1
        assert driver.health.extra["busy"] == 6  # no traffic while paused
    finally:
        await r.sim.close()


async def test_link_limit_is_shared_by_every_meter_on_the_link() -> None:
    names = [f"m{i}" for i in range(6)]
    r = await make_rig([emlite_device(n, link="router", link_max_connections=2) for n in names],
                       faults={n: {"latency_s": 1.0} for n in names})
    try:
        drivers = [r.driver(n) for n in names]
        slot = align_down(r.clock.now(), 60)
        readings = await asyncio.gather(*(d.poll(slot) for d in drivers))
        assert all("import_a_kwh" in x.fields for x in readings)
        assert r.sim.gauge.peak == 2  # in parallel, never more than the link allows
        assert sum(s.refused for s in r.sim.servers.values()) == 0
    finally:
        await r.sim.close()


async def test_poll_abandoned_in_the_link_queue_is_not_held_against_the_meter() -> None:
    r = await make_rig([emlite_device("a", link="r", link_max_connections=1), emlite_device("b", link="r", link_max_connections=1)],
                       faults={"a": {"latency_s": 30.0}})
    try:
        slow, queued = r.driver("a", start_jitter_s=0), r.driver("b", start_jitter_s=0)
        slot = align_down(r.clock.now(), 60)
        hog = asyncio.ensure_future(slow.poll(slot))
        await eventually(lambda: r.sim.servers["a"].busy)  # "a" holds the link's only slot
        waiting = asyncio.ensure_future(queued.poll(slot))
        await eventually(lambda: queued.client.waiting_for_link)
        waiting.cancel()
        hog.cancel()
        await asyncio.gather(hog, waiting, return_exceptions=True)
        assert queued.failures_in_a_row == 0  # abandoned while queued: the link's doing
        assert slow.failures_in_a_row == 1  # abandoned while talking to the meter: the meter's
    finally:
        await r.sim.close()
