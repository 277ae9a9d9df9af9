"""The daemon's planner: re-plan at every settlement period and within seconds of a new price or Axle schedule,
solving in the child process, and hold the current plan for the `plan` mode.

What it plans on: its own rolling record of the site (each period's mean net load, sampled as the control
loop sees it, and the imbalance price of each period as the market client publishes it), turned into the
persistence stand-in forecast; the SoE now; Axle's schedule; the site's limits and rates. A solve that fails
or passes the time limit keeps the previous plan (and is counted and alerted); with none, the status says
`fallback` and the rule-based modes decide. Nothing here raises out of `run`: a bad input is a failed plan.

Synchronous parts (`observe`, `inputs`) are clock-free; `run` takes the daemon's clock.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.core.clock import Clock
from controller.core.config import TimedRate
from controller.core.forecast import Forecast
from controller.core.logs import get_logger
from controller.engine.envelope import Limits
from controller.engine.settlement import SP, current_sp_start
from controller.engine.site_state import AxleStep, MarketValue, PlanTargets
from controller.planner.config import PlannerConfig
from controller.planner.history import HistoryRow
from controller.planner.inputs import build_inputs, horizon_starts
from controller.planner.model import Plan, PlanInputs
from controller.planner.persistence import persistence_forecast
from controller.planner.runner import PlanFailure, Timed

log = get_logger("planner")

SAMPLE_S = 5.0  # how often the site is sampled for the rolling record and the triggers are checked
KEEP = timedelta(days=15)  # the record: two weeks of persistence and a day to spare

Solve = Callable[[PlanInputs, float], Awaitable[Timed]]
Alert = Callable[..., None]


@dataclass(frozen=True)
class SiteView:
    """What the planner reads of the running site; each returns None (or ()) when unknown."""

    soe_kwh: Callable[[], float | None]
    net_load_kw: Callable[[], float | None]  # site power + the setpoint in force: the load net of solar
    price: Callable[[], MarketValue | None] = lambda: None
    axle: Callable[[], Sequence[AxleStep]] = lambda: ()
    # The site's forecasts (controller.forecast), refreshed every settlement period; None: not running.
    forecast: Callable[[], Forecast | None] = lambda: None


class PlannerService:
    def __init__(self, config: PlannerConfig, limits: Limits, *, clock: Clock, view: SiteView, solve: Solve,
                 import_rates: Sequence[TimedRate] = (), export_rates: Sequence[TimedRate] = (),
                 prices: Mapping[datetime, float] | None = None, alert: Alert | None = None,
                 publish: Callable[[Plan], None] | None = None) -> None:
        self.config = config
        self.limits = limits
        self.clock = clock
        self.view = view
        self.solve = solve
        self.import_rates = tuple(import_rates)
        self.export_rates = tuple(export_rates)
        self.prices = prices
        self.alert = alert
        self.publish = publish
        self.plan: Plan | None = None
        self.targets: PlanTargets | None = None
        self.status = "fallback"  # no plan yet: the rule-based modes decide
        self.last_error: str | None = None
        self.counts = {"plans": 0, "failures": 0, "replans_on_change": 0}
        self._loads: dict[datetime, tuple[float, int]] = {}  # period start -> (sum of samples, count)
        self._prices: dict[datetime, float] = {}
        self._seen: tuple[Any, ...] | None = None
        self.health: dict[str, Any] = self.stats()  # live: status and metrics read it

    def _publish(self) -> None:
        self.health.clear()
        self.health.update(self.stats())

    # --- the rolling record (synchronous, clock-free) --------------------------------------------------

    def observe(self, now: datetime) -> None:
        load = self.view.net_load_kw()
        if load is not None and math.isfinite(load):
            # A running sum, not the samples: two weeks of 5 s samples would be megabytes of floats.
            total, n = self._loads.get(sp := current_sp_start(now), (0.0, 0))
            self._loads[sp] = (total + load, n + 1)
        self._note_price()
        cutoff = now - KEEP
        for record in (self._loads, self._prices):
            for t in [t for t in record if t < cutoff]:
                del record[t]

    def seed(self, periods: Iterable[tuple[datetime, float | None, float | None]]) -> int:
        """Start the rolling record from the site's local history: (period start, mean net load kW, price).

        Without it a restarted daemon would wait `min_history_h` again before planning, and plan on a
        persistence forecast of nothing. Periods already sampled since the start are kept as sampled.
        Returns the number of periods with a price."""
        n = 0
        for start, load, price in periods:
            if load is not None and math.isfinite(load) and start not in self._loads:
                self._loads[start] = (load, 1)
            if price is not None and math.isfinite(price) and start not in self._prices:
                self._prices[start] = price
                n += 1
        return n

    def _note_price(self) -> None:
        price = self.view.price()
        if price is not None and math.isfinite(price.value):
            self._prices[price.settlement_period] = price.value

    def history(self) -> list[HistoryRow]:
        starts = sorted(set(self._loads) | set(self._prices))
        rows = []
        for t in starts:
            total, n = self._loads.get(t, (0.0, 0))
            rows.append(HistoryRow(t, total / n if n else None, self._prices.get(t), None, None))
        return rows

    def not_ready(self) -> str | None:
        """Why there is nothing to plan on yet, or None."""
        soe = self.view.soe_kwh()
        if soe is None or not math.isfinite(soe):
            return "nothing to plan on: no SoE"
        needed = round(self.config.min_history_h * 2)
        if not self.prices and len(self._prices) < max(needed, 1):
            # A forecast from a few prices is a flat line: the plan would idle the battery over the rules.
            return f"nothing to plan on yet: {len(self._prices)} of {max(needed, 1)} periods of price history"
        return None

    def inputs(self, now: datetime) -> PlanInputs | None:
        """The next plan's inputs, or None when there is nothing to plan on (`not_ready` says why)."""
        self._note_price()
        soe = self.view.soe_kwh()
        if soe is None or not math.isfinite(soe) or self.not_ready() is not None:
            return None
        # A period counts as known once it has ended; the current one is still being sampled.
        starts = horizon_starts(now, self.config.horizon_h)
        forecast = self.view.forecast()
        if forecast is None or not forecast.periods or forecast.periods[0].start != starts[0]:
            # No forecast of this period yet (the forecaster starts, or lags a boundary): the stand-in.
            forecast = persistence_forecast(self.history(), now, starts)
        return build_inputs(self.config, self.limits, now, soe, forecast, import_rates=self.import_rates,
                            export_rates=self.export_rates, axle=self.view.axle(), prices=self.prices)

    def update_prices(self, prices: Mapping[datetime, float]) -> None:
        """Merge a price feed's answer (the next check re-plans if it brought anything new)."""
        merged = dict(self.prices or {})
        merged.update(prices)
        cutoff = self.clock.now() - KEEP
        self.prices = {t: v for t, v in merged.items() if t >= cutoff}

    def _trigger(self, now: datetime) -> tuple[Any, ...]:
        """What a re-plan depends on besides the clock: the period, the newest price's period, Axle's steps,
        the price feed's prices and the newest forecast."""
        price = self.view.price()
        steps = tuple((s.start, s.end, s.action) for s in self.view.axle())
        feed = None if self.prices is None else hash(tuple(sorted(self.prices.items())))
        forecast = self.view.forecast()
        return (current_sp_start(now), None if price is None else price.settlement_period, steps, feed,
                None if forecast is None else forecast.made_at)

    # --- planning ------------------------------------------------------------------------------------

    async def replan(self, now: datetime, reason: str) -> bool:
        x = self.inputs(now)
        if x is None:
            # Not a failure (no alert): the site is new, or the SoE is unknown; the modes decide meanwhile.
            self.last_error = self.not_ready() or "nothing to plan on"
            if self.plan is None:
                self.status = "fallback"
            log.info("plan_not_ready", why=self.last_error, reason=reason)
            self._publish()
            return False
        try:
            timed = await self.solve(x, self.config.solve_time_limit_s)
        except PlanFailure as exc:
            return self._failed(now, str(exc), reason)
        plan = timed.plan
        self.plan = plan
        self.targets = PlanTargets(plan.plan_id, plan.created_at, plan.period_h * 3600.0,
                                   tuple((p.start, p.soe_end_kwh) for p in plan.periods))
        self.status = plan.status
        self.last_error = None
        self.counts["plans"] += 1
        log.info("plan_made", plan_id=plan.plan_id, status=plan.status, reason=reason,
                 value_gbp=round(plan.expected_value_gbp, 2), breaches=len(plan.breaches),
                 wall_ms=round(timed.wall_ms, 1), notes=len(plan.notes))
        self._publish()
        if self.publish is not None:
            self.publish(plan)
        return True

    def _failed(self, now: datetime, error: str, reason: str) -> bool:
        self.counts["failures"] += 1
        self.last_error = error
        stale = self.plan is None or (now - self.plan.created_at).total_seconds() > self.config.max_plan_age_s
        if stale:
            self.plan, self.targets, self.status = None, None, "fallback"
        log.warning("plan_failed", error=error, reason=reason, kept_previous=not stale)
        if self.alert is not None:
            self.alert("plan_failed", "warning", f"no new plan: {error}",
                       kept_previous=not stale, status=self.status)
        self._publish()
        return False

    def summary(self, now: datetime, hours: float = 4.0) -> dict[str, Any]:
        """What `flux-edge status` shows: the plan's status and value, and its next `hours` of periods."""
        out = self.stats()
        p = self.plan
        ahead = [] if p is None else [
            {"start": q.start.isoformat(), "battery_kw": round(q.battery_kw, 1), "soe_end_kwh": round(q.soe_end_kwh, 1),
             "price_p_per_kwh": round(q.price_p_per_kwh, 2)}
            for q in p.periods if q.start + SP > now and q.start < now + timedelta(hours=hours)]
        out["next"] = ahead
        return out

    def current(self) -> PlanTargets | None:
        return self.targets

    def stats(self) -> dict[str, Any]:
        p = self.plan
        return {"status": self.status, "plan_id": None if p is None else p.plan_id,
                "created_at": None if p is None else p.created_at.isoformat(),
                "expected_value_gbp": None if p is None else round(p.expected_value_gbp, 2),
                "breaches": [] if p is None else p.breach_lines(), "last_error": self.last_error, **self.counts}

    async def run(self) -> None:
        """Sample every SAMPLE_S; re-plan at each settlement period's start and when a trigger changes."""
        while True:
            now = self.clock.now()
            try:
                self.observe(now)
                seen = self._trigger(now)
                if seen != self._seen:
                    reason = "period" if self._seen is None or seen[0] != self._seen[0] else "change"
                    if reason == "change":
                        self.counts["replans_on_change"] += 1
                    self._seen = seen
                    await self.replan(now, reason)
            except (ArithmeticError, ValueError, KeyError) as exc:  # bad data: no plan this time, never a crash
                self._failed(now, repr(exc), "error")
            next_sp = current_sp_start(now) + SP
            wake = min(now + timedelta(seconds=SAMPLE_S), next_sp)
            await self.clock.sleep_until(wake)


async def solve_in_child(process: Any, inputs: PlanInputs, time_limit_s: float) -> Timed:
    """Run `process.plan` (a PlannerProcess: blocking pipes) off the event loop."""
    result: Timed = await asyncio.to_thread(process.plan, inputs, time_limit_s)
    return result
