"""The daemon's planner on a manual clock with a stand-in solve: a re-plan every settlement period and on a
new price or Axle schedule; a failed solve keeps the previous plan; with none the status is `fallback`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controller.core.clock import ManualClock
from controller.engine.envelope import Limits
from controller.engine.site_state import AxleStep, MarketValue
from controller.planner.config import PlannerConfig
from controller.planner.model import PlanInputs
from controller.planner.runner import PlanFailure, Timed
from controller.planner.service import PlannerService, SiteView
from controller.planner.solver import Solver

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
LIMITS = Limits(250, 250, 300, 350, 50, 950, 30, charge_efficiency=0.92)
SOLVER = Solver()


class Site:
    def __init__(self) -> None:
        self.soe: float | None = 500.0
        self.load: float | None = 40.0
        self.price: MarketValue | None = MarketValue(10.0, T0 - timedelta(minutes=30))
        self.axle: tuple[AxleStep, ...] = ()

    def view(self) -> SiteView:
        return SiteView(lambda: self.soe, lambda: self.load, lambda: self.price, lambda: self.axle)


class Solve:
    """In-process solves, or failures on demand; records when each was asked for."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[datetime] = []
        self.fail = False

    async def __call__(self, x: PlanInputs, limit: float) -> Timed:
        self.calls.append(self.clock.now())
        if self.fail:
            raise PlanFailure("no plan within 2 s: the planner process was stopped")
        return Timed(SOLVER.plan(x, limit), 1.0)


def service(clock: ManualClock, site: Site, solve: Solve, alerts: list[str] | None = None,
            **config: float) -> PlannerService:
    config.setdefault("min_history_h", 0)
    return PlannerService(PlannerConfig(horizon_h=4, **config), LIMITS, clock=clock, view=site.view(), solve=solve,
                          alert=(lambda kind, level, message, **data: alerts.append(kind)) if alerts is not None
                          else None)


async def test_replans_every_period_and_on_a_new_price_or_axle_schedule() -> None:
    clock, site = ManualClock(T0 + timedelta(minutes=1)), Site()
    solve = Solve(clock)
    svc = service(clock, site, solve)
    published: list[str] = []
    svc.publish = lambda plan: published.append(plan.plan_id)
    task = asyncio.create_task(svc.run())
    await clock.advance(0)
    assert solve.calls == [T0 + timedelta(minutes=1)] and svc.status == "optimal"
    assert svc.current() is not None and svc.current().plan_id == svc.plan.plan_id  # type: ignore[union-attr]
    await clock.advance(25 * 60)  # samples every 5 s, nothing new: no re-plan
    assert len(solve.calls) == 1
    await clock.advance(4 * 60)  # 12:30: a new period
    assert solve.calls[-1] == T0 + timedelta(minutes=30)
    site.price = MarketValue(14.0, T0)  # the 12:00 price is published
    await clock.advance(5)
    assert len(solve.calls) == 3 and svc.counts["replans_on_change"] == 1
    site.axle = (AxleStep(T0 + timedelta(hours=1), T0 + timedelta(hours=2), "discharge_max"),)
    await clock.advance(5)
    assert len(solve.calls) == 4 and svc.counts["replans_on_change"] == 2
    assert len(published) == 4 and published[-1] == svc.plan.plan_id  # type: ignore[union-attr]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_failed_solve_keeps_the_previous_plan_and_alerts() -> None:
    clock, site = ManualClock(T0), Site()
    solve = Solve(clock)
    alerts: list[str] = []
    svc = service(clock, site, solve, alerts)
    assert await svc.replan(clock.now(), "test")
    first = svc.plan
    solve.fail = True
    assert not await svc.replan(clock.now(), "test")
    assert svc.plan is first and svc.status == "optimal" and alerts == ["plan_failed"]
    assert svc.health["failures"] == 1 and "no plan within" in svc.health["last_error"]


async def test_failures_past_the_plans_age_fall_back_to_the_rule_based_modes() -> None:
    clock, site = ManualClock(T0), Site()
    solve = Solve(clock)
    svc = service(clock, site, solve, max_plan_age_s=600)
    await svc.replan(clock.now(), "test")
    solve.fail = True
    await clock.advance(601)
    await svc.replan(clock.now(), "test")
    assert svc.current() is None and svc.status == "fallback"


