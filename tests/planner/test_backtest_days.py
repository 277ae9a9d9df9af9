"""The many-day backtest: strategies on the same days, the value accounting, and the command's contract."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from controller.backtest.multiday import BacktestInputError, compare, run_strategy
from controller.config import load_site
from controller.planner.history import HistoryRow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "sites" / "demo.yaml"
SHIPPED = ROOT / "simulator" / "data" / "demo_history.csv.gz"


def flat_history(price: float, days: int = 9) -> list[HistoryRow]:
    start = datetime(2026, 4, 4, 23, tzinfo=UTC)  # local midnight, 2026-04-05 (BST)
    return [HistoryRow(start + timedelta(minutes=30 * i), 0.0, price, 0.0, None) for i in range(days * 48)]


def test_a_flat_price_offers_nothing_and_perfect_foresight_takes_nothing() -> None:
    site = load_site(DEMO).config
    day = date(2026, 4, 13)  # a Monday with a week of history before it
    perfect = run_strategy(site, flat_history(10.0), day, day, "perfect", step_s=300)
    # A cycle costs 1.1 p/kWh of import rate, 8 % of the energy and 2 p/kWh of wear: idle is optimal.
    assert perfect.value_p == pytest.approx(0.0, abs=1.0)
    assert perfect.discharged_kwh == pytest.approx(0.0, abs=1.0) and perfect.limit_violations == 0


def test_value_is_the_saving_less_wear_plus_the_stored_energy_at_its_value() -> None:
    site = load_site(DEMO).config
    day = date(2026, 4, 13)
    modes = run_strategy(site, flat_history(10.0), day, day, "modes", step_s=300)
    assert modes.discharged_kwh > 0  # the demo's charge_to_soe and discharge_to_soe cycle anyway
    assert modes.value_p == pytest.approx(modes.base_cost_p - modes.cost_p - modes.throughput_p + modes.stored_value_p)
    assert modes.value_p < 0  # and, on a flat price, lose money doing it
    assert sum(modes.daily_value_p) == pytest.approx(modes.value_p)


def test_a_history_with_holes_is_refused() -> None:
    site = load_site(DEMO).config
    rows = [r for r in flat_history(10.0) if r.start.hour != 12]
    with pytest.raises(BacktestInputError, match="lacks net load or price"):
        compare(site, rows, date(2026, 4, 13), date(2026, 4, 13))


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", "backtest", "--site", str(DEMO), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_compare_json_has_the_spec_shape_on_the_shipped_history(tmp_path: Path) -> None:
    out = backtest("--history", str(SHIPPED), "--from", "2026-10-05", "--to", "2026-10-06", "--compare", "--json",
                   "--step-s", "300", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["days"] == 2 and set(answer["strategies"]) == {"modes", "plan", "perfect"}
    for s in answer["strategies"].values():
        assert {"value_gbp", "cycles", "limit_violations", "ratio_to_perfect"} <= set(s)
        assert s["limit_violations"] == 0
    assert answer["strategies"]["perfect"]["ratio_to_perfect"] == 1.0
    assert (tmp_path / "days.png").stat().st_size > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--history", str(SHIPPED), "--to", "2026-04-14"], "--from: required"),
    (["--history", str(SHIPPED), "--from", "2026-04-14", "--to", "2026-04-13"], "--to: before --from"),
    (["--history", str(SHIPPED), "--from", "2026-08-12", "--to", "2026-08-12"], "lacks net load or price"),  # the outage
    (["--day", "2026-04-15"], "--market, --out required"),
])
def test_bad_arguments_are_one_line(args: list[str], message: str) -> None:
    out = backtest(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and "Traceback" not in out.stderr
