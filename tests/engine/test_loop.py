"""The control loop on a manual clock: ticks, fresh readings, stale data, overrides, write failures, emulation,
the idle command on the way out. The battery is the real PowerPack driver talking to the simulated battery
over a real socket; site-meter readings go into the state store as the poll scheduler puts them there."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from controller.config import LoadedSite, parse_site
from controller.control_loop import ControlLoop
from controller.core.bus import DecisionRecord
from controller.core.clock import ManualClock
from controller.core.reading import Reading
from controller.runtime import Runtime
from controller.wiring import control, control_loop
from devices.catalog import create_device
from devices.links import DeviceLinks
from devices.modbus import decode
from devices.powerpack import registers as reg
from simulator.config import FaultConfig
from simulator.modbus_devices import ModbusSite, PowerPackBank
from tests.helpers import free_port

SITE = """
site: {id: looptest, name: Loop test}
devices:
  - {type: powerpack, name: bess, id: 00000000-0000-4000-8000-000000000001, host: 127.0.0.1, port: {port},
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000, timeout_s: 2}
  - {type: acuvim2, name: site-meter, id: 00000000-0000-4000-8000-000000000002, host: 127.0.0.1, port: {port2},
     poll_interval_s: 2}
controller:
  site_meter: site-meter
  battery: bess
  period_s: 4
  max_reading_age_s: 30
  soe_min_kwh: 50
  soe_max_kwh: 950
  battery_charge_limit_kw: 250
  battery_discharge_limit_kw: 200
  site_import_limit_kw: 300
  site_export_limit_kw: 350
  emulation: {emulation}
  modes:
    - {type: import_avoidance, periods: [{start: "00:00", end: "24:00"}]}
"""
T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def config_text(emulation: bool = False) -> str:
    return (SITE.replace("{emulation}", str(emulation).lower()).replace("{port}", str(free_port()))
            .replace("{port2}", str(free_port())))


@dataclass
class Rig:
    clock: ManualClock
    runtime: Runtime
    sim: ModbusSite
    decisions: asyncio.Queue[DecisionRecord]
    loop: ControlLoop

    @property
    def bank(self) -> PowerPackBank:
        bank = self.sim.bank("bess")
        assert isinstance(bank, PowerPackBank)
        return bank

    @property
    def writes(self) -> list[float]:
        """Real-power commands the simulated battery received, kW."""
        return [decode(v, "int32") / 1000 for a, v in self.bank.write_log if a == reg.REAL_POWER_W]

    def fail_writes(self, failing: bool) -> None:
        self.sim.units["bess"].faults.config = FaultConfig(exception_probability=1.0 if failing else 0.0)

    def reading(self, device: str, **fields: float) -> None:
        cfg = self.runtime.config.device(device)
        now = self.clock.now()
        self.runtime.state.update(Reading(cfg.id, device, cfg.type, now, fields, now))

    async def next_decision(self) -> DecisionRecord:
        return await asyncio.wait_for(self.decisions.get(), 10)

    async def step(self, seconds: float = 4) -> DecisionRecord:
        """Move the clock one tick on and return that tick's decision (the write is real I/O: wait for it)."""
        due = self.clock.now() + timedelta(seconds=seconds)
        await self.clock.advance(seconds)
        while True:
            d = await self.next_decision()
            if d.time >= due:
                return d


@contextlib.asynccontextmanager
async def rig(emulation: bool = False) -> AsyncIterator[Rig]:
    config = parse_site(config_text(emulation))
    clock = ManualClock(T0)
    runtime = Runtime(site=LoadedSite(config, "<test>", "0"), clock=clock)
    async with ModbusSite(config, clock, names={"bess"}) as sim:
        battery = create_device(config.device("bess"), clock, DeviceLinks())
        runtime.services.devices = {"bess": battery}
        queue = runtime.bus.decisions.subscribe()
        r = Rig(clock, runtime, sim, queue, control_loop(config, runtime))
        r.reading("site-meter", power_total_active=80.0)
        r.reading("bess", soe_kwh=500.0, target_power_kw=0.0)  # the battery's measured power: idle
        task = asyncio.create_task(r.loop.run())
        try:
            yield r
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await battery.close()


