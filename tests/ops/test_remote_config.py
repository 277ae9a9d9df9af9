"""Remote config on the real daemon, poll scheduler and Modbus simulator: `flux-edge config apply` through
the admin endpoint and the MQTT reload command share one path: a good file is applied, a bad one changes
nothing, and one that validates but stops the site meter answering is rolled back by itself."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from controller.cli import main as cli
from controller.config import load_site
from controller.core.bus import Event
from controller.core.clock import RealClock
from controller.daemon import Daemon
from controller.ops.mqtt_commands import CommandHandler, parse
from controller.ops.provider import ops_components
from controller.wiring import devices as pollers
from simulator.modbus_devices import ModbusSite
from tests.helpers import eventually, free_port
from tests.ops.clients import subscriber
from tests.ops.conftest import site_dict

VERIFY_S = 10.0


def site_text(ports: dict[str, int], mqtt: dict[str, Any] | None = None, **changes: Any) -> bytes:
    site = site_dict(bess_port=ports["bess"], meter_port=ports["meter"],
                     ops={"admin": {"enabled": True, "port": ports["admin"]},
                          "remote_config": {"verify_timeout_s": VERIFY_S}},
                     simulator={"seed": 3, "site_model": {"initial_soe_kwh": 400}})
    if mqtt is not None:
        site["mqtt"] = mqtt
    for device in site["devices"]:
        device.update(changes.get(device["name"], {}))
    return yaml.safe_dump(site, sort_keys=False).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Running:
    def __init__(self, path: Path, daemon: Daemon, ports: dict[str, int]) -> None:
        self.path = path
        self.daemon = daemon
        self.ports = ports
        self.events: list[Event] = []

    @property
    def runtime(self) -> Any:
        assert self.daemon.runtime is not None
        return self.daemon.runtime

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    async def polled_again(self) -> None:
        health = self.runtime.health
        before = {n: (health[n], health[n].polls_ok) for n in ("bess", "site-meter")}
        await eventually(lambda: all(health[n] is not h or health[n].polls_ok > ok
                                     for n, (h, ok) in before.items()), timeout=30)


@contextlib.asynccontextmanager
async def start_daemon(tmp_path: Path, mqtt: dict[str, Any] | None = None) -> AsyncIterator[Running]:
    ports = {"bess": free_port(), "meter": free_port(), "admin": free_port()}
    path = tmp_path / "site.yaml"
    path.write_bytes(site_text(ports, mqtt))
    clock = RealClock()
    daemon = Daemon(str(path), clock, builders=[pollers, ops_components])
    async with ModbusSite(load_site(path).config, clock):
        task = asyncio.create_task(daemon.run())
        await eventually(lambda: daemon.runtime is not None)
        r = Running(path, daemon, ports)
        r.runtime.bus.events.on(r.events.append)
        await eventually(lambda: all(r.runtime.health.get(n) is not None and r.runtime.health[n].polls_ok > 0
                                     for n in ("bess", "site-meter")), timeout=30)
        try:
            yield r
        finally:
            daemon.request_stop()
            await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with start_daemon(tmp_path) as r:
        yield r


VERDICTS = ("applied:", "unchanged:", "rejected:", "rolled_back:", "failed:", "written:")


def verdict(out: str) -> str:
    """The command's own answer line (log lines of the in-process daemon share stdout in these tests)."""
    return next(line for line in reversed(out.splitlines()) if line.startswith(VERDICTS))


