"""`flux-edge backtest --site FILE --day DATE --market CSV [--load CSV --solar CSV --axle JSON] --out DIR`, and
`flux-edge backtest --site FILE --history CSV --from DATE --to DATE [--strategy modes|plan|perfect] [--compare]
[--json] [--out DIR]` over many days (controller/backtest/multiday.py; the spec's "Planning contract").

The single day writes DIR/summary.json (energy, cycles, value = imbalance cash + the change in stored energy at
a stated price, peaks, limit violations, time per mode), DIR/chart.png and DIR/ticks.csv (one row per tick).
Exit 0; 1 when the physics saw a limit violation (outputs still written); 2 with one line on stderr for a bad
site file, CSV, day or output directory.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.backtest.accounts import PRICE_FROM_DAY_MEAN, PRICE_FROM_OPTION, PRICE_FROM_PLANNER
from controller.backtest.inputs import InputError, read_axle, read_market, read_series
from controller.backtest.market import PUBLISHED_AT_SP_END_S, RecordedMarket
from controller.commands.common import load_site_or_report
from controller.engine.prediction import CURRENT_SP_TRUSTED_AFTER_S as LIVE_AFTER_S
from controller.engine.schedule import zone

if TYPE_CHECKING:
    from controller.backtest.run import BacktestResult

SUMMARY_FILE = "summary.json"
CHART_FILE = "chart.png"
TICKS_FILE = "ticks.csv"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE")
    p.add_argument("--history", metavar="CSV", help="many days: the spec's history CSV (with --from, --to)")
    p.add_argument("--from", dest="first", metavar="DATE", help="many days: first local date (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", metavar="DATE", help="many days: last local date, inclusive")
    p.add_argument("--strategy", choices=("modes", "plan", "perfect"), default="plan",
                   help="many days: the rule-based modes, the planner on forecasts, or on the actuals")
    p.add_argument("--compare", action="store_true", help="many days: all three strategies on the same days")
    p.add_argument("--json", action="store_true", help="many days: the spec's JSON instead of a table")
    p.add_argument("--step-s", type=float, default=60.0, metavar="S", help="many days: simulation step")
    p.add_argument("--day", metavar="DATE", help="one day: local date in the site's timezone, YYYY-MM-DD")
    p.add_argument("--market", metavar="CSV",
                   help="date,settlement_period,system_price (GBP/MWh),niv (MWh), as "
                        "simulator/data/backtest_market.csv (a file without dates is refused)")
    p.add_argument("--load", metavar="CSV", help="time,kw site load replacing the simulator's profile")
    p.add_argument("--solar", metavar="CSV", help="time,kw solar generation replacing the simulator's profile")
    p.add_argument("--axle", metavar="JSON", help="Axle battery schedule, as Axle's API answers it")
    p.add_argument("--out", metavar="DIR", help=f"one day: writes {SUMMARY_FILE}, {CHART_FILE}, {TICKS_FILE}; "
                   "many days: writes days.png")
    p.add_argument("--published-after-s", type=float, default=None, metavar="S",
                   help="an SP's price and NIV are known this long after it starts (default: one day at its end, "
                        f"{PUBLISHED_AT_SP_END_S:g} s; many days {LIVE_AFTER_S:g} s, the live price as the engine "
                        "trusts it)")
    p.add_argument("--soe-kwh", type=float, metavar="KWH",
                   help="SoE at the start of the day (default: the simulator's initial_soe_kwh)")
    p.add_argument("--stored-energy-price", type=float, metavar="P_PER_KWH",
                   help="one day: what a kWh more (or less) in the battery at the end is worth, p/kWh (default: the "
                        "site's planner.terminal_value_p_per_kwh, else the day's mean recorded price)")


def _file_info(path: Path) -> dict[str, str]:
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {"site_file": _file_info(Path(args.site)), "market": _file_info(Path(args.market))}
    for name in ("load", "solar", "axle"):
        value = getattr(args, name)
        info[name] = None if value is None else _file_info(Path(value))
    info["initial_soe_kwh"] = args.soe_kwh
    info["stored_energy_price_p_per_kwh"] = args.stored_energy_price
    return info


def _day(args: argparse.Namespace) -> date:
    """The --day, after checking the numeric options argparse cannot (one-line errors, exit 2)."""
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        raise InputError(f"--day: not a YYYY-MM-DD date: {args.day!r}") from None
    _published_after_s(args, PUBLISHED_AT_SP_END_S)
    if args.soe_kwh is not None and (not math.isfinite(args.soe_kwh) or args.soe_kwh < 0):
        raise InputError(f"--soe-kwh: must be a finite number >= 0, got {args.soe_kwh:g}")
    if args.stored_energy_price is not None and not math.isfinite(args.stored_energy_price):
        raise InputError(f"--stored-energy-price: must be a finite number (p/kWh), got {args.stored_energy_price:g}")
    return day


PRICE_SOURCES = {PRICE_FROM_OPTION: "--stored-energy-price", PRICE_FROM_PLANNER: "planner.terminal_value_p_per_kwh",
                 PRICE_FROM_DAY_MEAN: "the day's mean price"}


def _gbp(value: float) -> str:
    return f"-£{-value:.2f}" if value < 0 else f"£{value:.2f}"


def _value_line(s: dict[str, Any]) -> str:
    """The headline: value first, with the cash and the stored energy it is made of, and whose price."""
    return (f"value {_gbp(s['value_gbp'])} (cash {_gbp(s['imbalance_revenue_gbp'])}, stored energy "
            f"{s['stored_energy_change_kwh']:+.1f} kWh at {s['stored_energy_price_p_per_kwh']:.2f} p/kWh, "
            f"{PRICE_SOURCES[s['stored_energy_price_source']]}: {_gbp(s['stored_energy_value_gbp'])})")


def _write_ticks(result: BacktestResult, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time", "soe_kwh", "site_kw", "setpoint_kw", "battery_kw", "price_p_per_kwh",
                    "effective_modes", "constraints"])
        for s in result.samples:
            w.writerow([s.time.isoformat(), f"{s.soe_kwh:.3f}", f"{s.site_kw:.3f}", f"{s.setpoint_kw:.3f}",
                        f"{s.battery_kw:.3f}", f"{s.price_p_per_kwh:.3f}", " ".join(s.effective),
                        " ".join(s.constraints)])


def _published_after_s(args: argparse.Namespace, default: float) -> float:
    """--published-after-s, checked (one-line errors), or `default`; stored back on `args`."""
    if args.published_after_s is None:
        args.published_after_s = default
    if not math.isfinite(args.published_after_s) or args.published_after_s < 0:
        raise InputError(f"--published-after-s: must be a finite number >= 0, got {args.published_after_s:g}")
    return float(args.published_after_s)


def _date(value: str | None, flag: str) -> date:
    if value is None:
        raise InputError(f"{flag}: required with --history")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{flag}: not a YYYY-MM-DD date: {value!r}") from None


def _table(answer: dict[str, Any]) -> str:
    lines = [f"backtest {answer['from']} .. {answer['to']} ({answer['days']} days)", "",
             f"{'STRATEGY':<10} {'VALUE GBP':>10} {'CYCLES':>8} {'VIOLATIONS':>10} {'RATIO TO PERFECT':>17}"]
    for name, s in answer["strategies"].items():
        ratio = "-" if s["ratio_to_perfect"] is None else f"{s['ratio_to_perfect']:.3f}"
        lines.append(f"{name:<10} {s['value_gbp']:>10.2f} {s['cycles']:>8.2f} {s['limit_violations']:>10} {ratio:>17}")
    return "\n".join(lines)


def run_many_days(args: argparse.Namespace) -> int:
    from controller.backtest.multiday import BacktestInputError, compare
    from controller.core.logs import configure_logging
    from controller.planner.history import HistoryError, read_history

    configure_logging("console", "error", stream=sys.stderr)
    site = load_site_or_report(args.site, defer_secrets=True)
    if site is None:
        return 2
    try:
        first, last = _date(args.first, "--from"), _date(args.last, "--to")
        if last < first:
            raise InputError("--to: before --from")
        if not math.isfinite(args.step_s) or not 0 < args.step_s <= 1800 or 1800 % args.step_s:
            raise InputError(f"--step-s: must divide 1800 s, got {args.step_s:g}")
        published = _published_after_s(args, LIVE_AFTER_S)
        history = read_history(Path(args.history))
        strategies = ("modes", "plan", "perfect") if args.compare else (args.strategy,)
        answer = compare(site, history, first, last, strategies, step_s=args.step_s, published_after_s=published)
    except (InputError, HistoryError, BacktestInputError) as exc:
        print(f"flux-edge backtest: {exc}", file=sys.stderr)
        return 2
    if args.out:
        from controller.backtest.chart import draw_days

        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            draw_days(answer, out / "days.png")
        except OSError as exc:
            print(f"flux-edge backtest: {out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    print(json.dumps(answer) if args.json else _table(answer))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.history is not None:
        return run_many_days(args)
    missing = [flag for flag, v in (("--day", args.day), ("--market", args.market), ("--out", args.out)) if v is None]
    if missing:
        print(f"flux-edge backtest: {', '.join(missing)} required (or --history, --from, --to for many days)",
              file=sys.stderr)
        return 2
    # Imported here: every command module loads with the CLI, and the daemon needs neither the
    # simulator's models nor matplotlib.
    from controller.backtest.chart import draw_chart
    from controller.backtest.run import run_backtest

    site = load_site_or_report(args.site, defer_secrets=True)
    if site is None:
        return 2
    out = Path(args.out)
    try:
        day = _day(args)
        tz = zone(site.site.timezone)
        market = RecordedMarket(read_market(Path(args.market), day, tz), args.published_after_s)
        load = None if args.load is None else read_series(Path(args.load), day, tz)
        solar = None if args.solar is None else read_series(Path(args.solar), day, tz)
        axle = () if args.axle is None else read_axle(Path(args.axle))
        result = run_backtest(site, day, market, load=load, solar=solar, axle=axle, initial_soe_kwh=args.soe_kwh,
                              stored_energy_price_p_per_kwh=args.stored_energy_price, inputs=_inputs(args))
        out.mkdir(parents=True, exist_ok=True)
    except InputError as exc:
        print(f"flux-edge backtest: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"flux-edge backtest: {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    summary = result.summary()
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _write_ticks(result, out / TICKS_FILE)
    draw_chart(result, out / CHART_FILE)
    print(f"backtest {summary['site']} {summary['day']}: {_value_line(summary)}")
    print(f"charged {summary['charged_kwh']:.1f} kWh, discharged {summary['discharged_kwh']:.1f} kWh "
          f"(SoE {summary['soe_start_kwh']:.1f} -> {summary['soe_end_kwh']:.1f} kWh), "
          f"{summary['equivalent_full_cycles']:.3f} cycles, peak import {summary['peak_import_kw']:.1f} kW, "
          f"limit violations {summary['limit_violations']}")
    for name in (SUMMARY_FILE, CHART_FILE, TICKS_FILE):
        print(f"wrote {out / name}")
    if summary["limit_violations"]:
        print(f"flux-edge backtest: {summary['limit_violations']} physics steps beyond the site's limits "
              f"(see limit_violation_steps in {out / SUMMARY_FILE})", file=sys.stderr)
        return 1
    return 0