async def test_ticks_every_period_and_writes_the_setpoint() -> None:
    async with rig() as r:
        first = await r.next_decision()
        assert first.body["target_kw"] == 80.0
        assert first.body["active_modes"] == ["import_avoidance"]
        assert first.body["inputs"]["site_power_kw"] == 80.0
        assert first.body["proposals"]["import_avoidance"] == {"target": 80.0, "min": 80.0, "max": None}
        assert r.writes == [80.0]
        assert "control" in r.runtime.heartbeats
        assert r.loop.last_decision["target_kw"] == 80.0
        r.reading("bess", soe_kwh=500.0, target_power_kw=80.0)  # measured: the battery follows
        r.reading("site-meter", power_total_active=0.0)  # the battery's 80 kW now covers the load
        await r.next_decision()
        d = await r.step(4)
        assert d.time == T0 + timedelta(seconds=4)
        assert r.writes[-1] == 80.0  # load = site 0 + measured battery 80


async def test_a_fresh_site_reading_ticks_at_once() -> None:
    async with rig() as r:
        await r.next_decision()
        r.reading("site-meter", power_total_active=150.0)  # the clock does not move
        d = await r.next_decision()
        assert d.time == T0
        assert d.body["target_kw"] == 200.0  # 150 + last 80, limited to the 200 kW discharge limit
        assert d.body["constraints"] == ["bess_power"]


async def test_stale_data_idles_and_resumes_when_fresh_data_arrives() -> None:
    async with rig() as r:
        await r.next_decision()
        events: list[str] = []
        r.runtime.bus.events.on(lambda e: events.append(e.kind))
        for _ in range(8):  # readings now 32 s old
            stale = await r.step(4)
        assert stale.body["target_kw"] == 0.0
        assert stale.body["constraints"] == ["stale_data"]
        assert r.writes[-1] == 0.0
        assert r.loop.stale_ticks >= 1
        r.reading("bess", soe_kwh=500.0)
        r.reading("site-meter", power_total_active=50.0)
        fresh = await r.next_decision()
        assert fresh.body["target_kw"] == 50.0
        assert events == ["control_stale_data", "control_data_fresh"]
        assert r.runtime.health["control"]["stale_ticks"] == r.loop.stale_ticks


async def test_manual_override_replaces_arbitration_but_not_the_envelope() -> None:
    async with rig() as r:
        await r.next_decision()
        r.runtime.overrides.manual_setpoint_kw = -1000.0
        r.runtime.overrides.source = "test"
        d = await r.step(4)
        # -1000 -> -250 (battery), then -220: the meter's 80 kW was read with the battery idle, and
        # charging harder would import 80 + 250 > 300 kW
        assert d.body["target_kw"] == -220.0
        assert d.body["constraints"] == ["bess_power", "site_import"]
        assert d.body["reason"].startswith("manual override")
        assert d.body["override"]["manual_setpoint_kw"] == -1000.0
        r.runtime.overrides.until = r.clock.now()  # lapses now
        await r.clock.advance(1)
        r.reading("site-meter", power_total_active=80.0)  # read with the -220 kW charge in force
        lapsed = await r.next_decision()  # the fresh reading ticks at once
        assert lapsed.body["override"] is None
        assert lapsed.body["active_modes"] == ["import_avoidance"]  # meter 80 + battery -220: exporting, a floor only
        assert lapsed.body["target_kw"] == 0.0


async def test_a_reading_taken_before_a_write_is_not_credited_with_it() -> None:
    """Two decisions on one site reading: the second must not add the first's setpoint back to a reading
    taken before that setpoint was written (it would count the battery's change twice)."""
    async with rig() as r:
        first = await r.next_decision()  # meter 80 kW with the battery idle: discharge 80
        assert first.body["target_kw"] == 80.0
        again = await r.step(4)  # a period tick, no new reading: the meter still shows the idle battery
        assert again.body["target_kw"] == 80.0
        assert again.body["inputs"]["bess_last_target_kw"] == 0.0


