"""`flux-edge import-legacy` end to end: the converted reference example validates and decides the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.legacy import LegacyError, convert, period, prediction
from tests.decide_cases import CASES, matches

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = Path("/work/shared/spec/legacy-example.yaml")
BUNDLED = ROOT / "tests" / "data" / "legacy-example.yaml"
ENV = {"SUPABASE_ANON_KEY": "anon-key-1", "SUPABASE_USER_KEY": "user-key-1", "AXLE_USERNAME": "axle-user",
       "AXLE_PASSWORD": "axle-pass"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, **ENV}, cwd=ROOT)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = cli("import-legacy", str(BUNDLED))
    assert out.returncode == 0, out.stderr
    path = tmp_path_factory.mktemp("legacy") / "site.yaml"
    path.write_text(out.stdout)
    return path


def test_bundled_example_is_the_spec_example() -> None:
    if EXAMPLE.exists():  # the shared spec is not part of the repository; the copy must not drift
        assert BUNDLED.read_text() == EXAMPLE.read_text()


def test_converted_example_validates(converted: Path) -> None:
    out = cli("validate", str(converted))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == f"ok {converted}"


def test_converted_example_maps_devices_secrets_and_units(converted: Path) -> None:
    site = yaml.safe_load(converted.read_text())
    assert [(d["type"], d["name"], d["host"], d["port"]) for d in site["devices"]] == [
        ("powerpack", "battery", "192.0.2.20", 502), ("acuvim2", "mains-incomer", "192.0.2.10", 502),
        ("acuvim2", "bess", "192.0.2.11", 502)]
    c = site["controller"]
    assert (c["site_meter"], c["battery"], c["battery_meter"]) == ("mains-incomer", "battery", "bess")
    assert site["market"]["axle"]["password"] == "${AXLE_PASSWORD}"
    sink = site["uploader"]["sinks"][0]
    assert (sink["type"], sink["api_key"], sink["bearer_token"]) == ("postgrest", "${SUPABASE_ANON_KEY}",
                                                                     "${SUPABASE_USER_KEY}")
    by_type = {m["type"]: m for m in c["modes"]}
    assert by_type["import_avoidance_when_short"]["params"]["short_prediction"]["volume_cutoff_mwh"] == 100.0
    assert by_type["niv_chase"]["periods"][0]["end"] == "24:00"
    assert "import_avoidance" not in by_type  # an empty list in the reference file


@pytest.mark.parametrize(("why", "state", "expected"), CASES, ids=[c[0] for c in CASES])
def test_converted_example_decides_like_the_reference(why: str, state: dict[str, Any], expected: dict[str, Any],
                                                       converted: Path, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    out = cli("decide", "--site", str(converted), "--state", str(path))
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert matches(answer, expected), answer


PERIODS = [
    ({"days": "weekdays:Europe/London", "start": "16:00:00:Europe/London", "end": "19:00:00:Europe/London"},
     {"days": "weekdays", "start": "16:00", "end": "19:00", "timezone": "Europe/London"}),
    ({"days": "all:Europe/Paris", "start": "00:00:00:Europe/Paris", "end": "23:59:59:Europe/Paris"},
     {"days": "all", "start": "00:00", "end": "24:00", "timezone": "Europe/Paris"}),
    ({"days": "saturday,sunday:UTC", "start": "06:30:15:UTC", "end": "07:00:00:UTC"},
     {"days": ["saturday", "sunday"], "start": "06:30:15", "end": "07:00", "timezone": "UTC"}),
]


@pytest.mark.parametrize(("legacy", "ours"), PERIODS)
def test_period_conversion(legacy: dict[str, str], ours: dict[str, Any]) -> None:
    assert period(legacy, "p") == ours


def test_volume_cutoff_kwh_to_mwh() -> None:
    assert prediction({"allowPrediction": True, "volumeCutoff": 50000, "timeCutoffSecs": 600}, "p") == {
        "allow_prediction": True, "volume_cutoff_mwh": 50.0, "time_cutoff_s": 600.0}


def test_broken_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LegacyError, match=r"bess\.powerPack: required"):
        convert({"controller": {}})
    with pytest.raises(LegacyError, match="different timezones"):
        period({"days": "all:Europe/London", "start": "00:00:00:UTC", "end": "01:00:00:UTC"}, "p")
    bad = tmp_path / "old.yaml"
    bad.write_text("meters: {}\nbess: {powerPack: {id: x}}\n")
    out = cli("import-legacy", str(bad))
    assert out.returncode == 2
    assert "bess.powerPack.host" in out.stderr
    assert out.stdout == ""
