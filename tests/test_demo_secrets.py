"""The demo site keeps its secrets as `${...}`, as a real site does, and still works on a fresh machine: no
variable set, inline secrets not allowed (the suite's conftest allows them: these tests take that away)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO = "config/sites/demo.yaml"
DEMO_SECRETS = ("FLUX_DEMO_AXLE_PASSWORD", "FLUX_DEMO_CLOUD_API_KEY")


def fresh_env() -> dict[str, str]:
    """This machine's environment as a newcomer's shell has it: none of the demo's secrets, inline ones refused."""
    env = {k: v for k, v in os.environ.items() if k not in (*DEMO_SECRETS, "FLUX_ALLOW_INLINE_SECRETS")}
    return {**env, "PYTHONPATH": str(ROOT)}


def flux(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=fresh_env())


def test_the_demo_site_has_no_literal_secret() -> None:
    # Refused inline, a literal password would be a problem here; the two secrets are references.
    text = (ROOT / DEMO).read_text()
    assert "demo-password" not in text and "api_key: sim-anon-key" not in text
    assert "password: ${FLUX_DEMO_AXLE_PASSWORD}" in text and "api_key: ${FLUX_DEMO_CLOUD_API_KEY}" in text


def test_validate_names_unset_secrets_on_stderr_and_the_file_is_ok() -> None:
    done = flux("validate", DEMO)
    assert (done.returncode, done.stdout) == (0, f"ok {DEMO}\n")
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    for line, (name, where) in zip(lines, (("FLUX_DEMO_AXLE_PASSWORD", "market.axle.password"),
                                           ("FLUX_DEMO_CLOUD_API_KEY", "uploader.sinks.0.api_key")), strict=True):
        assert line.startswith(f"{DEMO}:") and f": {where}: environment variable {name} is not set here: " in line


def test_validate_require_secrets_makes_them_problems() -> None:
    done = flux("validate", "--require-secrets", DEMO)
    assert done.returncode == 2 and done.stderr == ""
    assert [line.split(": ", 2)[1:] for line in done.stdout.splitlines()] == [
        ["market.axle.password", "environment variable FLUX_DEMO_AXLE_PASSWORD is not set here"],
        ["uploader.sinks.0.api_key", "environment variable FLUX_DEMO_CLOUD_API_KEY is not set here"]]


def test_an_inline_secret_is_still_refused_by_validate(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    text = (ROOT / DEMO).read_text()
    site.write_text(text.replace("${FLUX_DEMO_AXLE_PASSWORD}", "hunter2"))
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "${FLUX_DEMO_AXLE_PASSWORD}" in t)
    done = flux("validate", str(site))
    assert done.returncode == 2
    assert f"{site}:{line}:15: market.axle.password: secrets are not written in the site file" in done.stdout


def test_decide_on_the_demo_needs_no_secret() -> None:
    done = flux("decide", "--site", DEMO, "--state", "config/states/peak-short.json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["target_kw"] == 250.0


DEMO_LIKE = """\
site: {{id: secrets-demo, name: Demo secrets, timezone: Europe/London}}
devices:
  - {{type: powerpack, name: bess, id: 5ec0e700-0000-4000-8000-000000000001, host: 127.0.0.1, port: {bess},
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000}}
  - {{type: acuvim2, name: site-meter, id: 5ec0e700-0000-4000-8000-000000000002, host: 127.0.0.1, port: {meter}}}
controller:
  site_meter: site-meter
  battery: bess
  soe_min_kwh: 50
  soe_max_kwh: 950
  battery_charge_limit_kw: 250
  battery_discharge_limit_kw: 250
  site_import_limit_kw: 300
  site_export_limit_kw: 350
market:
  axle: {{base_url: "http://127.0.0.1:{axle}", asset_id: demo-asset, username: demo,
          password: "${{FLUX_DEMO_AXLE_PASSWORD}}"}}
buffer: {{path: "{var}"}}
metrics: {{enabled: false}}
ops: {{admin: {{port: {admin}}}}}
simulator:
  axle: {{port: {axle}}}
"""


def test_the_demo_makes_the_axle_password_and_both_sides_use_it(tmp_path: Path) -> None:
    """`flux-edge demo` with no variable set: the Axle stand-in checks the password the daemon logs in with,
    so the daemon holds Axle's schedule only if both got the one the demo made."""
    ports = {name: free_port() for name in ("bess", "meter", "axle", "admin")}
    site = tmp_path / "site.yaml"
    site.write_text(DEMO_LIKE.format(**ports, var=tmp_path / "var"))
    demo = subprocess.Popen([sys.executable, "-m", "controller", "demo", "--site", str(site), "--refresh-s", "0.5"],
                            cwd=ROOT, env=fresh_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    status: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 120  # a failure-only bound: the loop ends as soon as the schedule is there
        while time.monotonic() < deadline and demo.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{ports['admin']}/status", timeout=2).json()
            except (httpx.HTTPError, ValueError):
                status = {}
            if status.get("axle_next") is not None:
                break
            time.sleep(0.2)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=60)
    daemon_log = (tmp_path / "var" / "daemon.log").read_text()
    assert status.get("axle_next") is not None, (out[-2000:], err, daemon_log[-3000:])
    assert demo.returncode == 0, (out[-2000:], err)
    assert "axle_schedule_failed" not in daemon_log
    assert "stopped; daemon exit code" in out


@pytest.mark.parametrize("name", DEMO_SECRETS)
def test_the_demo_keeps_a_secret_the_shell_sets(name: str) -> None:
    from controller.commands.demo import demo_environment
    from controller.config import load_site

    site = load_site(ROOT / DEMO, defer_secrets=True).config
    assert demo_environment(site, {name: "from-the-shell"})[name] == "from-the-shell"
    made = [demo_environment(site, {})["FLUX_DEMO_AXLE_PASSWORD"] for _ in range(2)]
    assert made[0] != made[1] and len(made[0]) >= 24  # a new random one each run
    assert demo_environment(site, {})["FLUX_DEMO_CLOUD_API_KEY"] == "sim-anon-key"  # the cloud stand-in's key
