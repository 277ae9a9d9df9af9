"""The daemon's config as records (issue 16): `flux-edge run` validates in a child process and builds the
very same config classes without pydantic (controller.core.records, controller.config.isolated).

Each check runs a fresh interpreter prepared as the CLI prepares `run`, and compares what it received
with what this process, which validates with pydantic in-process, makes of the same file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from controller.config import ConfigError, load_site
from tests.config.record_tree import tree

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "config/sites/demo.yaml"

PRELUDE = """
import json, sys
from controller import cli
cli.prepare(["run", "--site", sys.argv[1]])
from controller.core import records
from controller.config import ConfigError, load_site
from tests.config.record_tree import tree
"""


def in_daemon(script: str, site: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", PRELUDE + script, str(site)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, check=False)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("site", sorted((ROOT / "config/sites").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_daemon_receives_the_same_site_without_pydantic(site: Path) -> None:
    got = in_daemon("site = load_site(sys.argv[1])\n"
                    "print(json.dumps({'tree': tree(site.config, (records.BaseModel,), (records.SecretStr,)), "
                    "'sha': site.sha256, "
                    "'pydantic': sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core'))}))",
                    site)
    assert got["pydantic"] == []
    here = load_site(site)
    assert got["sha"] == here.sha256
    assert got["tree"] == tree(here.config, (BaseModel,), (SecretStr,))


def test_records_read_like_models_and_refuse_changes_and_construction() -> None:
    got = in_daemon("""
site = load_site(sys.argv[1]).config
again = load_site(sys.argv[1]).config
from controller.config.site import SiteInfo
from controller.core.config import Period
out = {"equal": site == again, "period_start_s": site.controller.modes[0].periods[0].start_s}
try:
    site.site.id = "x"
except AttributeError as exc:
    out["frozen"] = str(exc)
try:
    SiteInfo(id="x", name="y")
except TypeError as exc:
    out["construct"] = str(exc)
out["copy"] = site.site.model_copy(update={"name": "other"}).name
out["repr_hides_secret"] = "demo" not in repr(site.market.axle.password) if site.market.axle else True
print(json.dumps(out))
""", DEMO, {"FLUX_DEMO_AXLE_PASSWORD": "a-demo-password-1", "FLUX_DEMO_CLOUD_API_KEY": "a-demo-cloud-key-1"})
    here = load_site(DEMO, {**os.environ, "FLUX_DEMO_AXLE_PASSWORD": "a-demo-password-1",
                            "FLUX_DEMO_CLOUD_API_KEY": "a-demo-cloud-key-1"}).config
    assert got["equal"] is True
    assert got["period_start_s"] == here.controller.modes[0].periods[0].start_s
    assert "immutable" in got["frozen"]
    assert "built by the validator" in got["construct"]
    assert got["copy"] == "other"
    assert got["repr_hides_secret"] is True


def test_a_bad_file_gives_the_daemon_the_same_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text().replace("nameplate_power_kw: 250", "nameplate_power_kw: true", 1)
                   .replace("timezone: Europe/London", "timezone: Europe/Lundon", 1))
    got = in_daemon("""
try:
    load_site(sys.argv[1])
    print(json.dumps({"problems": None}))
except ConfigError as exc:
    print(json.dumps({"problems": [str(p) for p in exc.problems]}))
""", bad)
    try:
        load_site(bad)
    except ConfigError as exc:
        expected = [str(p) for p in exc.problems]
    else:
        raise AssertionError("the broken file loaded")
    assert got["problems"] == expected
    assert any("nameplate_power_kw" in p and "bad.yaml:" in p for p in expected), expected
    assert any("Europe/Lundon" in p for p in expected), expected


def test_the_daemon_redacts_the_secrets_the_validator_resolved() -> None:
    secret = "s3cret-from-the-environment-42"
    got = in_daemon("""
from controller.core.logs import redact_text
load_site(sys.argv[1])
print(json.dumps({"line": redact_text("login with SECRET failed")}))
""".replace("SECRET", secret), DEMO, {"FLUX_DEMO_AXLE_PASSWORD": secret})
    assert got["line"] == "login with *** failed"


def test_a_missing_file_is_a_problem_naming_it(tmp_path: Path) -> None:
    got = in_daemon("""
try:
    load_site(sys.argv[1])
except ConfigError as exc:
    print(json.dumps({"problems": [str(p) for p in exc.problems]}))
""", tmp_path / "nowhere.yaml")
    assert got["problems"] == [f"{tmp_path / 'nowhere.yaml'}:1:1: (file): No such file or directory"]


def test_a_validator_that_dies_is_a_problem_not_a_traceback() -> None:
    got = in_daemon("""
from controller.config import isolated
isolated.sys.executable = "/bin/false"  # the fault: a child that exits at once, saying nothing
try:
    load_site(sys.argv[1])
except ConfigError as exc:
    print(json.dumps({"problems": [str(p) for p in exc.problems]}))
""", DEMO)
    assert got["problems"] == [f"{DEMO}:1:1: (file): the validator's process failed: exit status 1"]
