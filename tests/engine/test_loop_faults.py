"""The site import limit held with a flaky battery link (issue 15, item 3), against the simulated battery and
site meter on real sockets, on a scaled clock.

An operator asks the battery to charge flat out while the site draws 150 kW: only the envelope stands
between that and the 300 kW import limit. With 5 % garbage, exception, timeout and drop faults on the
PowerPack and the site meter, the physics' site import never goes above the limit plus the margin. Then
the site meter and then the battery stop answering: the decisions reach 0 kW within two control periods
of the data going stale, and the ticks keep coming on time (writes time out inside the period).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from controller.config import LoadedSite, parse_site
from controller.control_loop import SITE_POWER_FIELD, SOE_FIELD, ControlLoop
from controller.core.bus import DecisionRecord
from controller.core.clock import ScaledClock
from controller.daemon import Daemon
from controller.wiring import control
from controller.wiring import devices as pollers
from simulator.config import FaultConfig
from simulator.modbus_devices import ModbusSite
from simulator.physics import PhysicsStep
from tests.helpers import eventually, free_port

SPEED = 5.0
PERIOD_S = 4.0
MAX_AGE_S = 12.0
LIMIT_KW = 300.0
MARGIN_KW = 20.0
FLAKY = {"garbage_probability": 0.05, "exception_probability": 0.05, "timeout_probability": 0.05,
         "drop_probability": 0.05}


def site_doc(bess_port: int, meter_port: int) -> dict[str, Any]:
    # Request timeouts of 0.2 s real are 1 s on this clock.
    return {
        "site": {"id": "flaky", "name": "flaky battery link"},
        "devices": [
            {"type": "powerpack", "name": "bess", "id": "00000000-0000-4000-8000-0000000000b1", "host": "127.0.0.1",
             "port": bess_port, "poll_interval_s": 1, "timeout_s": 0.2, "backoff_initial_s": 0.2,
             "backoff_max_s": 0.4, "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000,
             "command_timeout_s": 6},
            {"type": "acuvim2", "name": "site-meter", "id": "00000000-0000-4000-8000-0000000000b2",
             "host": "127.0.0.1", "port": meter_port, "poll_interval_s": 1, "timeout_s": 0.2,
             "backoff_initial_s": 0.2, "backoff_max_s": 0.4, "ct1": 800, "ct2": 5},
        ],
        "controller": {"site_meter": "site-meter", "battery": "bess", "period_s": PERIOD_S,
                       "max_reading_age_s": MAX_AGE_S, "soe_min_kwh": 50, "soe_max_kwh": 950,
                       "battery_charge_limit_kw": 250, "battery_discharge_limit_kw": 250,
                       "site_import_limit_kw": LIMIT_KW, "site_export_limit_kw": 350,
                       "site_limit_margin_kw": MARGIN_KW, "modes": []},
        "simulator": {"seed": 11, "site_model": {"base_load_kw": 150, "peak_load_kw": 0, "solar_peak_kw": 0,
                                                 "noise_kw": 3, "initial_soe_kwh": 300},
                      "faults": {"bess": FLAKY, "site-meter": FLAKY}},
    }


async def test_site_limit_holds_with_a_flaky_battery_link_and_stale_data_idles_within_two_periods() -> None:
    config = parse_site(yaml.safe_dump(site_doc(free_port(), free_port())), "<flaky>")
    clock = ScaledClock(datetime(2026, 6, 3, 12, 0, tzinfo=UTC), speed=SPEED)
    daemon = Daemon("<flaky>", clock, builders=[pollers, control])
    steps: list[PhysicsStep] = []
    decisions: list[DecisionRecord] = []
    async with ModbusSite(config, clock) as sim:
        advance = sim.model.advance_to

        def recording(t: float) -> list[PhysicsStep]:
            out = advance(t)
            steps.extend(out)
            return out

        sim.model.advance_to = recording  # type: ignore[method-assign]
        physics = asyncio.create_task(sim.run_physics())
        task = asyncio.create_task(daemon.run(LoadedSite(config, "<flaky>", "0")))
        try:
            await eventually(lambda: daemon.runtime is not None, timeout=20)
            assert daemon.runtime is not None
            runtime = daemon.runtime
            runtime.bus.decisions.on(decisions.append)
            runtime.overrides.manual_setpoint_kw = -1000.0  # charge as hard as allowed, all the time
            runtime.overrides.source = "test"
            loop = runtime.services.control
            assert isinstance(loop, ControlLoop)
            # Three simulated minutes of a flaky link: 45 battery writes, each failing about one time in five.
            start = clock.now()
            await eventually(lambda: clock.now() >= start + timedelta(minutes=3), timeout=120, interval=0.2)
            flaky_steps = list(steps)
            charging = [s for s in flaky_steps if s.battery_kw < -50]
            assert len(charging) > len(flaky_steps) // 2  # the battery did charge into the limit
            worst = max(s.site_kw for s in flaky_steps)
            over = [(datetime.fromtimestamp(x.time, UTC).isoformat(), round(x.site_kw, 1), x.battery_kw, x.setpoint_kw)
                    for x in flaky_steps if x.site_kw > LIMIT_KW + MARGIN_KW][:5]
            print(f"flaky link: {len(flaky_steps)} s simulated, peak site import {worst:.1f} kW, "
                  f"write failures {loop.write_failures}, write timeouts {loop.write_timeouts}")
            assert worst <= LIMIT_KW + MARGIN_KW, f"site import peaked at {worst:.1f} kW: {over}"
            assert loop.write_failures > 0 and runtime.services.devices["bess"].health.polls_failed > 0

            # The site meter stops answering: 0 kW within two periods of the data going stale.
            sim.units["site-meter"].faults.config = FaultConfig(timeout_probability=1.0)
            await eventually(lambda: any(d.body["constraints"] == ["stale_data"] for d in decisions), timeout=60)
            last_site = runtime.state.get(config.device("site-meter").id, SITE_POWER_FIELD)
            assert last_site is not None
            stale_at = last_site.time + timedelta(seconds=MAX_AGE_S)
            idle = next(d for d in decisions if d.body["constraints"] == ["stale_data"])
            assert idle.body["target_kw"] == 0.0
            assert idle.time <= stale_at + timedelta(seconds=2 * PERIOD_S)
            await eventually(lambda: any(d.body["constraints"] == ["stale_data"] and d.body["written"]
                                         for d in decisions), timeout=30)

            # Both heal; then the battery stops answering (writes time out): SoE goes stale, same bound,
            # and ticks keep their period although every write hangs.
            sim.units["site-meter"].faults.config = FaultConfig()
            sim.units["bess"].faults.config = FaultConfig()
            healed = clock.now()
            await eventually(lambda: any(d.time > healed and d.body["constraints"] != ["stale_data"]
                                         and d.body["written"] for d in decisions), timeout=60)
            sim.units["bess"].faults.config = FaultConfig(timeout_probability=1.0)
            cut = clock.now()
            await eventually(lambda: any(d.time > cut and d.body["constraints"] == ["stale_data"]
                                         for d in decisions), timeout=60)
            last_soe = runtime.state.get(config.device("bess").id, SOE_FIELD)
            assert last_soe is not None
            idle = next(d for d in decisions if d.time > cut and d.body["constraints"] == ["stale_data"])
            assert idle.body["target_kw"] == 0.0
            assert idle.time <= last_soe.time + timedelta(seconds=MAX_AGE_S + 2 * PERIOD_S)
            after_cut = [d.time for d in decisions if d.time > cut]
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(after_cut)]
            assert gaps and max(gaps) <= 2 * PERIOD_S, gaps  # a hung write never holds a tick up
            assert loop.write_timeouts > 0 or loop.write_failures > 0
        finally:
            daemon.request_stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 30)
            physics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await physics
