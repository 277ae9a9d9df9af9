"""The many-day backtest: strategies on the same days, the value accounting, and the command's contract."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from controller.backtest.multiday import BacktestInputError, compare, market_view, run_strategy
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


P0 = datetime(2026, 4, 13, 11, tzinfo=UTC)
MARKET = {r.start: r for r in (HistoryRow(P0 - timedelta(minutes=60), 0.0, 7.0, 20.0, None),
                               HistoryRow(P0 - timedelta(minutes=30), 0.0, 5.0, -80.0, None),
                               HistoryRow(P0, 0.0, 40.0, 300.0, None))}

MARKET_CASES = [
    # (why, seconds into the period, published_after_s, the period whose price and volume the client holds)
    ("before the live price may be trusted: the last ended period's", 599.0, 600.0, P0 - timedelta(minutes=30)),
    ("from then on: the running period's", 600.0, 600.0, P0),
    ("published at the end: the last ended period's throughout", 1799.0, 1800.0, P0 - timedelta(minutes=30)),
    ("published 10 minutes after the end: the one before it early on", 599.0, 2400.0, P0 - timedelta(minutes=60)),
]


@pytest.mark.parametrize(("why", "into_s", "published_after_s", "expected"), MARKET_CASES, ids=[c[0] for c in MARKET_CASES])
def test_market_view(why: str, into_s: float, published_after_s: float, expected: datetime) -> None:
    price, volume = market_view(MARKET, P0, into_s, published_after_s)
    assert price is not None and volume is not None
    assert price.settlement_period == volume.settlement_period == expected
    assert (price.value, volume.value) == ((MARKET[expected].price_p_per_kwh, MARKET[expected].volume_mwh))


def test_market_view_of_a_period_the_history_lacks_is_none() -> None:
    assert market_view(MARKET, P0 - timedelta(hours=1), 0.0, 1800.0) == (None, None)


@pytest.mark.parametrize(("published_after_s", "plans_per_period"), [(600.0, 2), (1800.0, 1)])
def test_a_plan_at_each_period_and_again_when_its_price_is_published(published_after_s: float,
                                                                     plans_per_period: int) -> None:
    site = load_site(DEMO).config
    day = date(2026, 4, 13)
    out = run_strategy(site, flat_history(10.0), day, day, "plan", step_s=300, published_after_s=published_after_s)
    assert out.plans == 48 * plans_per_period and out.plan_failures == 0


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", "backtest", "--site", str(DEMO), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_compare_json_has_the_spec_shape_on_the_shipped_history(tmp_path: Path) -> None:
    out = backtest("--history", str(SHIPPED), "--from", "2026-10-05", "--to", "2026-10-06", "--compare", "--json",
                   "--step-s", "300", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["days"] == 2 and set(answer["strategies"]) == {"modes", "plan", "perfect"}
    assert answer["published_after_s"] == 600  # the live price, from when the engine trusts it
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
    (["--history", str(SHIPPED), "--from", "2026-10-05", "--to", "2026-10-05", "--published-after-s", "-1"],
     "--published-after-s: must be a finite number >= 0"),
])
def test_bad_arguments_are_one_line(args: list[str], message: str) -> None:
    out = backtest(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and "Traceback" not in out.stderr


def test_perfect_foresight_plans_without_the_preferred_band() -> None:
    # The band is priced, not money (a hedge): with the prices known there is nothing to hedge.
    from controller.planner.config import SoeBand

    site = load_site(DEMO).config
    assert site.planner is not None
    banded = site.model_copy(update={"planner": site.planner.model_copy(
        update={"band": SoeBand(low_kwh=600, high_kwh=950, breach_p_per_kwh_h=5.0)})})
    start = datetime(2026, 4, 4, 23, tzinfo=UTC)
    rows = [HistoryRow(start + timedelta(minutes=30 * i), 20.0, 30.0 if 34 <= i % 48 < 38 else 4.0, 0.0, None)
            for i in range(9 * 48)]
    day = date(2026, 4, 13)
    plain = run_strategy(site, rows, day, day, "perfect", step_s=300)
    with_band = run_strategy(banded, rows, day, day, "perfect", step_s=300)
    assert plain.discharged_kwh > 100 and with_band.value_p == pytest.approx(plain.value_p)
    hedged = run_strategy(banded, rows, day, day, "plan", step_s=300)
    assert hedged.limit_violations == 0
