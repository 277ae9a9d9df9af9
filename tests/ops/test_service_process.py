"""`flux-edge run` as systemd runs it: a separate process with NOTIFY_SOCKET and WATCHDOG_USEC set, every
registered provider loaded, reloaded by SIGHUP and stopped by SIGTERM; `flux-edge status` asks it.
The MQTT broker it is configured for is down throughout."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import yaml

from controller.config import load_site
from controller.core.clock import RealClock
from simulator.modbus_devices import ModbusSite
from tests.conftest import ROOT
from tests.helpers import eventually, free_port
from tests.ops.conftest import NotifySocket, site_dict


async def flux_edge(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def test_run_under_a_fake_systemd(tmp_path: Path, notify_socket: NotifySocket) -> None:
    ports = {"bess": free_port(), "meter": free_port(), "admin": free_port(), "metrics": free_port()}
    site = site_dict(bess_port=ports["bess"], meter_port=ports["meter"],
                     ops={"admin": {"enabled": True, "port": ports["admin"]}},
                     metrics={"enabled": True, "port": ports["metrics"]},
                     buffer={"path": str(tmp_path / "outbox")},
                     # No broker answers there: polling, control and the watchdog carry on regardless.
                     mqtt={"host": "127.0.0.1", "port": free_port(), "reconnect_initial_s": 0.2},
                     simulator={"seed": 4, "site_model": {"initial_soe_kwh": 300}})
    site["devices"][1].update({"ct1": 800, "ct2": 5})
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000"}
    env.pop("FLUX_CLOCK", None)

    async with ModbusSite(load_site(path).config, RealClock()):
        daemon = await flux_edge("run", "--site", str(path), "--log-format", "json", env=env)
        assert daemon.stdout is not None
        output = asyncio.create_task(daemon.stdout.read())  # drained all along: a full pipe would stall it
        try:
            await eventually(lambda: notify_socket.count("READY=1") == 1, timeout=60)
            await eventually(lambda: notify_socket.count("WATCHDOG=1") >= 3, timeout=60)  # every 0.5 s
            assert any(m.startswith("STATUS=mode=") for m in notify_socket.messages)
            # On the real clock its timers have 50 ms of slack (controller/core/wakeups.py).
            assert Path(f"/proc/{daemon.pid}/timerslack_ns").read_text().strip() == "50000000"

            status = await flux_edge("status", "--site", str(path), "--json")
            out, _ = await asyncio.wait_for(status.communicate(), 60)
            assert status.returncode == 0, out
            view = json.loads(out)
            assert {d["name"] for d in view["devices"]} == {"bess", "site-meter"}
            assert view["reloads_ok"] == 0
            assert view["mqtt_connected"] is False
            assert all(d["polls_ok"] > 0 for d in view["devices"])
            assert view["target_kw"] is not None  # the control loop decides

            daemon.send_signal(signal.SIGHUP)  # `systemctl reload`: ExecReload sends SIGHUP

            async def reloaded() -> bool:
                proc = await flux_edge("status", "--site", str(path), "--json")
                text, _ = await asyncio.wait_for(proc.communicate(), 60)
                return proc.returncode == 0 and json.loads(text)["reloads_ok"] == 1

            for _ in range(100):
                if await reloaded():
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("SIGHUP did not reload the daemon")

            daemon.send_signal(signal.SIGTERM)
            await asyncio.wait_for(daemon.wait(), 60)
            out = await asyncio.wait_for(output, 60)
        finally:
            if daemon.returncode is None:
                daemon.kill()
                await daemon.wait()
    assert daemon.returncode == 0, out.decode()[-2000:]
    assert notify_socket.count("STOPPING=1") == 1
    # STOPPING=1 comes as shutdown begins: before the pollers and the control loop are stopped.
    log = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    events = [e["event"] for e in log]
    assert events.index("systemd_stopping") < events.index("daemon_stopped")
