"""Shared pieces of the field-operations tests: site files and a fake systemd notify socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

BESS_ID = "7b0d0c6e-5d2a-4c43-9a57-00000000a001"
METER_ID = "7b0d0c6e-5d2a-4c43-9a57-00000000a002"
HEAT_ID = "7b0d0c6e-5d2a-4c43-9a57-00000000a003"


def site_dict(*, bess_port: int = 1502, meter_port: int = 1503, controller: bool = True,
              **blocks: Any) -> dict[str, Any]:
    site: dict[str, Any] = {
        "site": {"id": "testsite", "name": "Test site"},
        "devices": [
            {"type": "powerpack", "name": "bess", "id": BESS_ID, "host": "127.0.0.1", "port": bess_port,
             "poll_interval_s": 1, "telemetry_interval_s": 1, "timeout_s": 0.5, "nameplate_power_kw": 250,
             "nameplate_energy_kwh": 1000},
            {"type": "acuvim2", "name": "site-meter", "id": METER_ID, "host": "127.0.0.1", "port": meter_port,
             "poll_interval_s": 1, "telemetry_interval_s": 1, "timeout_s": 0.5},
        ],
        "metrics": {"enabled": False},
        "ops": {"admin": {"enabled": False}},
    }
    if controller:
        site["controller"] = {
            "site_meter": "site-meter", "battery": "bess", "soe_min_kwh": 50, "soe_max_kwh": 950,
            "battery_charge_limit_kw": 200, "battery_discharge_limit_kw": 220, "site_import_limit_kw": 300,
            "site_export_limit_kw": 300,
            "modes": [{"type": "export_avoidance", "periods": [{"start": "00:00", "end": "24:00"}]},
                      {"type": "charge_to_soe", "name": "overnight", "periods": [{"start": "01:00", "end": "04:00"}],
                       "params": {"soe_kwh": 700}}],
        }
    for key, value in blocks.items():
        if isinstance(value, dict) and isinstance(site.get(key), dict):
            site[key] = {**site[key], **value}
        else:
            site[key] = value
    return site


def write_site(path: Path, **kwargs: Any) -> Path:
    path.write_text(yaml.safe_dump(site_dict(**kwargs), sort_keys=False))
    return path


class NotifySocket:
    """The systemd side of sd_notify: a datagram socket the daemon writes its state lines to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        """Every datagram received since the last drain (sends are synchronous, so nothing is in flight)."""
        new: list[str] = []
        while True:
            try:
                new.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                break
        self.messages.extend(new)
        return new

    async def advance(self, clock: Any, seconds: float, step: float = 1.0) -> None:
        """Advance a ManualClock in small steps, reading as we go (a datagram queue holds only ~10)."""
        remaining = seconds
        while True:
            await clock.advance(min(step, remaining))
            self.drain()
            remaining -= step
            if remaining <= 0:
                return

    def count(self, line: str) -> int:
        self.drain()
        return sum(1 for m in self.messages if line in m.split("\n"))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
async def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifySocket]:
    ns = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(ns.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    # Read as datagrams arrive, as systemd does: the kernel queues only about ten, and our sender drops
    # rather than blocks when the queue is full.
    loop = asyncio.get_running_loop()
    loop.add_reader(ns.sock.fileno(), ns.drain)
    try:
        yield ns
    finally:
        loop.remove_reader(ns.sock.fileno())
        ns.close()