async def test_dry_run_override_decides_without_writing() -> None:
    async with rig() as r:
        await r.next_decision()
        writes = len(r.writes)
        r.runtime.overrides.dry_run = True
        ds = [await r.step(4), await r.step(4)]
        assert all(d.body["dry_run"] and not d.body["written"] for d in ds)
        assert len(r.writes) == writes


async def test_a_failed_write_is_counted_and_retried_next_tick() -> None:
    async with rig() as r:
        await r.next_decision()
        events: list[str] = []
        r.runtime.bus.events.on(lambda e: events.append(e.kind))
        r.fail_writes(True)
        failed = await r.step(4)
        assert failed.body["written"] is False
        assert r.loop.write_failures == 1
        r.fail_writes(False)
        retried = await r.step(4)
        assert retried.body["written"] is True
        assert r.writes[-1] == retried.body["target_kw"] == 80.0  # the meter's 80 kW was read with the battery idle
        assert events == ["battery_write_failed", "battery_write_recovered"]


async def test_emulation_reports_site_power_as_if_the_battery_had_delivered() -> None:
    async with rig(emulation=True) as r:
        first = await r.next_decision()
        assert first.body["target_kw"] == 80.0
        d = await r.step(4)  # the meter still says 80 kW: the battery is not really there
        assert d.body["inputs"]["site_power_kw"] == 0.0  # 80 measured - 80 commanded
        assert d.body["target_kw"] == 80.0
        r.fail_writes(True)  # nor does it answer: the setpoint still counts as delivered
        d = await r.step(4)
        assert d.body["written"] is False
        assert d.body["inputs"]["site_power_kw"] == 0.0
        assert d.body["target_kw"] == 80.0


async def test_cancellation_commands_idle_once() -> None:
    async with rig() as r:
        await r.next_decision()
        assert r.writes == [80.0]
    assert r.writes == [80.0, 0.0]


async def test_missing_battery_driver_is_counted_not_raised() -> None:
    async with rig() as r:
        await r.next_decision()
        del r.runtime.services.devices["bess"]
        assert (await r.step(4)).body["written"] is False
        assert r.loop.write_failures >= 1


@pytest.mark.parametrize("with_controller", [True, False])
def test_provider(with_controller: bool) -> None:
    config = parse_site(config_text())
    if not with_controller:
        config = config.model_copy(update={"controller": None})
    runtime = Runtime(site=LoadedSite(config, "<test>", "0"), clock=ManualClock(T0))
    specs = control(config, runtime)
    assert [(s.name, s.critical) for s in specs] == ([("control", True)] if with_controller else [])


async def test_market_data_comes_from_the_modo_service() -> None:
    from controller.engine.site_state import MarketValue
    from controller.market.config import ModoConfig
    from controller.market.modo import ModoClient

    async with rig() as r:
        await r.next_decision()
        modo = ModoClient(ModoConfig(), r.clock)
        modo.price = MarketValue(9.5, T0)
        modo.volume = MarketValue(-120.0, T0)
        r.runtime.services.modo = modo
        inputs = (await r.step(4)).body["inputs"]
        assert inputs["imbalance_price"] == {"value": 9.5, "settlement_period": T0.isoformat()}
        assert inputs["imbalance_volume"]["value"] == -120.0


async def test_a_fast_clock_does_not_cut_a_write_short_of_a_socket_round_trip() -> None:
    # At 288x half a 4 s period is 7 ms of real time: a battery answering in 30 ms real must still be
    # written, not abandoned (which drops its connection), while a real-speed period keeps its clock budget.
    from controller.core.clock import ScaledClock

    text = config_text() + "simulator:\n  faults:\n    bess: {latency_s: 0.03}\n"
    config = parse_site(text)
    clock = ScaledClock(T0, speed=288.0)
    runtime = Runtime(site=LoadedSite(config, "<test>", "0"), clock=clock)
    async with ModbusSite(config, clock, names={"bess"}):
        battery = create_device(config.device("bess"), clock, DeviceLinks())
        runtime.services.devices = {"bess": battery}
        loop = control_loop(config, runtime)
        try:
            assert await loop._write(-20.0) is True
            assert await loop._write(-30.0) is True
            assert loop.write_timeouts == 0 and loop.writes == 2
        finally:
            await battery.close()
