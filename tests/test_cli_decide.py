"""`flux-edge decide` end to end, through the command line in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.decide_cases import CASES, PLAN_CASES, matches

DEMO = Path(__file__).resolve().parent.parent / "config" / "sites" / "demo.yaml"


def decide(site: Path, state: Any, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "state.json"
    path.write_text(state if isinstance(state, str) else json.dumps(state))
    return subprocess.run([sys.executable, "-m", "controller", "decide", "--site", str(site), "--state", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("why", "state", "expected"), CASES + PLAN_CASES, ids=[c[0] for c in CASES + PLAN_CASES])
def test_decide_on_the_demo_site(why: str, state: dict[str, Any], expected: dict[str, Any], tmp_path: Path) -> None:
    out = decide(DEMO, state, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON object, nothing else on stdout
    answer = json.loads(lines[0])
    assert matches(answer, expected), answer
    assert answer["reason"]


BAD = [
    ("not JSON", "{", "state.json"),
    ("no time", {"site_power_kw": 1, "bess_soe_kwh": 1}, "time"),
    ("naive time", {"time": "2026-06-03T12:00:00", "site_power_kw": 1, "bess_soe_kwh": 1}, "UTC offset"),
    ("site power missing", {"time": "2026-06-03T12:00:00Z", "bess_soe_kwh": 1}, "site_power_kw: required"),
    ("SoE not a number", {"time": "2026-06-03T12:00:00Z", "site_power_kw": 1, "bess_soe_kwh": "full"},
     "bess_soe_kwh"),
    ("bad market value", {"time": "2026-06-03T12:00:00Z", "site_power_kw": 1, "bess_soe_kwh": 1,
                          "imbalance_price": {"value": 1}}, "imbalance_price.settlement_period"),
]


@pytest.mark.parametrize(("why", "state", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_state_is_a_clear_error(why: str, state: Any, message: str, tmp_path: Path) -> None:
    out = decide(DEMO, state, tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    assert message in out.stderr


def test_a_bad_site_file_is_reported(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: {id: x}\n")
    out = decide(site, CASES[0][1], tmp_path)
    assert out.returncode == 2
    assert "site.name" in out.stderr
