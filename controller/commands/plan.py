"""`flux-edge plan --site FILE [--at ISO] [--history CSV] [--soe-kwh KWH] [--axle JSON] [--json]`: the plan
the site's planner makes at `--at` (default now), as a table for people or the spec's JSON for tools.

The forecast is the planner's persistence stand-in on `--history` (until `controller.forecast` lands); the
prices come from the site's `planner.price` source. The solve runs in the planner's child process, as in
the daemon. Exit 0 with a plan (optimal or naming its breaches); 1 with the `fallback` answer when no plan
could be made (the reason in its notes); 2 with one line on stderr for a bad site file or input.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.commands.common import load_site_or_report
from controller.config.site import SiteConfig
from controller.core.clock import parse_utc
from controller.core.logs import configure_logging
from controller.engine.schedule import zone
from controller.engine.site_state import AxleStep
from controller.planner.config import HttpPriceSource, PlannerConfig, SchedulePriceSource
from controller.planner.history import HistoryError, HistoryRow, read_history
from controller.planner.inputs import build_inputs, horizon_starts
from controller.planner.model import Plan, PlanInputs
from controller.planner.persistence import persistence_forecast
from controller.planner.prices import PriceFileError, fetch_agile, read_prices
from controller.planner.runner import PlanFailure, PlannerProcess


class PlanInputError(ValueError):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE")
    p.add_argument("--at", metavar="ISO", help="plan as if now were this time (default: now)")
    p.add_argument("--history", metavar="CSV", help="the spec's history CSV: the forecast's source")
    p.add_argument("--soe-kwh", type=float, metavar="KWH",
                   help="the SoE now (default: the history's latest soe_end_kwh, else mid-way between the bounds)")
    p.add_argument("--axle", metavar="JSON", help="Axle battery schedule, as Axle's API answers it")
    p.add_argument("--json", action="store_true", help="the spec's JSON instead of a table")


def planner_of(site: SiteConfig) -> tuple[PlannerConfig, list[str]]:
    if site.planner is None:
        return PlannerConfig(), ["the site file has no planner block: its defaults are used"]
    return site.planner, []


def schedule_prices(site_file: str, config: PlannerConfig) -> dict[datetime, float] | None:
    if isinstance(config.price, HttpPriceSource):
        return fetch_agile(config.price.url, config.price.value, config.price.timeout_s)
    if not isinstance(config.price, SchedulePriceSource):
        return None
    path = Path(config.price.path)
    return read_prices(path if path.is_absolute() else Path(site_file).parent / path)


def soe_now(requested: float | None, history: list[HistoryRow], at: datetime, site: SiteConfig,
            notes: list[str]) -> float:
    if requested is not None:
        return requested
    known = [r.soe_end_kwh for r in history if r.soe_end_kwh is not None and r.start <= at]
    if known:
        return known[-1]
    assert site.controller is not None
    mid = (site.controller.soe_min_kwh + site.controller.soe_max_kwh) / 2
    notes.append(f"SoE now unknown: assumed {mid:g} kWh (mid-way between the bounds)")
    return mid


def make_inputs(site: SiteConfig, site_file: str, at: datetime, history: list[HistoryRow], *, soe_kwh: float | None,
                axle: tuple[AxleStep, ...] = ()) -> tuple[PlanInputs, PlannerConfig]:
    """The inputs of the plan made at `at` for `site` (its planner block, limits, rates) on `history`."""
    assert site.controller is not None
    config, notes = planner_of(site)
    if not history:
        notes.append("no history: nothing to forecast from")
    forecast = persistence_forecast(history, at, horizon_starts(at, config.horizon_h))
    c = site.controller
    x = build_inputs(config, c.limits(), at, soe_now(soe_kwh, history, at, site, notes), forecast,
                     import_rates=c.import_rates, export_rates=c.export_rates, axle=axle,
                     prices=schedule_prices(site_file, config), notes=notes)
    return x, config


def fallback_answer(at: datetime, reason: str) -> dict[str, Any]:
    return {"plan_id": None, "created_at": at.isoformat(), "status": "fallback", "breaches": [],
            "expected_value_gbp": 0.0, "periods": [], "notes": [reason]}


def table(plan: Plan, timezone: str) -> str:
    tz = zone(timezone)
    lines = [f"plan {plan.plan_id}   made {plan.created_at.isoformat()}   status {plan.status}   "
             f"expected value {plan.expected_value_gbp:.2f} GBP   solved in {plan.solve_ms:.1f} ms"]
    lines += [f"breach  {b}" for b in plan.breach_lines()]
    lines += [f"note    {n}" for n in plan.notes]
    lines.append("")
    lines.append(f"{'START (' + timezone + ')':<26} {'BATTERY kW':>10} {'SOE END kWh':>11} {'PRICE p/kWh':>11} "
                 f"{'NET LOAD kW':>11} {'SITE kW':>9}")
    for p in plan.periods:
        lines.append(f"{p.start.astimezone(tz).strftime('%a %Y-%m-%d %H:%M'):<26} {p.battery_kw:>10.1f} "
                     f"{p.soe_end_kwh:>11.1f} {p.price_p_per_kwh:>11.2f} {p.net_load_kw:>11.1f} {p.site_kw:>9.1f}")
    return "\n".join(lines)


def _inputs(args: argparse.Namespace, site: SiteConfig) -> tuple[datetime, PlanInputs, PlannerConfig]:
    # Imported here: only this command reads Axle files.
    from controller.backtest.inputs import InputError, read_axle

    try:
        at = parse_utc(args.at) if args.at else datetime.now(UTC)
    except ValueError as exc:
        raise PlanInputError(f"--at: {exc}") from None
    if args.soe_kwh is not None and not 0 <= args.soe_kwh < float("inf"):
        raise PlanInputError(f"--soe-kwh: must be a finite number >= 0, got {args.soe_kwh:g}")
    try:
        history = read_history(Path(args.history)) if args.history else []
        axle = read_axle(Path(args.axle)) if args.axle else ()
        x, config = make_inputs(site, args.site, at, history, soe_kwh=args.soe_kwh, axle=axle)
    except (HistoryError, PriceFileError, InputError) as exc:
        raise PlanInputError(str(exc)) from None
    return at, x, config


def run(args: argparse.Namespace) -> int:
    configure_logging("console", "error", stream=sys.stderr)
    site = load_site_or_report(args.site, defer_secrets=True)
    if site is None:
        return 2
    if site.controller is None:
        print(f"{args.site}: the site file has no controller section", file=sys.stderr)
        return 2
    try:
        at, x, config = _inputs(args, site)
    except PlanInputError as exc:
        print(f"flux-edge plan: {exc}", file=sys.stderr)
        return 2
    try:
        with PlannerProcess() as proc:
            # The child's start-up is not the solve's: give it its own allowance on this one-off run.
            proc.start()
            plan = proc.plan(x, config.solve_time_limit_s).plan
    except PlanFailure as exc:
        answer = fallback_answer(at, f"no plan: {exc}")
        print(json.dumps(answer) if args.json else f"plan: fallback ({answer['notes'][0]})")
        return 1
    print(json.dumps(plan.as_json()) if args.json else table(plan, site.site.timezone))
    return 0

