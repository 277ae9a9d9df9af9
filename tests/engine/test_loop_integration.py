"""The control loop in the daemon with the real poll scheduler, PowerPack and Acuvim drivers, against the
simulated battery and site meter on real sockets (scaled clock)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import yaml

from controller.config import LoadedSite, parse_site
from controller.control_loop import ControlLoop
from controller.core.bus import DecisionRecord
from controller.core.clock import ScaledClock
from controller.daemon import Daemon
from controller.wiring import control
from controller.wiring import devices as pollers
from devices.modbus import decode
from devices.powerpack import registers as r
from simulator.modbus_devices import ModbusSite, PowerPackBank
from tests.helpers import eventually, free_port


def site_doc(bess_port: int, meter_port: int) -> dict[str, Any]:
    return {
        "site": {"id": "it", "name": "integration"},
        "devices": [
            {"type": "powerpack", "name": "bess", "id": "00000000-0000-4000-8000-0000000000a1", "host": "127.0.0.1",
             "port": bess_port, "poll_interval_s": 1, "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000},
            {"type": "acuvim2", "name": "site-meter", "id": "00000000-0000-4000-8000-0000000000a2",
             "host": "127.0.0.1", "port": meter_port, "poll_interval_s": 1, "ct1": 800, "ct2": 5},
        ],
        "controller": {"site_meter": "site-meter", "battery": "bess", "period_s": 4, "max_reading_age_s": 30,
                       "soe_min_kwh": 50, "soe_max_kwh": 950, "battery_charge_limit_kw": 200,
                       "battery_discharge_limit_kw": 200, "site_import_limit_kw": 300, "site_export_limit_kw": 350,
                       "modes": [{"type": "import_avoidance", "periods": [{"start": "00:00", "end": "24:00"}]}]},
        "simulator": {"seed": 5, "site_model": {"base_load_kw": 60, "peak_load_kw": 0, "solar_peak_kw": 0,
                                                "initial_soe_kwh": 600}},
    }


def last_power_kw(bank: PowerPackBank) -> float | None:
    writes = [v for a, v in bank.write_log if a == r.REAL_POWER_W]
    return decode(writes[-1], "int32") / 1000 if writes else None


async def test_loop_commands_the_simulated_battery_and_idles_it_on_stop() -> None:
    config = parse_site(yaml.safe_dump(site_doc(free_port(), free_port())), "<it>")
    clock = ScaledClock(datetime(2026, 6, 3, 12, 0, tzinfo=UTC), speed=4)
    daemon = Daemon("<it>", clock, builders=[pollers, control])
    async with ModbusSite(config, clock) as sim:
        bank = sim.bank("bess")
        assert isinstance(bank, PowerPackBank)
        task = asyncio.create_task(daemon.run(LoadedSite(config, "<it>", "0")))
        decisions: list[DecisionRecord] = []
        try:
            await eventually(lambda: daemon.runtime is not None, timeout=20)
            assert daemon.runtime is not None
            daemon.runtime.bus.decisions.on(decisions.append)
            await eventually(lambda: any(d.body["written"] and d.body["target_kw"] > 0 for d in decisions),
                             timeout=30)
            loop = daemon.runtime.services.control
            assert isinstance(loop, ControlLoop)
            written = [d for d in decisions if d.body["written"]]
            assert written[-1].body["active_modes"] == ["import_avoidance"]
            assert written[-1].body["inputs"]["bess_soe_kwh"] is not None
            # What the loop decided is what reached the battery's registers.
            # (written in whole watts)
            await eventually(lambda: abs((last_power_kw(bank) or 0.0) - (loop.commanded_kw or 0.0)) < 0.001,
                             timeout=10)
            assert 0 < loop.commanded_kw <= 200
        finally:
            daemon.request_stop()
            with contextlib.suppress(asyncio.CancelledError):
                assert await asyncio.wait_for(task, 30) == 0
        assert last_power_kw(bank) == 0.0  # the loop idles the battery on its way out
