"""The planning LP on cases small enough to solve by hand (one row per behaviour, the numbers in the row),
and a property: any inputs give a plan within the battery and site limits, or one naming its breaches."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.planner.model import Commitment, PlanInputs, build_lp
from controller.planner.solver import Solver

T0 = datetime(2026, 6, 1, tzinfo=UTC)
SOLVER = Solver()


def inputs(prices: tuple[float, ...], **over: Any) -> PlanInputs:
    """Two 1-hour periods (easy sums), a 100 kW battery of 0..1000 kWh, generous site limits, no load."""
    n = len(prices)
    base: dict[str, Any] = dict(
        made_at=T0, starts=tuple(T0 + timedelta(hours=i) for i in range(n)), period_h=1.0,
        net_load_kw=(0.0,) * n, price_p_per_kwh=prices, import_rate_p_per_kwh=(0.0,) * n,
        export_rate_p_per_kwh=(0.0,) * n, soe_kwh=0.0, charge_kw=100.0, discharge_kw=100.0, charge_efficiency=1.0,
        soe_min_kwh=0.0, soe_max_kwh=1000.0, import_kw=1000.0, export_kw=1000.0)
    base.update(over)
    return PlanInputs(**base)


# (why, inputs, battery_kw per period, soe_end per period, expected value GBP, breaches as (kind, period, amount))
CASES: list[tuple[str, PlanInputs, list[float], list[float], float, list[tuple[str, int, float]]]] = [
    ("two-period arbitrage: charge 100 kWh at 10 p, sell the 90 kWh it stores at 30 p: 2700 - 1000 = 17 GBP",
     inputs((10.0, 30.0), charge_efficiency=0.9), [-100, 90], [90, 0], 17.0, []),
    ("binding site import limit: 80 kW load under a 100 kW limit leaves 20 kW to charge; 20 x (30-10) = 4 GBP",
     inputs((10.0, 30.0), net_load_kw=(80.0, 80.0), import_kw=100.0), [-20, 20], [20, 0], 4.0, []),
    ("binding site export limit: 50 kW of solar under a 100 kW export limit leaves 50 kW to sell: 50 x (10+30)",
     inputs((10.0, 30.0), net_load_kw=(-50.0, -50.0), export_kw=100.0, soe_kwh=500.0), [50, 50], [450, 400],
     20.0, []),
    ("Axle discharge_max in period 0 is a commitment although the terminal value of 12 p says keep charging",
     inputs((10.0, 10.0), soe_kwh=500.0, terminal_p_per_kwh=12.0,
            commitments=(Commitment("discharge_max", 1.0), None)), [100, -100], [400, 500], 0.0, []),
    ("the same without Axle: charge 200 kWh at 10 p worth 12 p at the end: 4 GBP",
     inputs((10.0, 10.0), soe_kwh=500.0, terminal_p_per_kwh=12.0), [-100, -100], [600, 700], 4.0, []),
    ("start 80 kWh below soe_min: charge flat out (50 kWh per half hour), the first period names its breach",
     inputs((10.0, 10.0), soe_kwh=20.0, soe_min_kwh=100.0, period_h=0.5,
            starts=(T0, T0 + timedelta(minutes=30))), [-100, -60], [70, 100], -8.0, [("soe_below_min", 0, 30.0)]),
    ("negative price: paid 5 p/kWh to charge 100 kWh, sold at 20 p: 500 + 2000 = 25 GBP",
     inputs((-5.0, 20.0)), [-100, 100], [100, 0], 25.0, []),
    ("throughput cost 1 p/kWh (10 GBP/MWh) > the 0.8 p a 90 % cycle from 10 p to 12 p earns: stay idle",
     inputs((10.0, 12.0), charge_efficiency=0.9, throughput_p_per_kwh=1.0), [0, 0], [0, 0], 0.0, []),
    ("no throughput cost: the same cycle is worth 0.9 x 12 - 10 = 0.8 p/kWh x 100 kWh",
     inputs((10.0, 12.0), charge_efficiency=0.9), [-100, 90], [90, 0], 0.8, []),
    ("a band 400..600 at 40 p/kWh/h keeps 100 kWh that would earn 30 p: sell only in the 30 p period",
     inputs((10.0, 30.0), soe_kwh=500.0, band_low_kwh=400.0, band_high_kwh=600.0, band_p_per_kwh_h=40.0),
     [0, 100], [500, 400], 30.0, []),
    ("import rate 25 p on top of 10 p makes charging dearer than the 30 p sale: idle",
     inputs((10.0, 30.0), import_rate_p_per_kwh=(25.0, 25.0)), [0, 0], [0, 0], 0.0, []),
    ("Axle charge_max under a 50 kW import limit cannot be served: 50 kW of it is named; the 50 kWh sold back",
     inputs((10.0, 10.0), import_kw=50.0, commitments=(Commitment("charge_max", 1.0), None)), [-50, 50], [50, 0],
     0.0, [("axle_window", 0, 50.0)]),
]


@pytest.mark.parametrize(("why", "x", "battery", "soe", "value", "breaches"), CASES, ids=[c[0][:60] for c in CASES])
def test_hand_computed_optima(why: str, x: PlanInputs, battery: list[float], soe: list[float], value: float,
                              breaches: list[tuple[str, int, float]]) -> None:
    plan = SOLVER.plan(x)
    assert [p.battery_kw for p in plan.periods] == pytest.approx(battery, abs=1e-6)
    assert [p.soe_end_kwh for p in plan.periods] == pytest.approx(soe, abs=1e-6)
    assert plan.expected_value_gbp == pytest.approx(value, abs=1e-6)
    assert [(b.kind, b.period, pytest.approx(b.amount, abs=1e-6)) for b in plan.breaches] == breaches
    assert plan.status == ("breaches" if breaches else "optimal")
    assert len(plan.breach_lines()) == len(breaches)


def test_the_plan_id_is_the_inputs_hash() -> None:
    a, b = inputs((10.0, 30.0)), inputs((10.0, 31.0))
    assert SOLVER.plan(a).plan_id == a.digest() == inputs((10.0, 30.0)).digest() != b.digest()


def test_the_first_period_may_be_what_is_left_of_the_current_one() -> None:
    # 15 minutes left of the first period: it can charge only 25 kWh at 100 kW.
    plan = SOLVER.plan(inputs((10.0, 30.0), first_period_h=0.25))
    assert [p.soe_end_kwh for p in plan.periods] == pytest.approx([25, 0], abs=1e-6)


def test_inputs_round_trip_through_json() -> None:
    x = inputs((10.0, 30.0), commitments=(Commitment("avoid_import", 0.5), None), assumptions=("a",),
               first_period_h=0.5)
    assert PlanInputs.from_json(x.as_json()) == x


@pytest.mark.parametrize("bad", [dict(price_p_per_kwh=(math.nan, 1.0)), dict(net_load_kw=(1.0,)),
                                 dict(charge_efficiency=0.0), dict(soe_kwh=math.inf), dict(first_period_h=2.0)])
def test_inputs_the_lp_cannot_mean_anything_with_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="plan inputs"):
        build_lp(inputs((10.0, 30.0), **bad))


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
ACTIONS = st.sampled_from([None, "charge_max", "discharge_max", "avoid_import", "avoid_export"])


@st.composite
def any_inputs(draw: st.DrawFn) -> PlanInputs:
    n = draw(st.integers(1, 8))
    soe_min = draw(st.floats(0, 500))
    soe_max = soe_min + draw(st.floats(1, 1000))
    actions = draw(st.lists(ACTIONS, min_size=n, max_size=n))
    band = draw(st.none() | st.tuples(st.floats(0, 1), st.floats(0, 1)))
    return inputs(
        tuple(draw(st.lists(finite, min_size=n, max_size=n))), period_h=draw(st.sampled_from([0.5, 1.0])),
        net_load_kw=tuple(draw(st.lists(st.floats(-800, 800), min_size=n, max_size=n))),
        import_rate_p_per_kwh=tuple(draw(st.lists(st.floats(0, 50), min_size=n, max_size=n))),
        export_rate_p_per_kwh=tuple(draw(st.lists(st.floats(0, 50), min_size=n, max_size=n))),
        soe_kwh=draw(st.floats(-200, 2000)), charge_kw=draw(st.floats(0, 500)), discharge_kw=draw(st.floats(0, 500)),
        charge_efficiency=draw(st.floats(0.5, 1.0)), soe_min_kwh=soe_min, soe_max_kwh=soe_max,
        import_kw=draw(st.floats(0, 600)), export_kw=draw(st.floats(0, 600)),
        throughput_p_per_kwh=draw(st.floats(0, 20)), terminal_p_per_kwh=draw(st.floats(-50, 200)),
        band_low_kwh=None if band is None else soe_min + min(band) * (soe_max - soe_min),
        band_high_kwh=None if band is None else soe_min + max(band) * (soe_max - soe_min),
        band_p_per_kwh_h=draw(st.floats(0, 100)),
        commitments=tuple(None if a is None else Commitment(a, draw(st.floats(0.1, 1.0))) for a in actions))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_inputs())
def test_any_inputs_give_a_plan_within_the_limits_or_naming_its_breach(x: PlanInputs) -> None:
    plan = SOLVER.plan(x)
    tol = 1e-4
    named = {(b.kind, b.period) for b in plan.breaches}
    prev = x.soe_kwh
    for t, p in enumerate(plan.periods):
        assert -x.charge_kw - tol <= p.battery_kw <= x.discharge_kw + tol  # the battery's own limits: always
        assert p.site_kw <= x.import_kw + tol or ("site_import_limit", t) in named
        assert p.site_kw >= -x.export_kw - tol or ("site_export_limit", t) in named
        assert p.soe_end_kwh >= x.soe_min_kwh - tol or ("soe_below_min", t) in named
        assert p.soe_end_kwh <= x.soe_max_kwh + tol or ("soe_above_max", t) in named
        # The SoE follows the powers: charge at the efficiency, discharge at 1.
        step = x.charge_efficiency * p.charge_kw - p.discharge_kw
        assert p.soe_end_kwh == pytest.approx(prev + step * x.hours(t), abs=1e-3)
        prev = p.soe_end_kwh
    assert plan.status == ("breaches" if plan.breaches else "optimal")
    assert all(math.isfinite(v) for p in plan.periods for v in (p.battery_kw, p.soe_end_kwh))
