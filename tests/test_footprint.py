"""The daemon's import graph holds only what the site uses (issue 16): an import-list check, no timing.

A fresh interpreter does what `flux-edge run --site FILE` does before it starts anything (the CLI's
preparation and parser for `run`, the run command, the composition root, the daemon, the site file loaded and every
component built) for a site with a PostgREST sink and no `simulator:` block, and lists `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# meterbus is loaded by the first M-Bus frame decoded, not by building the site's devices (the site below has
# an M-Bus heat meter): a site without one never pays for it.
# pydantic: the daemon validates its site file in a child process and holds its config as records
# (controller.core.records).
FORBIDDEN = ("psycopg", "matplotlib", "numpy", "simulator", "meterbus", "Crypto", "simplejson", "pydantic",
             "pydantic_core")

SITE = """\
site: {id: footprint, name: Footprint check}
devices:
  - {type: powerpack, name: bess, id: f0070000-0000-4000-8000-000000000001, host: 127.0.0.1, port: 1502,
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000}
  - {type: acuvim2, name: site-meter, id: f0070000-0000-4000-8000-000000000002, host: 127.0.0.1, port: 1503}
  - {type: emlite, name: home-01, id: f0070000-0000-4000-8000-000000000101, host: 127.0.0.1, port: 8080}
  - {type: heat_mbus, name: heat-1, id: f0070000-0000-4000-8000-000000000201, host: 127.0.0.1, port: 10001,
     mbus_address: 1}
controller:
  site_meter: site-meter
  battery: bess
  soe_min_kwh: 50
  soe_max_kwh: 950
  battery_charge_limit_kw: 250
  battery_discharge_limit_kw: 250
  site_import_limit_kw: 300
  site_export_limit_kw: 300
  modes:
    - {type: export_avoidance, periods: [{start: "09:00", end: "15:00"}]}
    - {type: charge_to_soe, periods: [{start: "01:00", end: "04:00"}], params: {soe_kwh: 500}}
market:
  modo: {base_url: "http://127.0.0.1:18091"}
buffer: {path: "BUFFER"}
uploader:
  sinks: [{type: postgrest, name: cloud, url: "http://127.0.0.1:18093", api_key: key}]
mqtt: {host: 127.0.0.1}
"""

SCRIPT = """
import json, sys
from controller import cli
argv = ["run", "--site", sys.argv[1]]
cli.prepare(argv)
cli.build_parser(argv)
import controller.commands.run, controller.daemon
from controller.config import load_site
from controller.core.clock import RealClock
from controller.runtime import Runtime
from controller.wiring import COMPONENTS
from uploader.factory import make_sink
site = load_site(sys.argv[1])
runtime = Runtime(site, RealClock())
specs = [spec for build in COMPONENTS for spec in build(site.config, runtime)]
sinks = [make_sink(s) for s in site.config.uploader.sinks]  # what each upload loop builds when it starts
print(json.dumps({"components": [s.name for s in specs], "modules": sorted(sys.modules)}))
"""


def daemon_modules(tmp_path: Path) -> tuple[list[str], list[str]]:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.replace("BUFFER", str(tmp_path / "outbox")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(site)], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["components"], data["modules"]


def test_the_daemon_imports_no_library_the_site_does_not_use(tmp_path: Path) -> None:
    components, modules = daemon_modules(tmp_path)
    assert {"control", "outbox", "upload:cloud", "ops-mqtt"} <= set(components), components
    loaded = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert loaded == []
