"""Daemon lifecycle with real signals: shutdown with tasks in flight, hot reload, bad reload."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.config import SiteConfig
from controller.core.clock import RealClock
from controller.core.component import STOP_CONTROL, STOP_OUTBOX, STOP_POLLERS, ComponentSpec
from controller.daemon import Daemon
from controller.runtime import Runtime
from tests.helpers import eventually
from uploader.delivery import SinkCounters

SITE = """\
site: {id: t1, name: Test}
devices:
  - {type: acuvim2, name: m1, id: 00000000-0000-4000-8000-000000000001, host: 127.0.0.1, port: 15021}
  - {type: acuvim2, name: m2, id: 00000000-0000-4000-8000-000000000002, host: 127.0.0.1, port: 15022}
"""


class Recorder:
    """Components that run until cancelled and record their starts and (ordered) stops."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.stopped: list[str] = []

    def provider(self, config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
        specs = [self._spec(f"poll:{d.name}", d.model_dump_json(), STOP_POLLERS) for d in config.devices]
        specs.append(self._spec("control", "control", STOP_CONTROL))
        specs.append(self._spec("outbox", "outbox", STOP_OUTBOX))
        return specs

    def _spec(self, name: str, key: str, order: int) -> ComponentSpec:
        async def run() -> None:
            self.started.append(name)
            try:
                await asyncio.sleep(3600)  # "in flight": waiting on I/O
            finally:
                await asyncio.sleep(0.01)  # cleanup that itself awaits (flush, idle command)
                self.stopped.append(name)

        return ComponentSpec(name=name, key=key, factory=run, stop_order=order)


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    p = tmp_path / "site.yaml"
    p.write_text(SITE)
    return p


async def test_sigterm_stops_everything_in_order_within_budget(site_file: Path) -> None:
    rec = Recorder()
    daemon = Daemon(str(site_file), RealClock(), builders=[rec.provider])
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: len(rec.started) == 4)
    t0 = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    code = await asyncio.wait_for(task, 10)
    assert code == 0
    assert time.monotonic() - t0 < 10
    assert sorted(rec.stopped[:2]) == ["poll:m1", "poll:m2"]
    assert rec.stopped[2:] == ["control", "outbox"]


async def test_sighup_reload_restarts_only_changed_components(site_file: Path) -> None:
    rec = Recorder()
    daemon = Daemon(str(site_file), RealClock(), builders=[rec.provider])
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: len(rec.started) == 4)
    site_file.write_text(SITE.replace("port: 15022", "port: 15023"))
    os.kill(os.getpid(), signal.SIGHUP)
    await eventually(lambda: daemon.reloads_ok == 1)
    assert rec.stopped == ["poll:m2"]
    assert rec.started.count("poll:m2") == 2 and rec.started.count("poll:m1") == 1
    assert daemon.runtime is not None and daemon.runtime.config.devices[1].port == 15023
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0


async def test_bad_reload_keeps_running_on_the_old_config(site_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder()
    daemon = Daemon(str(site_file), RealClock(), builders=[rec.provider])
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: len(rec.started) == 4)
    assert daemon.runtime is not None
    events = daemon.runtime.bus.events.subscribe()
    old_sha = daemon.runtime.site.sha256
    site_file.write_text(SITE.replace("port: 15022", "port: seventy"))
    daemon.request_reload()
    await eventually(lambda: daemon.reloads_failed == 1)
    assert daemon.runtime.site.sha256 == old_sha
    assert rec.stopped == [] and daemon.components == ["control", "outbox", "poll:m1", "poll:m2"]
    event = events.get_nowait()
    assert event.kind == "config_reload_rejected" and event.level == "Error"
    assert any("devices.1.port" in p for p in event.data["problems"])
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0


async def test_critical_component_failure_stops_the_daemon_with_an_error(site_file: Path) -> None:
    async def broken() -> None:
        raise RuntimeError("outbox database unusable")

    def provider(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
        return [ComponentSpec("outbox", "k", broken, critical=True, stop_order=STOP_OUTBOX)]

    daemon = Daemon(str(site_file), RealClock(), builders=[provider])
    assert await asyncio.wait_for(daemon.run(), 10) == 1


@dataclass(frozen=True)
class FakeDevice:
    port: int


async def test_reload_whose_build_fails_leaves_shared_objects_as_they_were(site_file: Path) -> None:
    """A builder that registers a device object and a sink's counters, then another builder that fails:
    the running components must keep finding the objects they started with."""
    builds = 0

    def registering(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
        runtime.services.devices["m1"] = FakeDevice(config.devices[0].port)  # type: ignore[assignment]
        runtime.services.sinks["cloud"] = SinkCounters(batch_size=len(config.devices))
        return []

    def failing_on_reload(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
        nonlocal builds
        builds += 1
        if builds > 1:
            raise RuntimeError("provider bug")
        return []

    daemon = Daemon(str(site_file), RealClock(), builders=[registering, failing_on_reload])
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: daemon.runtime is not None and "m1" in daemon.runtime.services.devices)
    assert daemon.runtime is not None
    before = (daemon.runtime.services.devices["m1"], daemon.runtime.services.sinks["cloud"])
    assert before[0].port == 15021
    site_file.write_text(SITE.replace("port: 15021", "port: 15031"))
    assert await daemon.reload() is False
    assert daemon.reloads_failed == 1
    assert (daemon.runtime.services.devices["m1"], daemon.runtime.services.sinks["cloud"]) == before
    assert set(daemon.runtime.services.devices) == {"m1"} and set(daemon.runtime.services.sinks) == {"cloud"}
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0
