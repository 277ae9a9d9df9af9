"""Many days of a history CSV under three strategies, on the same days and the same physics:

- `modes`: the site's rule-based modes (no plan);
- `plan`: the same modes with the `plan` mode tracking a plan re-made, as the daemon re-makes it, at every
  settlement period and again when the running period's price is published, from what was known then (the
  site's forecasters, `controller.forecast`, on the history's earlier rows and that published price);
- `perfect`: the same, the planner fed the actual prices and loads of the horizon (and without the site's
  preferred SoE band, a hedge with nothing to hedge when the prices are known).

Every `step_s` of simulated time (60 s by default) the engine's own `Decider` decides on the state the site
would show (site power = net load - the last setpoint; the imbalance price and volume of the newest period
published, `market_view`; the plan), and the battery runs the setpoint for the step exactly: SoE += charge x
efficiency, -= discharge. The history's net load (battery removed) and prices are the actuals. Publication:
by default a period's price and volume count as known from `LIVE_AFTER_S` (600 s) into it, when the engine
starts trusting the running period's live figure (modes.md); the history holds only the outturn, so the live
figure is taken to be the outturn (the simulator's Modo does the same; a real feed's live estimate can still
move after 10 minutes). `published_after_s=SP_S` (`--published-after-s 1800`) is the conservative model:
nothing of a period is known before it ends. What this does not model: ramp rates, poll latency, load
varying inside a half-hour, Axle (the history has none).

Value (spec README, "Planning contract"): what the site's energy would cost without the battery minus what it
costs with it, at the site's value model (price + import rate on import, price - export rate on export),
less the throughput cost, plus the change in stored energy valued at the planner's terminal value (else
the mean price over the days): a battery left emptier than it started has not earned that energy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from controller.config.site import SiteConfig
from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast
from controller.engine.decision import Decider
from controller.engine.prediction import CURRENT_SP_TRUSTED_AFTER_S
from controller.engine.rates import rate_now
from controller.engine.schedule import local_midnight, zone
from controller.engine.settlement import SP, SP_S, current_sp_start
from controller.engine.site_state import MarketValue, PlanTargets, SiteState
from controller.forecast.forecasters import HISTORY_DAYS_USED, forecast_site
from controller.planner.config import PlannerConfig
from controller.planner.history import HistoryRow, forecast_history
from controller.planner.inputs import build_inputs, horizon_starts
from controller.planner.model import Plan
from modes.base import Mode
from modes.catalog import build_modes
from modes.plan import PlanModeConfig

STRATEGIES = ("modes", "plan", "perfect")
# The running period's price and volume are taken as known from when the engine trusts them (modes.md):
# the simulator's Modo publishes them as the period starts, a real feed's live figure settles within minutes.
LIVE_AFTER_S = CURRENT_SP_TRUSTED_AFTER_S


class BacktestInputError(ValueError):
    pass


@dataclass
class Outcome:
    strategy: str
    value_p: float = 0.0
    base_cost_p: float = 0.0
    cost_p: float = 0.0
    throughput_p: float = 0.0
    stored_value_p: float = 0.0
    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0
    violations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("site_import", "site_export", "soe_min", "soe_max", "battery_power"), 0))
    plans: int = 0
    plan_failures: int = 0
    plan_breaches: int = 0
    daily_value_p: list[float] = field(default_factory=list)
    cycles: float = 0.0

    @property
    def limit_violations(self) -> int:
        return sum(self.violations.values())

    def as_json(self, perfect_value_p: float | None) -> dict[str, Any]:
        ratio = None
        if perfect_value_p is not None and perfect_value_p > 0:
            ratio = round(self.value_p / perfect_value_p, 4)
        return {"value_gbp": round(self.value_p / 100, 2), "cycles": round(self.cycles, 3),
                "limit_violations": self.limit_violations, "ratio_to_perfect": ratio,
                "violations": dict(self.violations), "charged_kwh": round(self.charged_kwh, 1),
                "discharged_kwh": round(self.discharged_kwh, 1), "plans": self.plans,
                "plan_failures": self.plan_failures, "plans_with_breaches": self.plan_breaches,
                "daily_value_gbp": [round(v / 100, 2) for v in self.daily_value_p]}


def _decider(site: SiteConfig, with_plan: bool) -> Decider:
    assert site.controller is not None
    c = site.controller
    configs = list(c.modes)
    if with_plan and not any(m.type == "plan" for m in configs):
        configs.append(PlanModeConfig(type="plan"))
    ctx = c.mode_context()
    modes: list[Mode[Any]] = [m for m in build_modes(configs, ctx) if with_plan or m.type != "plan"]
    return Decider(ctx.limits, modes)


def _actual_forecast(rows: dict[datetime, HistoryRow], at: datetime, starts: Sequence[datetime]) -> Forecast:
    periods = []
    for s in starts:
        r = rows.get(s)
        values: dict[str, Band] = {}
        if r is not None and r.net_load_kw is not None:
            values[NET_LOAD] = Band.exact(r.net_load_kw)
        if r is not None and r.price_p_per_kwh is not None:
            values[PRICE] = Band.exact(r.price_p_per_kwh)
        periods.append(PeriodForecast(s, values))
    return Forecast(at, tuple(periods), {NET_LOAD: "actual", PRICE: "actual"})


def _forecast(history: Sequence[HistoryRow], at: datetime, horizon: int,
              live_price: MarketValue | None = None) -> Forecast:
    """What the daemon would forecast at `at`: the site's forecasters on the periods ended by then, and the
    price published for the running period if there is one (`live_price`)."""
    since = at - timedelta(days=HISTORY_DAYS_USED)
    known = [r for r in history if since <= r.start and r.start + SP <= at]
    live = None
    if live_price is not None and live_price.settlement_period == current_sp_start(at):
        live = live_price.value
    return forecast_site(forecast_history(known), at, horizon, live_price=live)


def market_view(rows: Mapping[datetime, HistoryRow], period: datetime, into_s: float,
                published_after_s: float) -> tuple[MarketValue | None, MarketValue | None]:
    """(imbalance price, volume) as the market client would hold them `into_s` seconds into `period`: those of
    the newest period published by then, a period's figures counting as published `published_after_s` after
    it starts (Modo publishes the running period's while it runs; the history has one value per period, the
    outturn, so the live figure is taken to be it)."""
    lag = max(0, math.ceil((published_after_s - into_s) / SP_S))
    r = rows.get(period - lag * SP)
    if r is None:
        return None, None
    sp = r.start
    return (None if r.price_p_per_kwh is None else MarketValue(r.price_p_per_kwh, sp),
            None if r.volume_mwh is None else MarketValue(r.volume_mwh, sp))


def day_range(site: SiteConfig, first: date, last: date) -> tuple[datetime, datetime]:
    tz = zone(site.site.timezone)
    return local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)


def run_strategy(site: SiteConfig, history: list[HistoryRow], first: date, last: date, strategy: str,
                 *, step_s: float = 60.0, initial_soe_kwh: float | None = None,
                 published_after_s: float = LIVE_AFTER_S) -> Outcome:
    """One strategy over the local days first..last (inclusive). `published_after_s`: how long after a period
    starts its imbalance price and volume are published (LIVE_AFTER_S: the live price; SP_S: at its end)."""
    from controller.planner.solver import SolveError, Solver  # the tool's own solve: no child process here

    c = site.controller
    if c is None:
        raise BacktestInputError("the site file has no controller section")
    config = site.planner or PlannerConfig()
    if strategy == "perfect" and config.band is not None:
        # The preferred band is priced, not money: a hedge (a reserve for price spikes no forecast sees) costs
        # value where the prices are known, so perfect foresight, the most value the actuals allow, plans
        # without it. The value is accounted in money alone for every strategy.
        config = config.model_copy(update={"band": None})
    start, end = day_range(site, first, last)
    rows = {r.start: r for r in history}
    periods = [start + i * SP for i in range(int((end - start).total_seconds() // SP_S))]
    missing = [p for p in periods if p not in rows or rows[p].net_load_kw is None or rows[p].price_p_per_kwh is None]
    if missing:
        raise BacktestInputError(f"the history lacks net load or price for {len(missing)} of the {len(periods)} "
                                 f"periods, first {missing[0].isoformat()}")
    limits = c.limits()
    decider = _decider(site, strategy != "modes")
    solver = Solver() if strategy != "modes" else None
    before = [r.soe_end_kwh for r in history if r.start < start and r.soe_end_kwh is not None]
    soe = initial_soe_kwh if initial_soe_kwh is not None else (
        before[-1] if before else (c.soe_min_kwh + c.soe_max_kwh) / 2)
    soe0 = soe
    value_price = config.terminal_value_p_per_kwh
    if value_price is None:
        value_price = sum(rows[p].price_p_per_kwh or 0.0 for p in periods) / len(periods)
    out = Outcome(strategy)
    last_setpoint = 0.0
    plan: PlanTargets | None = None
    steps = round(SP_S / step_s)
    hours = step_s / 3600.0
    tol_kwh = max(limits.charge_kw, limits.discharge_kw) * hours + 1e-6
    tz = zone(site.site.timezone)
    day_value = 0.0
    day = first
    for p in periods:
        local_day = p.astimezone(tz).date()
        if local_day != day:
            out.daily_value_p.append(day_value)
            day_value, day = 0.0, local_day
        row = rows[p]
        load = row.net_load_kw or 0.0
        price = row.price_p_per_kwh or 0.0
        planned_on: datetime | None = None  # the period of the price the last plan saw
        for k in range(steps):
            now = p + timedelta(seconds=k * step_s)
            market_price, market_volume = market_view(rows, p, k * step_s, published_after_s)
            price_sp = None if market_price is None else market_price.settlement_period
            # Like the daemon: a re-plan at every period's start and when a new period's price is published.
            if solver is not None and (k == 0 or price_sp != planned_on):
                planned_on = price_sp
                starts = horizon_starts(now, config.horizon_h)
                forecast = (_forecast(history, now, len(starts), market_price) if strategy == "plan"
                            else _actual_forecast(rows, now, starts))
                x = build_inputs(config, limits, now, soe, forecast, import_rates=c.import_rates,
                                 export_rates=c.export_rates)
                try:
                    made: Plan = solver.plan(x, config.solve_time_limit_s)
                    plan = PlanTargets(made.plan_id, made.created_at, SP_S,
                                       tuple((q.start, q.soe_end_kwh) for q in made.periods))
                    out.plans += 1
                    out.plan_breaches += made.status == "breaches"
                except SolveError:
                    out.plan_failures += 1  # the previous plan stays, as in the daemon
            state = SiteState(load - last_setpoint, soe, last_setpoint, imbalance_price=market_price,
                              imbalance_volume=market_volume, plan=plan)
            setpoint = decider.decide(state, now).setpoint_kw
            site_kw = load - setpoint
            imp_rate, exp_rate = rate_now(c.import_rates, now), rate_now(c.export_rates, now)

            base, with_battery = (kw * hours * (price + imp_rate if kw > 0 else price - exp_rate)
                                  for kw in (load, site_kw))
            if setpoint > 0:
                soe -= setpoint * hours
                out.discharged_kwh += setpoint * hours
                wear = setpoint * hours * config.throughput_p_per_kwh
            else:
                soe -= setpoint * hours * limits.charge_efficiency
                out.charged_kwh += -setpoint * hours
                wear = 0.0
            out.base_cost_p += base
            out.cost_p += with_battery
            out.throughput_p += wear
            day_value += base - with_battery - wear
            v = out.violations
            v["site_import"] += site_kw > limits.import_kw + 1e-6
            v["site_export"] += site_kw < -limits.export_kw - 1e-6
            v["soe_min"] += soe < limits.soe_min_kwh - tol_kwh
            v["soe_max"] += soe > limits.soe_max_kwh + tol_kwh
            v["battery_power"] += not -limits.charge_kw - 1e-6 <= setpoint <= limits.discharge_kw + 1e-6
            last_setpoint = setpoint
    out.daily_value_p.append(day_value)
    out.stored_value_p = (soe - soe0) * value_price
    out.daily_value_p[-1] += out.stored_value_p
    out.value_p = out.base_cost_p - out.cost_p - out.throughput_p + out.stored_value_p
    usable = max(c.soe_max_kwh - c.soe_min_kwh, 1e-9)
    out.cycles = out.discharged_kwh / usable
    if not math.isfinite(out.value_p):
        raise BacktestInputError("the backtest's value is not finite: check the history's numbers")
    return out


def compare(site: SiteConfig, history: list[HistoryRow], first: date, last: date,
            strategies: Sequence[str] = STRATEGIES, *, step_s: float = 60.0,
            published_after_s: float = LIVE_AFTER_S) -> dict[str, Any]:
    """The spec's `backtest --compare --json` answer; `perfect` always runs (every ratio is to it)."""
    wanted = list(dict.fromkeys([*strategies, "perfect"]))
    outcomes = {s: run_strategy(site, history, first, last, s, step_s=step_s, published_after_s=published_after_s)
                for s in wanted}
    perfect = outcomes["perfect"].value_p
    return {"days": (last - first).days + 1, "from": first.isoformat(), "to": last.isoformat(),
            "published_after_s": published_after_s,
            "strategies": {s: outcomes[s].as_json(perfect) for s in wanted if s in strategies}}
