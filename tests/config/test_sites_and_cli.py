"""The shipped site files validate through the real CLI; the README reference matches the schema;
`--help` lists only commands that work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import COMMANDS
from controller.config import load_site
from controller.config.reference import END, START, render_reference

ROOT = Path(__file__).resolve().parents[2]
SITES = sorted((ROOT / "config" / "sites").glob("*.yaml"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_every_shipped_site_validates_through_the_cli() -> None:
    assert {p.stem for p in SITES} >= {"demo", "wlce", "hmce", "lfce"}
    result = cli("validate", *[str(p.relative_to(ROOT)) for p in SITES])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"ok {p.relative_to(ROOT)}" for p in SITES]


@pytest.mark.parametrize(("site", "homes", "heat"), [("wlce", 33, 0), ("hmce", 54, 6), ("lfce", 20, 2)])
def test_example_sites_have_the_real_sites_structure(site: str, homes: int, heat: int) -> None:
    config = load_site(ROOT / "config" / "sites" / f"{site}.yaml").config
    kinds = [d.type for d in config.devices]
    assert kinds.count("powerpack") == 1 and kinds.count("acuvim2") == 2
    assert kinds.count("emlite") == homes
    assert kinds.count("heat_mbus") + kinds.count("heat_modbus") == heat
    assert all(d.host.startswith("192.0.2.") for d in config.devices)  # documentation range: placeholders


def test_demo_site_has_every_device_kind_and_mode() -> None:
    from devices.catalog import DeviceConfig  # noqa: F401  (the union lists every kind)
    from modes.catalog import DEFAULT_ORDER

    config = load_site(ROOT / "config" / "sites" / "demo.yaml").config
    assert {d.type for d in config.devices} == {"powerpack", "acuvim2", "emlite", "heat_mbus", "heat_modbus"}
    assert config.controller is not None
    assert {m.type for m in config.controller.modes} == set(DEFAULT_ORDER)
    assert all(d.host == "127.0.0.1" for d in config.devices)


def test_validate_reports_problems_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config" / "sites" / "demo.yaml").read_text().replace("ct1: 800", "ct1: -800"))
    result = cli("validate", str(bad))
    assert result.returncode == 2
    line = result.stdout.strip().splitlines()[0]
    assert line.startswith(f"{bad}:") and ": devices.1.ct1: " in line


def test_configuration_reference_matches_the_schema() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    section = page[page.index(START): page.index(END) + len(END)]
    assert section == render_reference(), "docs/configuration.md is stale: run `make docs`"
    assert START not in (ROOT / "README.md").read_text()  # the README links to it instead


def test_schema_command_prints_the_site_schema() -> None:
    result = cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "SiteConfig" and "devices" in schema["properties"]


def test_help_lists_only_commands_that_work() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout
        sub = cli(name, "--help")
        assert sub.returncode == 0, (name, sub.stderr)
