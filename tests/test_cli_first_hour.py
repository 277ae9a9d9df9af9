"""First-hour fixes, as a newcomer meets them, through the real `flux-edge` process: answers on stdout and
nothing else, log lines on stderr, one-line errors instead of tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "config/sites/demo.yaml")


def flux(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], check=False, capture_output=True, text=True,
                          cwd=ROOT, input=stdin, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_shipped_decide_state_decides_with_a_reason() -> None:
    done = flux("decide", "--site", DEMO, "--state", "config/states/peak-short.json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # every key known
    answer = json.loads(done.stdout)
    assert answer["target_kw"] == 250.0
    assert answer["reason"] == ("discharging 250 kW: system short, NIV +184 MWh for SP 16:00, price 45.2 p/kWh, "
                                "peak discharge asking for full power, capped at the battery's limit")


def test_unknown_state_keys_are_reported_on_stderr() -> None:
    state = json.loads((ROOT / "config/states/peak-short.json").read_text())
    state["site_power"] = 1.0
    state["data_age_s"]["soe"] = 3
    done = flux("decide", "--site", DEMO, "--state", "-", stdin=json.dumps(state))
    assert done.returncode == 0
    json.loads(done.stdout)
    assert done.stderr.splitlines() == [
        "-: unknown key 'site_power' ignored (see README, the decide state)",
        "-: unknown key 'data_age_s.soe' ignored (see README, the decide state)"]


def test_an_unknown_axle_action_warns_on_stderr_not_stdout() -> None:
    state = {"time": "2026-06-03T12:00:00+01:00", "site_power_kw": 20.0, "bess_soe_kwh": 500.0,
             "axle_schedule": [{"start": "2026-06-03T11:30:00+01:00", "end": "2026-06-03T12:30:00+01:00",
                                "action": "levitate"}]}
    done = flux("decide", "--site", DEMO, "--state", "-", stdin=json.dumps(state))
    assert done.returncode == 0
    assert json.loads(done.stdout)["target_kw"] is not None  # stdout is the JSON answer alone
    assert "axle_unknown_action" in done.stderr and "levitate" in done.stderr


def test_a_bad_dsn_is_one_line() -> None:
    done = flux("cloud", "migrate", "--dsn", "not a dsn")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("bad DSN: ")
    done = flux("cloud", "migrate", "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("migration failed: OperationalError")


def test_a_closed_pipe_is_one_line() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "controller", "schema"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)  # `| head -c 10`: read a little, then go away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141
    assert err == "flux-edge schema: output closed early (broken pipe)\n"
