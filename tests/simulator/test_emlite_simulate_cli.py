"""End to end through the command line: `flux-edge simulate` serves the site's Emlite and heat meters,
`flux-edge read` polls them over TCP and prints the reading."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.devices.sim_sites import unique_port
from tests.helpers import port_open

ROOT = Path(__file__).resolve().parents[2]


def _uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def _site(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    gateway = unique_port()
    devices: list[dict[str, Any]] = [
        {"type": "emlite", "name": "home-1", "id": _uid("home-1"), "host": "127.0.0.1", "port": unique_port(),
         "twin_element": True, "min_connection_gap_s": 0.2, "start_jitter_s": 0},
        {"type": "heat_mbus", "name": "heat-1", "id": _uid("heat-1"), "host": "127.0.0.1", "port": gateway,
         "mbus_address": 1},
        {"type": "heat_mbus", "name": "heat-2", "id": _uid("heat-2"), "host": "127.0.0.1", "port": gateway,
         "mbus_address": 2},
        {"type": "heat_modbus", "name": "plant", "id": _uid("plant"), "host": "127.0.0.1", "port": unique_port(),
         "registers": {"energy_kwh": {"address": 0, "data_type": "uint32"},
                       "flow_temperature_c": {"address": 2, "data_type": "int16", "scale": 0.01}}},
    ]
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump({"site": {"id": "cli", "name": "cli test"}, "devices": devices,
                                         "simulator": {"seed": 5}}))
    return site_file, devices


def _start_simulator(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`flux-edge simulate` serving on fresh ports; other test runs on this machine may take a port we
    picked before the simulator binds it, so a bind failure picks new ports (three tries)."""
    for _ in range(3):
        site_file, devices = _site(tmp_path)
        sim = subprocess.Popen([sys.executable, "-m", "controller", "simulate", "--site", str(site_file)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        pending = [d["port"] for d in devices]
        while pending and sim.poll() is None and time.monotonic() < deadline:
            if port_open("127.0.0.1", pending[0]):
                pending.pop(0)
            else:
                time.sleep(0.05)
        if not pending:
            return sim, site_file
        if sim.poll() is None:
            sim.kill()
        sim.wait()
        stderr = sim.stderr.read().decode() if sim.stderr else ""
        assert "address already in use" in stderr, stderr
    raise AssertionError("simulator could not bind its ports in three tries")


def test_simulate_then_read_emlite_and_heat_meters(tmp_path: Path) -> None:
    sim, site_file = _start_simulator(tmp_path)
    try:
        out: dict[str, dict[str, Any]] = {}
        for name in ("home-1", "heat-2", "plant"):
            done = subprocess.run([sys.executable, "-m", "controller", "read", "--site", str(site_file),
                                   "--device", name], check=False, cwd=ROOT, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, done.stderr
            out[name] = json.loads(done.stdout)
        home = out["home-1"]
        assert home["device_id"] == _uid("home-1")
        assert {"import_a_kwh", "import_b_kwh", "power_kw", "balance_gbp"} <= set(home["fields"])
        assert home["fields"]["import_a_kwh"] > 1000
        assert {"energy_kwh", "flow_temperature_c", "return_temperature_c"} <= set(out["heat-2"]["fields"])
        assert set(out["plant"]["fields"]) == {"energy_kwh", "flow_temperature_c"}
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            rc = sim.wait(timeout=30)
        finally:
            if sim.poll() is None:
                sim.kill()
        stderr = sim.stderr.read().decode() if sim.stderr else ""
    assert rc == 0, stderr
