"""`flux-edge backtest`: deterministic, limit-clean on the demo site, hand-checked accounting, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from controller.backtest.accounts import Accounts
from controller.backtest.inputs import Settlement, read_market, read_series
from controller.backtest.market import RecordedMarket
from controller.backtest.run import soe_tolerance_kwh
from controller.cli import main
from controller.engine.envelope import Limits
from controller.engine.schedule import zone
from controller.engine.settlement import sp_start
from simulator.market import load_day

LONDON = zone("Europe/London")
SAMPLE_DAY = "2026-04-15"  # a Wednesday: the demo site's weekday peak modes run
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _sample_args(root: Path, out: Path) -> list[str]:
    data = root / "simulator" / "data"
    return ["backtest", "--site", str(root / "config" / "sites" / "demo.yaml"), "--day", SAMPLE_DAY,
            "--market", str(data / "backtest_market.csv"), "--load", str(data / "backtest_load.csv"),
            "--solar", str(data / "backtest_solar.csv"), "--axle", str(data / "backtest_axle.json"), "--out", str(out)]


def test_sample_day_is_deterministic_limit_clean_and_charted(root: Path, tmp_path: Path) -> None:
    summaries = []
    for run in ("first", "second"):
        out = tmp_path / run
        done = subprocess.run([sys.executable, "-m", "controller", *_sample_args(root, out)], check=False, cwd=root,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        summaries.append((out / "summary.json").read_bytes())
    assert summaries[0] == summaries[1]
    summary = json.loads(summaries[0])
    assert summary["limit_violations"] == 0
    assert set(summary["limit_violation_steps"].values()) == {0}
    assert summary["ticks"] == 24 * 3600 / 4 and summary["stale_ticks"] == 0 and summary["mode_errors"] == 0
    # The weekday peak ran: the battery discharged then, and charged before it.
    assert summary["effective_mode_s"]["dynamic_peak_discharge"] > 0
    assert summary["discharged_kwh"] > 100 and summary["charged_kwh"] > 100
    # Both half-hour Axle steps (charge_max, discharge_max) were followed.
    assert summary["effective_mode_s"]["axle"] == 3600 and summary["axle_unknown_actions"] == 0
    png = (tmp_path / "first" / "chart.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 20_000
    assert png == (tmp_path / "second" / "chart.png").read_bytes()
    ticks = (tmp_path / "first" / "ticks.csv").read_text().splitlines()
    assert ticks[0].startswith("time,soe_kwh,") and len(ticks) == 1 + summary["ticks"]


TINY_SITE = """\
site: {id: tiny, name: Tiny backtest site, timezone: Europe/London}
devices:
  - {type: powerpack, name: bess, id: 00000000-0000-4000-8000-000000000001, host: 127.0.0.1, port: 1502,
     nameplate_power_kw: 200, nameplate_energy_kwh: 1000}
  - {type: acuvim2, name: site-meter, id: 00000000-0000-4000-8000-000000000002, host: 127.0.0.1, port: 1503}
controller:
  site_meter: site-meter
  battery: bess
  soe_min_kwh: 50
  soe_max_kwh: 950
  charge_efficiency: 0.92
  battery_charge_limit_kw: 200
  battery_discharge_limit_kw: 200
  site_import_limit_kw: 300
  site_export_limit_kw: 300
  modes:
    - type: MODE
      periods: [{start: "10:00", end: "12:00"}]
      params: {soe_kwh: TARGET}
simulator:
  site_model: {initial_soe_kwh: START, charge_efficiency: 0.92}