async def apply_cli(r: Running, new: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = await asyncio.to_thread(cli, ["config", "apply", "--site", str(r.path), str(new), "--actor", "ops-test"])
    return code, capsys.readouterr().out


async def test_good_file_is_applied_and_recorded(running: Running, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    r = running
    old = r.path.read_bytes()
    new = site_text(r.ports, **{"site-meter": {"ct1": 600}})
    (tmp_path / "new.yaml").write_bytes(new)
    code, out = await apply_cli(r, tmp_path / "new.yaml", capsys)
    assert code == 0, out
    assert verdict(out).startswith(f"applied: {sha(new)[:12]}")
    assert r.path.read_bytes() == new
    assert (tmp_path / "site.yaml.last-good").read_bytes() == old
    assert r.runtime.site.sha256 == sha(new)
    assert r.runtime.services.devices["site-meter"].config.ct1 == 600
    applied = [e for e in r.events if e.kind == "config_applied"]
    assert len(applied) == 1
    assert applied[0].data["actor"] == "ops-test"
    assert applied[0].data["sha256"] == sha(new)
    assert applied[0].data["previous_sha256"] == sha(old)
    assert r.daemon.reloads_ok == 1

    # The same file again: nothing to do.
    code, out = await apply_cli(r, tmp_path / "new.yaml", capsys)
    assert (code, verdict(out).split(":")[0]) == (0, "unchanged")


async def test_bad_file_changes_nothing(running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = running
    old = r.path.read_bytes()
    bad = old.replace(b"soe_min_kwh: 50", b"soe_min_kwh: 5000")
    (tmp_path / "bad.yaml").write_bytes(bad)
    code, out = await apply_cli(r, tmp_path / "bad.yaml", capsys)
    assert code == 2
    assert "bad.yaml:" in out and "controller.soe_min_kwh: must be below soe_max_kwh" in out

    # The daemon checks for itself too, whatever the client did.
    async with httpx.AsyncClient() as client:
        response = await client.post(f"http://127.0.0.1:{r.ports['admin']}/config/apply", content=bad,
                                     headers={"X-Flux-Actor": "direct"}, timeout=30)
    assert response.status_code == 422
    assert response.json()["status"] == "rejected"
    assert any("soe_min_kwh" in p for p in response.json()["problems"])
    assert r.path.read_bytes() == old
    assert not (tmp_path / "site.yaml.last-good").exists()
    assert r.runtime.site.sha256 == sha(old)
    assert r.daemon.reloads_ok == 0 and r.daemon.reloads_failed == 0
    assert "config_apply_rejected" in r.kinds()
    rejected = next(e for e in r.events if e.kind == "config_apply_rejected")
    assert rejected.data["actor"] == "direct" and rejected.data["sha256"] == sha(bad)


async def test_file_that_breaks_polling_is_rolled_back(running: Running, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    r = running
    old = r.path.read_bytes()
    broken = site_text(r.ports, **{"site-meter": {"port": free_port()}})  # validates; nothing answers there
    (tmp_path / "broken.yaml").write_bytes(broken)
    code, out = await apply_cli(r, tmp_path / "broken.yaml", capsys)
    assert code == 1, out
    assert verdict(out).startswith(f"rolled_back: {sha(broken)[:12]}")
    assert "no successful poll of site-meter" in verdict(out)
    assert r.path.read_bytes() == old
    assert r.runtime.site.sha256 == sha(old)
    assert r.runtime.services.devices["site-meter"].config.port == r.ports["meter"]
    rolled = next(e for e in r.events if e.kind == "config_rolled_back")
    assert rolled.level == "Error"
    assert rolled.data["actor"] == "ops-test"
    assert (rolled.data["sha256"], rolled.data["restored_sha256"]) == (sha(broken), sha(old))
    assert "config_applied" not in r.kinds()
    # A rolled-back reload is a failed one, not an ok one (nor is the restoring reload a success).
    assert (r.daemon.reloads_ok, r.daemon.reloads_failed) == (0, 1)
    await r.polled_again()


async def test_mqtt_reload_command_takes_the_same_path(running: Running) -> None:
    r = running
    handler = CommandHandler(r.runtime)
    good = site_text(r.ports, bess={"timeout_s": 0.8})
    outcome = await handler.execute(parse(
        b'{"eventId": "r1", "type": "reload", "source": "bob", "config": ' + _json(good) + b"}").command)
    assert outcome.status == "accepted", outcome
    assert r.path.read_bytes() == good
    assert next(e for e in r.events if e.kind == "config_applied").data["actor"] == "mqtt:bob"

    broken = site_text(r.ports, bess={"timeout_s": 0.8, "port": free_port()})
    outcome = await handler.execute(parse(
        b'{"eventId": "r2", "type": "reload", "config": ' + _json(broken) + b"}").command)
    assert outcome.status == "failed"
    assert outcome.response.startswith("rolled back: no successful poll of bess")
    assert r.path.read_bytes() == good
    await r.polled_again()

    # Without a body, the file on disk is re-read through the same checks.
    outcome = await handler.execute(parse(b'{"eventId": "r3", "type": "reload"}').command)
    assert (outcome.status, outcome.data["result"]) == ("accepted", "unchanged")


async def test_status_command_shows_the_running_daemon(running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    r = running
    code = await asyncio.to_thread(cli, ["status", "--site", str(r.path)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"config {r.runtime.site.sha256[:12]}" in out
    lines = out.splitlines()
    bess = next(line for line in lines if line.startswith("bess "))
    assert bess.split()[1:3] == ["powerpack", "ok"]
    assert "SoE 400.0 kWh" in out
    assert "site power" in out and "no upload sinks configured" in out


def _json(text: bytes) -> bytes:
    import json

    return json.dumps(text.decode()).encode()


async def test_apply_without_a_running_daemon_installs_for_next_start(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ports = {"bess": free_port(), "meter": free_port(), "admin": free_port()}
    path = tmp_path / "site.yaml"
    old = site_text(ports)
    path.write_bytes(old)
    new = site_text(ports, bess={"timeout_s": 0.9})
    (tmp_path / "new.yaml").write_bytes(new)
    code = await asyncio.to_thread(cli, ["config", "apply", "--site", str(path), str(tmp_path / "new.yaml")])
    out = capsys.readouterr().out
    assert code == 0
    assert "takes effect when the daemon starts" in verdict(out)
    assert path.read_bytes() == new
    assert (tmp_path / "site.yaml.last-good").read_bytes() == old


async def test_mqtt_reload_that_restarts_the_bridge_is_still_answered(tmp_path: Path,
                                                                      mqtt_addr: tuple[str, int]) -> None:
    host, port = mqtt_addr
    mqtt = {"host": host, "port": port, "topic_prefix": f"rc{free_port()}", "reconnect_initial_s": 0.2}
    async with start_daemon(tmp_path, mqtt) as r:
        base = f"{mqtt['topic_prefix']}/testsite"
        await eventually(lambda: r.runtime.services.mqtt is not None and r.runtime.services.mqtt.connected, timeout=30)
        old_bridge = r.runtime.services.mqtt
        # The new file changes the MQTT settings: applying it restarts the very bridge the command came in on.
        new = site_text(r.ports, {**mqtt, "keepalive_s": 45})
        async with subscriber(host, port, f"{base}/#") as sub:
            ack = await sub.command(base, {"eventId": "swap", "type": "reload", "source": "carol",
                                           "config": new.decode()}, timeout=60)
        assert ack["request"]["status"] == "accepted", ack
        assert ack["request"]["result"] == "applied"
        assert r.path.read_bytes() == new
        assert r.runtime.services.mqtt is not old_bridge
        assert r.runtime.config.mqtt.keepalive_s == 45
        applied = next(e for e in r.events if e.kind == "config_applied")
        assert applied.data["actor"] == "mqtt:carol"


async def test_a_hand_edited_file_reloaded_over_mqtt_is_rolled_back_to_what_ran(running: Running) -> None:
    r = running
    old = r.path.read_bytes()
    # Someone edits the file in place (no last-good copy exists), then asks for a reload from disk.
    broken = site_text(r.ports, **{"site-meter": {"port": free_port()}})
    r.path.write_bytes(broken)
    outcome = await CommandHandler(r.runtime).execute(parse(b'{"eventId": "disk", "type": "reload"}').command)
    assert outcome.status == "failed"
    assert outcome.data["result"] == "rolled_back"
    assert r.path.read_bytes() == old  # the bytes that were running when the daemon started
    assert (r.path.parent / "site.yaml.last-good").read_bytes() == old
    assert r.runtime.site.sha256 == sha(old)
    await r.polled_again()
