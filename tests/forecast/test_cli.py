"""`flux-edge forecast`, `forecast evaluate` and `history import|stats` as subprocesses: stdout is
the answer (the spec's JSON), a bad file is one line on stderr naming file and line, exit 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from controller.forecast.rows import COLUMNS, format_row
from tests.forecast.helpers import TZ, rows_from

ROOT = Path(__file__).resolve().parents[2]


def flux(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True, text=True, env=env,
                          check=False,
                          cwd=ROOT, timeout=120)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    text = (ROOT / "config/sites/demo.yaml").read_text().replace("path: var/demo", f"path: {tmp_path / 'var'}")
    p = tmp_path / "site.yaml"
    p.write_text(text)
    return p


@pytest.fixture
def history_csv(tmp_path: Path) -> Path:
    rows = rows_from(lambda t: 40.0 + 2 * t.hour, date(2026, 6, 1), 28, price=lambda t: 5.0 + t.hour / 2)
    p = tmp_path / "h.csv"
    with p.open("w", newline="") as f:
        f.write("# test history\n")
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(format_row(r, TZ))
    return p


def test_forecast_json_from_a_csv(site: Path, history_csv: Path) -> None:
    r = flux("forecast", "--site", str(site), "--history", str(history_csv), "--at", "2026-06-28T12:10:00+01:00",
             "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["at"] == "2026-06-28T11:10:00+00:00"
    assert len(data["periods"]) == 48
    first = data["periods"][0]
    assert first["start"] == "2026-06-28T11:00:00+00:00"
    for q in ("net_load_kw", "price_p_per_kwh"):
        band = first[q]
        assert band["lower"] <= band["value"] <= band["upper"]
    assert first["net_load_kw"]["value"] == pytest.approx(64.0, abs=0.01)  # 40 + 2 x 12 h
    assert data["forecasters"]["net_load_kw"] == "similar_day"


def test_evaluate_json(site: Path, history_csv: Path) -> None:
    r = flux("forecast", "evaluate", "--site", str(site), "--history", str(history_csv), "--from", "2026-06-22",
             "--to", "2026-06-24", "--every", "12", "--json")
    assert r.returncode == 0, r.stderr
    q = json.loads(r.stdout)["quantities"]
    assert set(q["net_load_kw"]) == {"similar_day", "persistence_week"}
    assert set(q["price_p_per_kwh"]) == {"price_blend", "same_period_7d", "persistence_week"}
    for s in q["net_load_kw"].values():
        assert {"mae", "rmse", "skill", "coverage_80"} <= set(s)
        assert s["mae"] == pytest.approx(0.0, abs=1e-6)
    table = flux("forecast", "evaluate", "--site", str(site), "--history", str(history_csv), "--from", "2026-06-22",
                 "--to", "2026-06-22", "--every", "24")
    assert table.returncode == 0 and "persistence_week" in table.stdout and table.stdout.startswith("walk-forward")


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "yesterday"], "--at: 'yesterday' is not an ISO 8601 time"),
    (["--history", "BAD"], "BAD:4: site_import_kwh: 'x' is not a number"),
    (["--history", "MISSING"], "MISSING: cannot read"),
])
def test_bad_input_is_one_line(site: Path, tmp_path: Path, history_csv: Path, args: list[str], message: str) -> None:
    bad = tmp_path / "bad.csv"
    lines = history_csv.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[1], "x", 1)
    bad.write_text("\n".join(lines) + "\n")
    args = [str(bad) if a == "BAD" else str(tmp_path / "none.csv") if a == "MISSING" else a for a in args]
    message = message.replace("BAD", str(bad)).replace("MISSING", str(tmp_path / "none.csv"))
    r = flux("forecast", "--site", str(site), *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith(message) and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    ev = flux("forecast", "evaluate", "--site", str(site), "--history", str(bad))
    assert ev.returncode == 2 and ev.stderr.strip() == f"{bad}:4: site_import_kwh: 'x' is not a number"


def test_history_import_all_or_nothing_then_forecast_from_it(site: Path, tmp_path: Path, history_csv: Path) -> None:
    bad = tmp_path / "bad.csv"
    lines = history_csv.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",-3" + "," + ",".join(lines[5].split(",")[2:])
    lines[9] = "2026-06-01T00:10:00+01:00" + lines[9][25:]
    bad.write_text("\n".join(lines) + "\n")
    r = flux("history", "import", "--site", str(site), str(bad))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [f"{bad}:6: site_import_kwh: -3 is negative (must be >= 0)",
                                     f"{bad}:10: period_start: '2026-06-01T00:10:00+01:00' is not the start of a "
                                     "half-hour"]
    assert json.loads(flux("history", "stats", "--site", str(site)).stdout)["periods"] == 0
    ok = flux("history", "import", "--site", str(site), str(history_csv))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["imported"] == 28 * 48
    f = flux("forecast", "--site", str(site), "--at", "2026-06-28T12:10:00+01:00", "--json")
    assert json.loads(f.stdout)["periods"][0]["net_load_kw"]["value"] == pytest.approx(64.0, abs=0.01)