"""


def _constant_market(path: Path, price_gbp_mwh: float) -> Path:
    path.write_text("date,settlement_period,system_price,niv\n"
                    + "".join(f"{SAMPLE_DAY},{n},{price_gbp_mwh},10\n" for n in range(1, 49)))
    return path


# One row per scenario: the only mode asks for a constant power for 2 h (energy / hours left stays
# constant as the battery follows), against a constant price, a constant 50 kW load and no solar.
# Charging 200 kWh stores 184 kWh at the 0.92 efficiency.
@pytest.mark.parametrize(
    ("mode", "start_soe", "target_soe", "price", "charged", "discharged", "revenue_gbp", "imported", "exported",
     "peak_import", "peak_export", "end_soe"),
    [
        # 100 kW out for 2 h at 10 p/kWh: 200 kWh x 10 p = £20; the site exports 50 kW meanwhile.
        ("discharge_to_soe", 500, 300, 100.0, 0.0, 200.0, 20.0, 50 * 22, 50 * 2, 50.0, 50.0, 300.0),
        # 100 kW in for 2 h at -5 p/kWh: paid 200 kWh x 5 p = £10; the site imports 150 kW meanwhile.
        ("charge_to_soe", 300, 484, -50.0, 200.0, 0.0, 10.0, 50 * 22 + 150 * 2, 0.0, 150.0, 0.0, 484.0),
        # 100 kW in for 2 h at 8 p/kWh: costs £16.
        ("charge_to_soe", 300, 484, 80.0, 200.0, 0.0, -16.0, 50 * 22 + 150 * 2, 0.0, 150.0, 0.0, 484.0),
        # Nothing to do (already at target): no energy, no revenue, the load alone.
        ("discharge_to_soe", 300, 300, 100.0, 0.0, 0.0, 0.0, 50 * 24, 0.0, 50.0, 0.0, 300.0),
    ])
def test_constant_setpoint_against_constant_price(
        tmp_path: Path, mode: str, start_soe: float, target_soe: float, price: float, charged: float,
        discharged: float, revenue_gbp: float, imported: float, exported: float, peak_import: float,
        peak_export: float, end_soe: float) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(TINY_SITE.replace("MODE", mode).replace("TARGET", str(target_soe))
                    .replace("START", str(start_soe)))
    market = _constant_market(tmp_path / "market.csv", price)
    load = tmp_path / "load.csv"
    load.write_text("time,kw\n00:00,50\n24:00,50\n")
    solar = tmp_path / "solar.csv"
    solar.write_text("time,kw\n00:00,0\n24:00,0\n")
    out = tmp_path / "out"
    assert main(["backtest", "--site", str(site), "--day", SAMPLE_DAY, "--market", str(market), "--load", str(load),
                 "--solar", str(solar), "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    got = {k: s[k] for k in ("charged_kwh", "discharged_kwh", "imbalance_revenue_gbp", "site_import_kwh",
                             "site_export_kwh", "peak_import_kw", "peak_export_kw", "soe_end_kwh")}
    want = {"charged_kwh": charged, "discharged_kwh": discharged, "imbalance_revenue_gbp": revenue_gbp,
            "site_import_kwh": imported, "site_export_kwh": exported, "peak_import_kw": peak_import,
            "peak_export_kw": peak_export, "soe_end_kwh": end_soe}
    assert got == pytest.approx(want, abs=0.02)
    assert s["equivalent_full_cycles"] == pytest.approx(discharged / 1000, abs=1e-4)
    assert s["limit_violations"] == 0


def _dated_market(path: Path, day: str, price_gbp_mwh: dict[int, float], default: float) -> Path:
    path.write_text("date,settlement_period,system_price,niv\n"
                    + "".join(f"{day},{n},{price_gbp_mwh.get(n, default)},10\n" for n in range(1, 49)))
    return path


def _value_site(modes: list[tuple[str, str, str, float]], start_soe: float, planner: str) -> str:
    """TINY_SITE with these (type, start, end, target SoE) modes, and a planner block where one is given."""
    head, tail = TINY_SITE.split("  modes:\n")
    block = "".join(f'    - {{type: {t}, periods: [{{start: "{a}", end: "{b}"}}], params: {{soe_kwh: {soe}}}}}\n'
                    for t, a, b, soe in modes)
    return (head + "  modes:\n" + block + tail[tail.index("simulator:"):]).replace("START", str(start_soe)) + planner


NIGHT_CHEAP, AFTERNOON_DEAR = {n: 40.0 for n in range(3, 7)}, {n: 200.0 for n in range(29, 33)}


# One row per way a day can end: the headline value is the cash plus the change in stored energy at one
# stated price, so a day that drains the battery is worth less than its cash, one that fills it more.
# (case, modes, start SoE, SP prices £/MWh, default price, extra args, planner block,
#  cash £, SoE change kWh, stored-energy price p/kWh, its source, value £)
@pytest.mark.parametrize(
    ("case", "modes", "start_soe", "prices", "default", "extra", "planner", "cash", "change", "price", "source",
     "value"),
    [
        # 200 kWh sold at 10 p (£20) out of the battery: at the day's mean, 10 p, the day made nothing.
        ("ends emptier", [("discharge_to_soe", "10:00", "12:00", 300)], 500, {}, 100.0, [], "",
         20.0, -200.0, 10.0, "day_mean_price", 0.0),
        # 200 kWh bought at 8 p (-£16) stores 184 kWh, worth £14.72 at the mean: the day cost £1.28.
        ("ends fuller", [("charge_to_soe", "10:00", "12:00", 484)], 300, {}, 80.0, [], "",
         -16.0, 184.0, 8.0, "day_mean_price", -1.28),
        # Bought 200 kWh at 4 p at night (-£8), sold the 184 kWh at 20 p (£36.80): the same SoE at both ends,
        # so the value is the cash whatever the price.
        ("same SoE at both ends",
         [("charge_to_soe", "01:00", "03:00", 484), ("discharge_to_soe", "14:00", "16:00", 300)], 300,
         {**NIGHT_CHEAP, **AFTERNOON_DEAR}, 100.0, [], "",
         28.8, 0.0, (4 * 40 + 4 * 200 + 40 * 100) / 48 / 10, "day_mean_price", 28.8),
        ("ends emptier, priced by the option", [("discharge_to_soe", "10:00", "12:00", 300)], 500, {}, 100.0,
         ["--stored-energy-price", "5"], "", 20.0, -200.0, 5.0, "stored_energy_price_option", 10.0),
        ("ends fuller, priced by the planner's terminal value", [("charge_to_soe", "10:00", "12:00", 484)], 300, {},
         80.0, [], "planner: {terminal_value_p_per_kwh: 12}\n", -16.0, 184.0, 12.0, "planner_terminal_value",
         6.08),
    ])
def test_the_value_counts_the_change_in_stored_energy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, modes: list[tuple[str, str, str, float]],
        start_soe: float, prices: dict[int, float], default: float, extra: list[str], planner: str, cash: float,
        change: float, price: float, source: str, value: float) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(_value_site(modes, start_soe, planner))
    load = tmp_path / "load.csv"
    load.write_text("time,kw\n00:00,50\n24:00,50\n")
    solar = tmp_path / "solar.csv"
    solar.write_text("time,kw\n00:00,0\n24:00,0\n")
    out = tmp_path / "out"
    market = _dated_market(tmp_path / "market.csv", SAMPLE_DAY, prices, default)
    assert main(["backtest", "--site", str(site), "--day", SAMPLE_DAY, "--market", str(market), "--load", str(load),
                 "--solar", str(solar), "--out", str(out), *extra]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["imbalance_revenue_gbp"] == pytest.approx(cash, abs=0.02)  # the raw cash stays
    assert s["stored_energy_change_kwh"] == pytest.approx(change, abs=0.05)
    assert s["stored_energy_price_p_per_kwh"] == pytest.approx(price, abs=1e-3)
    assert s["stored_energy_price_source"] == source
    assert s["value_gbp"] == pytest.approx(value, abs=0.03)
    assert s["value_gbp"] == pytest.approx(s["imbalance_revenue_gbp"] + s["stored_energy_value_gbp"], abs=0.011)
    if change < 0:
        assert s["value_gbp"] < s["imbalance_revenue_gbp"]
    elif change > 0:
        assert s["value_gbp"] > s["imbalance_revenue_gbp"]
    else:
        assert s["value_gbp"] == pytest.approx(s["imbalance_revenue_gbp"], abs=0.01)
    headline = capsys.readouterr().out.splitlines()[0]
    label = {"day_mean_price": "the day's mean price", "stored_energy_price_option": "--stored-energy-price",
             "planner_terminal_value": "planner.terminal_value_p_per_kwh"}[source]
    assert headline.startswith(f"backtest tiny {SAMPLE_DAY}: value ") and f"p/kWh, {label}: " in headline
    assert "cash " in headline


def test_a_load_beyond_the_import_limit_is_a_violation_exit_1(root: Path, tmp_path: Path) -> None:
    # An empty battery cannot help a 400 kW load on a 300 kW connection: every step imports 100 kW too much.
    site = tmp_path / "site.yaml"
    site.write_text(TINY_SITE.replace("MODE", "discharge_to_soe").replace("TARGET", "50").replace("START", "50"))
    load = tmp_path / "load.csv"
    load.write_text("time,kw\n00:00,400\n24:00,400\n")
    out = tmp_path / "out"
    assert main(["backtest", "--site", str(site), "--day", SAMPLE_DAY, "--market",
                 str(_constant_market(tmp_path / "market.csv", 50.0)), "--load", str(load), "--out", str(out)]) == 1
    s = json.loads((out / "summary.json").read_text())
    assert s["limit_violation_steps"]["site_import_over_limit"] == s["physics_steps"] == 24 * 3600
    assert s["limit_violation_worst"]["site_import_over_limit"] == pytest.approx(100)
    assert (out / "chart.png").exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--published-after-s", "-1", "--published-after-s: must be a finite number >= 0, got -1"),
    ("--soe-kwh", "nan", "--soe-kwh: must be a finite number >= 0, got nan"),
    ("--stored-energy-price", "inf", "--stored-energy-price: must be a finite number (p/kWh), got inf"),
])
def test_bad_option_is_one_line_and_exit_2(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           option: str, value: str, message: str) -> None:
    args = [*_sample_args(root, tmp_path / "out"), option, value]
    assert main(args) == 2
    assert capsys.readouterr().err == f"flux-edge backtest: {message}\n"


LIMITS = Limits(charge_kw=100, discharge_kw=100, import_kw=200, export_kw=150, soe_min_kwh=50, soe_max_kwh=950,
                max_reading_age_s=30)


# One row per behaviour of the step accounting: (steps of (seconds, battery kW, site kW, SoE, price p/kWh),
# expected figures). Revenue is discharged kWh x price - charged kWh x price.
@pytest.mark.parametrize(("steps", "want"), [
    ([(3600, 100, 0, 500, 10)], {"discharged_kwh": 100, "charged_kwh": 0, "imbalance_revenue_gbp": 10}),
    ([(1800, -50, 0, 500, 4)], {"discharged_kwh": 0, "charged_kwh": 25, "imbalance_revenue_gbp": -1}),
    ([(3600, -100, 0, 500, -2)], {"charged_kwh": 100, "imbalance_revenue_gbp": 2}),
    ([(1800, 100, 0, 500, 20), (1800, -100, 0, 500, 5)],
     {"discharged_kwh": 50, "charged_kwh": 50, "imbalance_revenue_gbp": 7.5, "equivalent_full_cycles": 0.05}),
    ([(3600, 0, 120, 500, 10), (1800, 0, -60, 500, 10)],
     {"site_import_kwh": 120, "site_export_kwh": 30, "peak_import_kw": 120, "peak_export_kw": 60,
      "imbalance_revenue_gbp": 0}),
    ([(1, 0, 0, 49.9, 1)], {"limit_violations": 0}),  # within one tick's reach of the bound
    ([(1, 0, 0, 49.0, 1), (1, 0, 0, 951.0, 1)],
     {"limit_violations": 2, "limit_violation_steps": {"soe_below_min": 1, "soe_above_max": 1,
                                                       "battery_discharge_over_limit": 0,
                                                       "battery_charge_over_limit": 0,
                                                       "site_import_over_limit": 0, "site_export_over_limit": 0}}),
    ([(1, 0, 200.5, 500, 1), (1, 0, -151, 500, 1), (1, 0, 200, 500, 1)],
     {"limit_violations": 2, "limit_violation_worst": {"soe_below_min": 0, "soe_above_max": 0,
                                                       "battery_discharge_over_limit": 0,
                                                       "battery_charge_over_limit": 0,
                                                       "site_import_over_limit": 0.5, "site_export_over_limit": 1}}),
    ([(1, 100.25, 0, 500, 1), (1, -101, 0, 500, 1)], {"limit_violations": 2}),
])
def test_step_accounting(steps: list[tuple[float, float, float, float, float]], want: dict[str, object]) -> None:
    accounts = Accounts(LIMITS, soe_tolerance_kwh=0.5)
    for dt, battery, site, soe, price in steps:
        accounts.add(dt, battery, site, soe, price)
    summary = accounts.summary(nameplate_energy_kwh=1000)
    for key, value in want.items():
        assert summary[key] == (value if isinstance(value, dict) else pytest.approx(value)), key


def test_soe_tolerance_is_one_tick_at_full_power_plus_the_ramp_down() -> None:
    # 250 kW for a 4 s tick, then 2.5 s ramping 250 -> 0 at 100 kW/s (counted at full power): 0.451 kWh.
    assert soe_tolerance_kwh(250, 200, 4, 100) == pytest.approx(250 * 6.5 / 3600)


def _settlements(day: date, prices: list[float]) -> list[Settlement]:
    return [Settlement(sp_start(day, n), p, float(n)) for n, p in enumerate(prices, start=1)]


@pytest.mark.parametrize(("seconds_after_sp3_start", "published_after_s", "known_sp"), [
    (0, 1800, 2),  # SP 3 just began: only SP 2 has ended
    (1799, 1800, 2),
    (1800, 1800, 3),  # SP 3's end: now it is known
    (599, 600, 2),  # a live-feed model: known 10 minutes into the SP
    (600, 600, 3),
    (-3 * 1800, 1800, None),  # before the first SP ended: nothing
])
def test_market_is_known_only_once_published(seconds_after_sp3_start: float, published_after_s: float,
                                             known_sp: int | None) -> None:
    day = date(2026, 4, 15)
    market = RecordedMarket(_settlements(day, [10.0 * n for n in range(1, 49)]), published_after_s)
    price, volume = market.known_at(sp_start(day, 3) + timedelta(seconds=seconds_after_sp3_start))
    if known_sp is None:
        assert price is None and volume is None
        return
    assert price is not None and volume is not None
    assert price.settlement_period == volume.settlement_period == sp_start(day, known_sp)
    assert price.value == pytest.approx(known_sp * 10.0 / 10)  # £/MWh -> p/kWh
    assert volume.value == known_sp


def test_the_sample_market_day_is_the_simulators_day_dated(root: Path) -> None:
    day = date(2026, 4, 15)
    data = root / "simulator" / "data"
    ours = read_market(data / "backtest_market.csv", day, LONDON)
    assert [(s.system_price, s.niv) for s in ours] == load_day((data / "modo_day.csv").read_text())
    assert ours[0].start == datetime(2026, 4, 14, 23, tzinfo=UTC)


def test_series_interpolates_local_clock_times(tmp_path: Path) -> None:
    path = tmp_path / "load.csv"
    path.write_text("# comment\ntime,kW\n00:00,10\n12:00,130\n24:00,10\n")
    series = read_series(path, date(2026, 4, 15), LONDON)
    noon_bst = datetime(2026, 4, 15, 11, tzinfo=UTC).timestamp()
    assert series.at(noon_bst) == 130
    assert series.at(noon_bst - 3 * 3600) == pytest.approx(100)


def _market_rows(rows: str) -> str:
    return "date,settlement_period,system_price,niv\n" + rows


def _day_rows(day: str, numbers: range) -> str:
    return "".join(f"{day},{n},50,1\n" for n in numbers)


GOOD_MARKET = _market_rows(_day_rows(SAMPLE_DAY, range(1, 49)))
UNDATED_MARKET = "settlement_period,system_price,niv\n" + "".join(f"{n},50,1\n" for n in range(1, 49))


BAD_MARKET_ROWS = [
    ("market.csv", "settlement_period,system_price\n1,50\n", SAMPLE_DAY,
     "market.csv:1: missing column(s) niv (have: settlement_period, system_price)"),
    ("market.csv", "# prices\n" + _market_rows("2026-04-15,1,50,1\n2026-04-15,2,fifty,1\n"), SAMPLE_DAY,
     "market.csv:4: system_price: not a number: 'fifty'"),
    ("market.csv", _market_rows("2026-04-15,1,50,1\n2026-04-15,x,50,1\n"), SAMPLE_DAY,
     "market.csv:3: settlement_period: not an integer"),
    ("market.csv", _market_rows("2026-04-15,1,50\n"), SAMPLE_DAY, "market.csv:2: expected 4 cells, got 3"),
    ("market.csv", _market_rows("2026-04-15,1,50,1\n2026-04-15,1,50,1\n"), SAMPLE_DAY,
     "market.csv:3: settlement period 2026-04-15 #1 given twice"),
    ("market.csv", _market_rows("15/04/2026,1,50,1\n"), SAMPLE_DAY, "market.csv:2: date: not a YYYY-MM-DD date"),
    # SP 49 of an ordinary day would be the next day's SP 1.
    ("market.csv", _market_rows("2026-04-15,49,50,1\n"), SAMPLE_DAY,
     "market.csv:2: settlement_period: 49 is not in 1..48 (the SPs of 2026-04-15)"),
]


# One row per market file that cannot show it covers the day asked for: (its text, --day, the whole error).
@pytest.mark.parametrize(("text", "day", "message"), [
    # Settlement periods alone could be any day's: refused whatever the day, even one they would fit.
    (UNDATED_MARKET, SAMPLE_DAY,
     "market.csv: no date column, so nothing shows its prices are 2026-04-15's: give each row its GB date "
     "(YYYY-MM-DD, as Modo answers), like simulator/data/backtest_market.csv"),
    ("# one day's prices\nsettlement_period,system_price,niv\n", "2026-10-25",
     "market.csv: no date column, so nothing shows its prices are 2026-10-25's"),
    # Dated, but another day: the error names the day asked for and what the file has.
    (_market_rows(_day_rows("2026-04-14", range(1, 49))), SAMPLE_DAY,
     "market.csv: does not cover 2026-04-15: 48 of its 48 settlement periods missing (UTC starts "
     "2026-04-14T23:00:00+00:00, 2026-04-14T23:30:00+00:00, 2026-04-15T00:00:00+00:00, ...); "
     "the file has 2026-04-14 SP 1 to 2026-04-14 SP 48"),
    # Dated, the day's last hour missing.
    (_market_rows(_day_rows(SAMPLE_DAY, range(1, 47))), SAMPLE_DAY,
     "market.csv: does not cover 2026-04-15: 2 of its 48 settlement periods missing (UTC starts "
     "2026-04-15T22:00:00+00:00, 2026-04-15T22:30:00+00:00); the file has 2026-04-15 SP 1 to 2026-04-15 SP 46"),
    # A clock-change day has 50 periods: its first 48 do not cover it.
    (_market_rows(_day_rows("2026-10-25", range(1, 49))), "2026-10-25",
     "market.csv: does not cover 2026-10-25: 2 of its 50 settlement periods missing (UTC starts "
     "2026-10-25T23:00:00+00:00, 2026-10-25T23:30:00+00:00); the file has 2026-10-25 SP 1 to 2026-10-25 SP 48"),
    (_market_rows(""), SAMPLE_DAY,
     "market.csv: does not cover 2026-04-15: 48 of its 48 settlement periods missing (UTC starts "
     "2026-04-14T23:00:00+00:00, 2026-04-14T23:30:00+00:00, 2026-04-15T00:00:00+00:00, ...); "
     "the file has no settlement periods"),
])
def test_a_market_file_that_cannot_show_it_covers_the_day_is_refused(
        root: Path, tmp_path: Path, text: str, day: str, message: str) -> None:
    (tmp_path / "market.csv").write_text(text)
    done = subprocess.run([sys.executable, "-m", "controller", "backtest", "--site",
                           str(root / "config" / "sites" / "demo.yaml"), "--day", day, "--market", "market.csv",
                           "--out", "out"], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"flux-edge backtest: {message}"), done.stderr
    assert not (tmp_path / "out").exists()


# One row per bad input: (file name, its text, extra arguments, the expected one-line message part).
@pytest.mark.parametrize(("name", "text", "day", "message"), [
    *BAD_MARKET_ROWS,
    ("load.csv", "time,kw\n00:00,10\n12:00,10\n", SAMPLE_DAY, "load.csv: does not cover 2026-04-15"),
    ("load.csv", "time,kw\n00:00,10\n12:00,-1\n24:00,1\n", SAMPLE_DAY, "load.csv:3: kw: must be >= 0"),
    ("load.csv", "time,kw\n00:00,10\n00:00,10\n24:00,1\n", SAMPLE_DAY, "load.csv:3: time: 00:00 is not after"),
    ("load.csv", "time,kw\n2026-04-15T00:00,10\n", SAMPLE_DAY, "load.csv:2: time: give a UTC offset"),
    ("load.csv", "time,kw\nnoon,10\n", SAMPLE_DAY, "load.csv:2: time: expected HH:MM[:SS]"),
    ("market.csv", GOOD_MARKET, "15/04/2026", "--day: not a YYYY-MM-DD date: '15/04/2026'"),
    ("axle.json", '{"schedule_steps": [\n{"action": "charge_max",}]}', SAMPLE_DAY, "axle.json:2: not JSON"),
    ("axle.json", '{"steps": []}', SAMPLE_DAY, 'axle.json: expected {"schedule_steps": [...]}'),
    ("axle.json", '{"schedule_steps": [{"action": "charge_max", "start_timestamp": "2026-04-15T03:00",'
     ' "end_timestamp": "2026-04-15T04:00+01:00"}]}', SAMPLE_DAY,
     "axle.json: schedule_steps.0.start_timestamp: give a UTC offset"),
    ("axle.json", '{"schedule_steps": [{"action": "charge_max", "start_timestamp": "2026-04-15T04:00Z",'
     ' "end_timestamp": "2026-04-15T04:00Z"}]}', SAMPLE_DAY,
     "axle.json: schedule_steps.0: end_timestamp is not after start_timestamp"),
])
def test_bad_input_is_one_line_and_exit_2(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          name: str, text: str, day: str, message: str) -> None:
    files = {"market.csv": GOOD_MARKET, "load.csv": "time,kw\n00:00,10\n24:00,10\n",
             "axle.json": '{"schedule_steps": []}', name: text}
    for file_name, content in files.items():
        (tmp_path / file_name).write_text(content)
    code = main(["backtest", "--site", str(root / "config" / "sites" / "demo.yaml"), "--day", day,
                 "--market", str(tmp_path / "market.csv"), "--load", str(tmp_path / "load.csv"),
                 "--axle", str(tmp_path / "axle.json"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("flux-edge backtest: ")
    assert message in err
    assert not (tmp_path / "out").exists()


def test_the_cli_loads_neither_matplotlib_nor_the_simulator(root: Path) -> None:
    # Every command module loads with the CLI (the daemon's entry point too).
    code = ("import sys, controller.cli as c; c.build_parser(); "
            "bad = [m for m in ('matplotlib', 'simulator.modbus_devices') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=root, timeout=60).returncode == 0
