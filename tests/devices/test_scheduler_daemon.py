"""The poll scheduler inside the real daemon: devices registered for the control loop, reload restarts one poller."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controller.config import load_site
from controller.core.clock import RealClock
from controller.core.reading import Reading
from controller.daemon import Daemon
from controller.wiring import devices as devices_components
from simulator.modbus_devices import ModbusSite
from tests.helpers import eventually, free_port

SITE = """
site: {{id: sched, name: scheduler in the daemon}}
devices:
  - {{type: powerpack, name: bess, id: 7b0d0c6e-5d2a-4c43-9a57-000000000001, host: 127.0.0.1, port: {bess},
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000, poll_interval_s: 1, telemetry_interval_s: 1}}
  - {{type: acuvim2, name: site-meter, id: 7b0d0c6e-5d2a-4c43-9a57-000000000002, host: 127.0.0.1, port: {meter},
     ct1: {ct1}, ct2: 5, poll_interval_s: 1, telemetry_interval_s: 1}}
simulator: {{seed: 9, site_model: {{initial_soe_kwh: 300}}}}
"""


async def test_daemon_polls_every_device_and_a_reload_restarts_only_the_changed_one(tmp_path: Path) -> None:
    ports = {"bess": free_port(), "meter": free_port()}
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(ct1=800, **ports))
    clock = RealClock()
    daemon = Daemon(str(path), clock, builders=[devices_components])
    async with ModbusSite(load_site(str(path)).config, clock):
        task = asyncio.create_task(daemon.run())
        await eventually(lambda: daemon.runtime is not None and bool(daemon.runtime.services.devices))
        runtime = daemon.runtime
        assert runtime is not None
        recorded: list[Reading] = []
        runtime.bus.readings.on(recorded.append)
        devices = runtime.services.devices
        bess, meter = devices["bess"], devices["site-meter"]
        assert set(daemon.components) == {"poll:bess", "poll:site-meter"}
        await eventually(lambda: {x.device for x in recorded} == {"bess", "site-meter"}, timeout=30)
        soe = runtime.state.get(bess.config.id, "soe_kwh")
        assert soe is not None and soe.value == 300.0
        assert all(x.time.microsecond == 0 for x in recorded)  # whole-second slots

        path.write_text(SITE.format(ct1=600, **ports))
        assert await daemon.reload()
        assert devices["bess"] is bess  # untouched
        assert devices["site-meter"] is not meter and devices["site-meter"].config.ct1 == 600
        assert runtime.health["site-meter"] is devices["site-meter"].health
        polls_before = bess.health.polls_ok
        new_meter = devices["site-meter"]
        await eventually(lambda: new_meter.health.polls_ok > 0 and bess.health.polls_ok > polls_before, timeout=30)
        assert not meter.conn.connected  # the old poller closed its device on the way out
        daemon.request_stop()
        assert await asyncio.wait_for(task, timeout=30) == 0
