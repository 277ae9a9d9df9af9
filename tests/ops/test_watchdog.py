"""sd_notify against a fake NOTIFY_SOCKET: READY after the first poll round, WATCHDOG only while the
control loop makes progress, STATUS lines, STOPPING on shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from controller.config import load_site
from controller.core.clock import ManualClock
from controller.core.reading import Reading
from controller.ops.watchdog import Watchdog, ping_interval_s, systemd_notifier
from controller.runtime import Runtime
from devices.base import DeviceHealth
from tests.ops.conftest import BESS_ID, NotifySocket, write_site

START = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


class ControlLoop:
    """A heartbeat source shaped like the control loop: beats once per tick until it is blocked."""

    def __init__(self, runtime: Runtime, clock: ManualClock) -> None:
        self.runtime = runtime
        self.clock = clock
        self.running = asyncio.Event()
        self.running.set()
        self.last_decision = {"target_kw": -42.0, "effective_modes": ["export_avoidance"]}

    async def run(self) -> None:
        while True:
            await self.running.wait()  # a blocked loop: waits forever without beating
            self.runtime.beat("control")
            await self.clock.sleep(1.0)


def make_runtime(tmp_path: Path, clock: ManualClock, **watchdog: float) -> Runtime:
    site = write_site(tmp_path / "site.yaml", ops={"admin": {"enabled": False}, "watchdog": watchdog})
    return Runtime(site=load_site(site), clock=clock)


def attempt_first_round(runtime: Runtime) -> None:
    runtime.health["bess"] = DeviceHealth()
    runtime.health["bess"].record_success(START)
    runtime.health["site-meter"] = DeviceHealth()
    runtime.health["site-meter"].record_failure("timeout")


async def test_ready_only_after_every_device_was_polled(tmp_path: Path, notify_socket: NotifySocket) -> None:
    clock = ManualClock(START)
    runtime = make_runtime(tmp_path, clock, ready_timeout_s=600, ping_interval_s=5)
    task = asyncio.create_task(Watchdog(runtime, systemd_notifier()).run())
    await notify_socket.advance(clock, 30)
    assert notify_socket.count("READY=1") == 0
    assert any(m.startswith("STATUS=starting") for m in notify_socket.messages)
    runtime.health["bess"] = DeviceHealth()
    runtime.health["bess"].record_success(START)
    await notify_socket.advance(clock, 30)
    assert notify_socket.count("READY=1") == 0  # the site meter has not been tried yet
    attempt_first_round(runtime)
    await notify_socket.advance(clock, 1)
    assert notify_socket.count("READY=1") == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_ready_after_the_bound_when_nothing_polls(tmp_path: Path, notify_socket: NotifySocket) -> None:
    clock = ManualClock(START)
    runtime = make_runtime(tmp_path, clock, ready_timeout_s=20, ping_interval_s=5)
    task = asyncio.create_task(Watchdog(runtime, systemd_notifier()).run())
    await notify_socket.advance(clock, 19)
    assert notify_socket.count("READY=1") == 0
    await notify_socket.advance(clock, 2)
    assert notify_socket.count("READY=1") == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_pings_follow_the_cadence_and_stop_when_the_control_loop_blocks(
        tmp_path: Path, notify_socket: NotifySocket) -> None:
    clock = ManualClock(START)
    runtime = make_runtime(tmp_path, clock, ping_interval_s=5, heartbeat_max_age_s=12)
    control = ControlLoop(runtime, clock)
    runtime.services.control = control
    attempt_first_round(runtime)
    control_task = asyncio.create_task(control.run())
    watchdog = Watchdog(runtime, systemd_notifier())
    task = asyncio.create_task(watchdog.run())
    await notify_socket.advance(clock, 0)
    assert notify_socket.count("READY=1") == 1
    first = notify_socket.count("WATCHDOG=1")
    await notify_socket.advance(clock, 50)  # ten periods of 5 s
    assert notify_socket.count("WATCHDOG=1") - first == 10

    control.running.clear()  # the control loop hangs
    await notify_socket.advance(clock, 10)  # still within the allowed age: pings continue
    blocked_at = notify_socket.count("WATCHDOG=1")
    assert blocked_at - first == 12
    await notify_socket.advance(clock, 60)
    stalled = notify_socket.count("WATCHDOG=1")
    assert stalled - blocked_at <= 1  # at most the one period still inside the allowed age
    await notify_socket.advance(clock, 60)
    assert notify_socket.count("WATCHDOG=1") == stalled  # no pings while hung: systemd will restart us
    assert watchdog.withheld >= 12
    assert any("STATUS=stalled: control" in m for m in notify_socket.messages)

    control.running.set()  # progress again: pings resume
    await notify_socket.advance(clock, 10)
    assert notify_socket.count("WATCHDOG=1") >= stalled + 2

    task.cancel()
    control_task.cancel()
    await asyncio.gather(task, control_task, return_exceptions=True)
    notify_socket.drain()
    assert notify_socket.messages[-1].startswith("STOPPING=1")


async def test_outbox_heartbeat_required_only_when_the_outbox_runs(tmp_path: Path,
                                                                   notify_socket: NotifySocket) -> None:
    clock = ManualClock(START)
    site = write_site(tmp_path / "site.yaml", controller=False,
                      ops={"admin": {"enabled": False}, "watchdog": {"ping_interval_s": 5, "heartbeat_max_age_s": 8}})
    runtime = Runtime(site=load_site(site), clock=clock)
    attempt_first_round(runtime)
    runtime.services.control = object()  # no controller block: no control heartbeat is required
    task = asyncio.create_task(Watchdog(runtime, systemd_notifier()).run())
    await notify_socket.advance(clock, 30)
    pinged = notify_socket.count("WATCHDOG=1")
    assert pinged >= 6

    runtime.services.outbox = object()  # an outbox writer that never commits
    await notify_socket.advance(clock, 60)
    withheld_from = notify_socket.count("WATCHDOG=1")
    assert withheld_from <= pinged + 2  # its first sight gives it the allowed age, then pings stop
    await notify_socket.advance(clock, 60)
    assert notify_socket.count("WATCHDOG=1") == withheld_from
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_status_line_has_mode_setpoint_soe_and_backlog(tmp_path: Path, notify_socket: NotifySocket) -> None:
    clock = ManualClock(START)
    runtime = make_runtime(tmp_path, clock, ping_interval_s=5)
    attempt_first_round(runtime)
    runtime.state.update(Reading(UUID(BESS_ID), "bess", "powerpack", START, {"soe_kwh": 612.5}, START))
    runtime.services.control = ControlLoop(runtime, clock)
    task = asyncio.create_task(Watchdog(runtime, systemd_notifier()).run())
    await notify_socket.advance(clock, 0)
    ready = [m for m in notify_socket.messages if m.startswith("READY=1")]
    assert ready == ["READY=1\nSTATUS=mode=export_avoidance setpoint=-42.0kW soe=612.5kWh backlog=-"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_ping_interval_defaults_to_half_the_systemd_watchdog() -> None:
    assert ping_interval_s(None, {"WATCHDOG_USEC": "30000000"}) == 15.0
    assert ping_interval_s(3.0, {"WATCHDOG_USEC": "30000000"}) == 3.0
    assert ping_interval_s(None, {}) == 10.0