@pytest.mark.parametrize("what", ["soe", "price"])
async def test_nothing_to_plan_on_is_a_fallback_not_an_exception(what: str) -> None:
    clock, site = ManualClock(T0), Site()
    setattr(site, what, None)
    svc = service(clock, site, Solve(clock))
    assert not await svc.replan(clock.now(), "test")
    assert svc.status == "fallback" and "nothing to plan on" in (svc.last_error or "")


async def test_no_plan_until_a_day_of_prices_is_recorded() -> None:
    clock, site = ManualClock(T0), Site()
    alerts: list[str] = []
    svc = service(clock, site, Solve(clock), alerts, min_history_h=1)  # two periods
    assert not await svc.replan(clock.now(), "test")
    assert svc.last_error == "nothing to plan on yet: 1 of 2 periods of price history"
    assert svc.status == "fallback" and alerts == [] and svc.counts["failures"] == 0  # waiting is no failure
    site.price = MarketValue(12.0, T0)
    assert await svc.replan(clock.now(), "test")


def test_the_rolling_record_becomes_the_forecasts_history() -> None:
    clock, site = ManualClock(T0), Site()
    svc = service(clock, site, Solve(clock))
    svc.observe(T0)
    site.load = 60.0
    svc.observe(T0 + timedelta(minutes=10))
    rows = {r.start: r for r in svc.history()}
    assert rows[T0].net_load_kw == 50.0  # the period's mean
    assert rows[T0 - timedelta(minutes=30)].price_p_per_kwh == 10.0
    svc.observe(T0 + timedelta(days=16))
    assert T0 not in {r.start for r in svc.history()}  # older than two weeks and a day: forgotten


async def test_a_price_feed_answer_with_news_replans() -> None:
    clock, site = ManualClock(T0 + timedelta(minutes=1)), Site()
    solve = Solve(clock)
    svc = PlannerService(PlannerConfig(horizon_h=4), LIMITS, clock=clock, view=site.view(), solve=solve, prices={})
    task = asyncio.create_task(svc.run())
    await clock.advance(0)
    assert solve.calls == [] and "price history" in (svc.last_error or "")  # no feed answer yet, no history
    svc.update_prices({T0 + timedelta(minutes=30): 30.0})
    await clock.advance(5)
    assert len(solve.calls) == 1 and svc.plan is not None
    assert svc.plan.periods[1].price_p_per_kwh == 30.0
    svc.update_prices({T0 + timedelta(minutes=30): 30.0})  # nothing new
    await clock.advance(5)
    assert len(solve.calls) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_plans_on_the_site_forecast_when_it_covers_this_period_else_the_stand_in() -> None:
    from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast
    from controller.planner.inputs import horizon_starts

    clock, site = ManualClock(T0 + timedelta(minutes=1)), Site()
    forecast: list[Forecast | None] = [None]
    view = site.view()
    svc = PlannerService(PlannerConfig(horizon_h=2, min_history_h=0), LIMITS, clock=clock,
                         view=SiteView(view.soe_kwh, view.net_load_kw, view.price, view.axle, lambda: forecast[0]),
                         solve=Solve(clock))
    starts = horizon_starts(clock.now(), 2)
    prices = (30.0, 5.0, 5.0, 40.0)
    forecast[0] = Forecast(T0, tuple(PeriodForecast(s, {NET_LOAD: Band(70.0, 60.0, 80.0), PRICE: Band.exact(p)})
                                     for s, p in zip(starts, prices, strict=True)), {NET_LOAD: "similar_day"})
    x = svc.inputs(clock.now())
    assert x is not None and x.price_p_per_kwh == prices and x.net_load_kw == (70.0,) * 4
    # A forecast that does not start at this period (made before the boundary) is not used.
    forecast[0] = Forecast(T0 - timedelta(minutes=30), tuple(
        PeriodForecast(s - timedelta(minutes=30), {NET_LOAD: Band.exact(70.0), PRICE: Band.exact(99.0)})
        for s in starts))
    x = svc.inputs(clock.now())
    assert x is not None and 99.0 not in x.price_p_per_kwh
