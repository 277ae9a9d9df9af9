"""`flux-edge decide` on hostile state files (issue 15: 22 tracebacks, log lines on stdout): each is a
one-line error on stderr and exit 2, or exactly one JSON answer on stdout, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from controller.cli import main as cli

DEMO = Path(__file__).resolve().parents[2] / "config" / "sites" / "demo.yaml"
OK = {"time": "2026-06-03T12:00:00Z", "site_power_kw": 42.0, "bess_soe_kwh": 500.0}


def with_(**changes: Any) -> dict[str, Any]:
    return {**OK, **changes}


STATES: list[tuple[str, Any]] = [
    ("400-digit integer", '{"time": "2026-06-03T12:00:00Z", "site_power_kw": 1' + "0" * 400 + ', "bess_soe_kwh": 1}'),
    ("400-digit SoE", '{"time": "2026-06-03T12:00:00Z", "site_power_kw": 1, "bess_soe_kwh": -' + "9" * 400 + "}"),
    ("1e400", '{"time": "2026-06-03T12:00:00Z", "site_power_kw": 1e400, "bess_soe_kwh": 1}'),
    ("NaN literal", '{"time": "2026-06-03T12:00:00Z", "site_power_kw": NaN, "bess_soe_kwh": 1}'),
    ("Infinity literal", '{"time": "2026-06-03T12:00:00Z", "site_power_kw": 1, "bess_soe_kwh": -Infinity}'),
    ("year 1", with_(time="0001-01-01T00:00:00+00:00")),
    ("year 9999", with_(time="9999-12-31T23:59:59+00:00")),
    ("year 9999 axle step", with_(axle_schedule=[{"start": "9999-12-31T00:00:00Z", "end": "9999-12-31T23:59:59Z",
                                                  "action": "charge_max"}])),
    ("axle_schedule 5", with_(axle_schedule=5)),
    ("axle_schedule a string", with_(axle_schedule="charge")),
    ("axle_schedule object", with_(axle_schedule={"a": 1})),
    ("axle step a list", with_(axle_schedule=[[1, 2]])),
    ("axle step without end", with_(axle_schedule=[{"start": "2026-06-03T11:00:00Z", "action": "charge_max"}])),
    ("axle action a number", with_(axle_schedule=[{"start": "2026-06-03T11:00:00Z", "end": "2026-06-03T13:00:00Z",
                                                   "action": 7}])),
    ("100,000 axle steps", with_(axle_schedule=[{"start": "2026-06-03T11:00:00Z", "end": "2026-06-03T13:00:00Z",
                                                 "action": "charge_max"}] * 100_000)),
    ("non-UTF-8", b"\xff\xfe{\x00"),
    ("nested 100,000 deep", "[" * 100_000 + "]" * 100_000),
    ("nested objects 5,000 deep", '{"a":' * 5000 + "1" + "}" * 5000),
    ("time a number", with_(time=1780000000)),
    ("time 10 kB", with_(time="2026-06-03T12:00:00Z" + "0" * 10_000)),
    ("time garbage", with_(time="yesterday")),
    ("data_age_s a list", with_(data_age_s=[1, 2])),
    ("age a string", with_(data_age_s={"site_power_kw": "3"})),
    ("age true", with_(data_age_s={"site_power_kw": True})),
    ("site power true", with_(site_power_kw=True)),
    ("site power a string", with_(site_power_kw="42")),
    ("market value missing", with_(imbalance_price={"settlement_period": "2026-06-03T11:30:00Z"})),
    ("market a number", with_(imbalance_price=9.5)),
    ("market period year 1", with_(imbalance_price={"value": 1, "settlement_period": "0001-01-01T00:00:00Z"})),
    ("bess power a string", with_(bess_power_kw="0")),
    ("state a list", [OK]),
    ("state a string", '"hello"'),
    ("state null", "null"),
    ("empty file", ""),
    ("2 MB of spaces", " " * 2_000_000),
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize(("why", "state"), STATES, ids=[s[0] for s in STATES])
def test_one_line_error_or_one_answer(why: str, state: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    if isinstance(state, bytes):
        path.write_bytes(state)
    else:
        path.write_text(state if isinstance(state, str) else json.dumps(state))
    code = cli(["decide", "--site", str(DEMO), "--state", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code == 0:
        lines = out.strip().splitlines()
        assert len(lines) == 1 and "target_kw" in json.loads(lines[0]), out[:300]
        return
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(path)) and len(lines[0]) < 400, err[:300]


def test_through_the_command_line_nothing_but_json_on_stdout(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for state in (with_(time="9999-12-31T23:59:59+00:00"), "[" * 100_000):
        path.write_text(state if isinstance(state, str) else json.dumps(state))
        out = subprocess.run([sys.executable, "-m", "controller", "decide", "--site", str(DEMO), "--state", str(path)],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 2 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, out.stderr
