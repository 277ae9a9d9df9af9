"""`flux-edge read` as a real process against the simulated site on real sockets."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from controller.config import load_site
from controller.core.clock import RealClock
from simulator.modbus_devices import ModbusSite
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent

SITE = """
site: {{id: cli-read, name: CLI read test}}
devices:
  - {{type: powerpack, name: bess, id: 7b0d0c6e-5d2a-4c43-9a57-000000000001, host: 127.0.0.1, port: {bess},
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000}}
  - {{type: acuvim2, name: site-meter, id: 7b0d0c6e-5d2a-4c43-9a57-000000000002, host: 127.0.0.1, port: {meter},
     ct1: 800, ct2: 5, poll_interval_s: 2}}
  - {{type: acuvim2, name: dead-meter, id: 7b0d0c6e-5d2a-4c43-9a57-000000000009, host: 127.0.0.1, port: {dead},
     timeout_s: 1}}
simulator:
  seed: 4
  devices: [bess, site-meter]
  site_model: {{initial_soe_kwh: 640}}
"""


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_read_prints_one_reading_and_fails_clearly_on_a_silent_device(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(bess=free_port(), meter=free_port(), dead=free_port()))
    site = load_site(str(path)).config
    async with ModbusSite(site, RealClock(), names={"bess", "site-meter"}):
        code, out, err = await _cli("read", "--site", str(path), "--device", "bess")
        assert code == 0, err
        answer = json.loads(out)
        assert answer["device"] == "bess" and answer["device_id"] == "7b0d0c6e-5d2a-4c43-9a57-000000000001"
        assert datetime.fromisoformat(answer["time"]).tzinfo is not None
        assert answer["fields"]["soe_kwh"] == 640.0 and answer["fields"]["target_power_kw"] == 0.0

        code, out, err = await _cli("read", "--site", str(path), "--device", "site-meter")
        assert code == 0, err
        answer = json.loads(out)
        assert datetime.fromisoformat(answer["time"]).second % 2 == 0  # the 2 s poll slot's start
        fields = answer["fields"]
        assert fields["frequency"] == 50.0
        assert abs(fields["power_phase_a_active"] + fields["power_phase_b_active"]
                   + fields["power_phase_c_active"] - fields["power_total_active"]) < 0.01

    code, out, err = await _cli("read", "--site", str(path), "--device", "dead-meter")
    assert code == 1 and out == ""
    assert "dead-meter" in err and "did not answer" in err

    code, out, err = await _cli("read", "--site", str(path), "--device", "nope")
    assert code == 2 and "no device named 'nope'" in err
