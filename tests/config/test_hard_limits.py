"""Hard limits no site file can widen, and validation of dangerous values (issue 15, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, parse_site
from tests.config.test_broken_files import BASE, ENV

LIMITS = """\
battery_power_kw: 250
battery_energy_kwh: 1000
site_import_limit_kw: 300
site_export_limit_kw: 350
soe_min_kwh: 50
soe_max_kwh: 950
max_reading_age_s: 30
"""


@pytest.fixture
def limits_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "flux-edge-limits.yaml"
    path.write_text(LIMITS)
    monkeypatch.setenv("FLUX_LIMITS_FILE", str(path))
    return path


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_site(text, "site.yaml", ENV)
    lines = [str(p) for p in info.value.problems]
    assert all("\n" not in line and line.startswith("site.yaml:") for line in lines)
    return lines


# The takeover: a pushed file with 20x the nameplate, limits of 5000/100000 kW, soe_min 0 and
# max_reading_age_s 1e12 (a sane-bound error even without a limits file).
ATTACK = (BASE.replace("nameplate_power_kw: 250", "nameplate_power_kw: 5000")
          .replace("battery_charge_limit_kw: 250", "battery_charge_limit_kw: 5000")
          .replace("battery_discharge_limit_kw: 250", "battery_discharge_limit_kw: 5000")
          .replace("site_import_limit_kw: 300", "site_import_limit_kw: 100000")
          .replace("site_export_limit_kw: 350", "site_export_limit_kw: 100000")
          .replace("soe_min_kwh: 50", "soe_min_kwh: 0")
          .replace("  soe_max_kwh: 950", "  soe_max_kwh: 950\n  max_reading_age_s: 250"))


def test_a_file_widening_the_hard_limits_is_refused_with_a_line_per_value(limits_file: Path) -> None:
    lines = problems(ATTACK)
    for path in ("devices.0.nameplate_power_kw", "controller.battery_charge_limit_kw",
                 "controller.battery_discharge_limit_kw", "controller.site_import_limit_kw",
                 "controller.site_export_limit_kw", "controller.soe_min_kwh", "controller.max_reading_age_s"):
        assert any(f": {path}: " in line and "never widen" in line for line in lines), (path, lines)


def test_tightening_is_allowed(limits_file: Path) -> None:
    tight = (BASE.replace("site_import_limit_kw: 300", "site_import_limit_kw: 200")
             .replace("soe_min_kwh: 50", "soe_min_kwh: 100"))
    site = parse_site(tight, "site.yaml", ENV)
    assert site.controller is not None and site.controller.site_import_limit_kw == 200


def test_the_base_file_passes_within_the_limits(limits_file: Path) -> None:
    parse_site(BASE, "site.yaml", ENV)


@pytest.mark.parametrize("content", ["battery_power_kw: [", "- a list", "battery_power_kw: .inf\n",
                                     LIMITS.replace("max_reading_age_s: 30", "max_reading_age_s: 1e12"), ""])
def test_an_unusable_limits_file_fails_closed(limits_file: Path, content: str) -> None:
    limits_file.write_text(content)
    lines = problems(BASE)
    assert len(lines) == 1 and "(hard limits)" in lines[0] and str(limits_file) in lines[0]


def test_a_missing_limits_file_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_LIMITS_FILE", str(tmp_path / "absent.yaml"))
    assert "cannot check the local hard limits" in problems(BASE)[0]


VALIDATION = [
    ("max_reading_age_s .inf", "  soe_max_kwh: 950", "  soe_max_kwh: 950\n  max_reading_age_s: .inf",
     "controller.max_reading_age_s", "finite"),
    ("max_reading_age_s 1e12", "  soe_max_kwh: 950", "  soe_max_kwh: 950\n  max_reading_age_s: 1e12",
     "controller.max_reading_age_s", "less than or equal to 300"),
    ("site_import_limit_kw .inf", "site_import_limit_kw: 300", "site_import_limit_kw: .inf",
     "controller.site_import_limit_kw", "finite"),
    ("nan nameplate", "nameplate_power_kw: 250", "nameplate_power_kw: .nan", "devices.0.nameplate_power_kw",
     "finite"),
    ("period_s true", "  soe_max_kwh: 950", "  soe_max_kwh: 950\n  period_s: true", "controller",
     "period_s: expected a number, got the boolean true"),
    ("port false", "    port: 15021", "    port: false", "devices.1", "port: expected a number"),
    ("inline api_key", 'api_key: "${KEY}"', 'api_key: "sk-live-123"', "uploader.sinks.0.api_key",
     "not written in the site file"),
    ("inline mqtt password", "mqtt:\n  host: 127.0.0.1", "mqtt:\n  host: 127.0.0.1\n  password: hunter2",
     "mqtt.password", "not written in the site file"),
    ("lower-case reference", 'api_key: "${KEY}"', 'api_key: "${lower-case}"', "uploader.sinks.0.api_key",
     "whole upper-case"),
    ("lower-case name", 'api_key: "${KEY}"', 'api_key: "${key}"', "uploader.sinks.0.api_key", "whole upper-case"),
    ("prefix before a reference", 'api_key: "${KEY}"', 'api_key: "prefix-${HOME}"', "uploader.sinks.0.api_key",
     "whole upper-case"),
]


@pytest.mark.parametrize(("why", "old", "new", "path", "fragment"), VALIDATION, ids=[v[0] for v in VALIDATION])
def test_dangerous_values_are_refused(monkeypatch: pytest.MonkeyPatch, why: str, old: str, new: str, path: str,
                                      fragment: str) -> None:
    monkeypatch.delenv("FLUX_ALLOW_INLINE_SECRETS", raising=False)
    assert old in BASE
    lines = problems(BASE.replace(old, new, 1))
    assert any(f": {path}: " in line and fragment in line for line in lines), lines
