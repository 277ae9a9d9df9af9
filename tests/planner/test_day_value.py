"""Today's value (controller.planner.day_value) on cases small enough to sum by hand: one row per behaviour,
the figures in the row. "Now" is passed in: no real clock anywhere.

The model in every row: throughput 2 p/kWh (20 GBP/MWh), no import or export rates unless the row says so.
The three kinds of period the rows are made of, over a half-hour (h = 0.5):

- D: recorded, import 50, export 0, discharge 10 kWh at 20 p: without the battery 60 kWh x 20 = 1200 p,
  with it 50 x 20 = 1000 p, less 10 kWh x 2 p of wear: 180 p.
- C: recorded, import 40, export 0, charge 20 kWh at 5 p: without 20 x 5 = 100 p, with 40 x 5 = 200 p: -100 p.
- P: planned, net load 150 kW, battery +100 kW at 30 p: without 75 kWh x 30 = 2250 p, with 25 x 30 = 750 p,
  less 50 kWh x 2 p: 1400 p.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.core.config import TimedRate
from controller.planner.day_value import RecordedPeriod, ValueModel, day_value, planned_value_p
from controller.planner.model import Plan, PlanPeriod

SP = timedelta(minutes=30)
MODEL = ValueModel(throughput_p_per_kwh=2.0)
# Europe/London, summer: the local day of 1 July 2026 is 23:00 UTC on 30 June to 23:00 UTC on 1 July.
BST_MIDNIGHT = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)


def d(start: datetime) -> RecordedPeriod:
    return RecordedPeriod(start, 50.0, 0.0, 0.0, 10.0, 20.0)


def c(start: datetime) -> RecordedPeriod:
    return RecordedPeriod(start, 40.0, 0.0, 20.0, 0.0, 5.0)


def p(start: datetime, battery_kw: float = 100.0) -> PlanPeriod:
    return PlanPeriod(start, battery_kw, 500.0, 30.0, 150.0, max(-battery_kw, 0.0), max(battery_kw, 0.0))


def plan(created_at: datetime, periods: list[PlanPeriod]) -> Plan:
    return Plan("plan-1", created_at, "optimal", tuple(periods), (), 99.0, 0.5)


def idle(start: datetime, n: int) -> list[PlanPeriod]:
    return [p(start + k * SP, 0.0) for k in range(n)]


NOW_BST = BST_MIDNIGHT + timedelta(hours=11, minutes=10)  # 11:10 BST, inside the 10:00 UTC period
CURRENT_BST = BST_MIDNIGHT + 22 * SP
# Spring forward, Sunday 29 March 2026: 00:00 GMT to 00:00 BST (23:00 UTC) is 23 hours, 46 periods.
SPRING = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
# Fall back, Sunday 25 October 2026: 00:00 BST (23:00 UTC the day before) to 00:00 GMT is 25 hours, 50 periods.
AUTUMN = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
# Asia/Kathmandu is UTC+05:45: its midnight falls a quarter into a settlement period.
KTM_MIDNIGHT = datetime(2026, 6, 30, 18, 15, tzinfo=UTC)

# (why, now, timezone, recorded, plan, expected fields of as_json())
CASES: list[tuple[str, datetime, str, list[RecordedPeriod], Plan | None, dict[str, Any]]] = [
    ("a BST morning: D and C recorded at 00:00 and 00:30 local (the 23:30 of yesterday, another D, is not "
     "today's), 20 ended periods not recorded; the plan's rest of the day P at 10:00, C-like at 10:30 "
     "(-100 kW at 30 p: 2250 - 3750 = -1500 p), P in the 23:30 local period that ends at midnight, and P at "
     "00:00 tomorrow not counted: 180 - 100 = 0.80; 1400 - 1500 + 1400 = 13.00",
     NOW_BST, "Europe/London", [d(BST_MIDNIGHT - SP), d(BST_MIDNIGHT), c(BST_MIDNIGHT + SP)],
     plan(NOW_BST - timedelta(minutes=9),
          [p(CURRENT_BST), p(CURRENT_BST + SP, -100.0), *idle(CURRENT_BST + 2 * SP, 23), p(BST_MIDNIGHT + 47 * SP),
           p(BST_MIDNIGHT + 48 * SP)]),
     {"day": "2026-07-01", "periods": 48, "earned_gbp": 0.8, "earned_periods": 2, "unrecorded_periods": 20,
      "expected_gbp": 13.0, "expected_periods": 26, "unplanned_periods": 0, "total_gbp": 13.8, "no_plan": None,
      "plan_id": "plan-1"}),
    ("spring forward: 46 periods; at 12:00 UTC 24 have ended, none recorded; a 4-hour plan (8 periods, one P) "
     "leaves 14 of the 22 left unplanned: 14.00",
     SPRING + timedelta(hours=12), "Europe/London", [],
     plan(SPRING + timedelta(hours=12), [p(SPRING + 24 * SP), *idle(SPRING + 25 * SP, 7)]),
     {"day": "2026-03-29", "periods": 46, "earned_gbp": 0.0, "earned_periods": 0, "unrecorded_periods": 24,
      "expected_gbp": 14.0, "expected_periods": 8, "unplanned_periods": 14, "total_gbp": 14.0}),
    ("fall back, no plan: 50 periods; at 23:40 GMT 49 have ended, all D: 49 x 1.80 = 88.20 earned, and the "
     "running period is not a number but a reason",
     AUTUMN + timedelta(hours=24, minutes=40), "Europe/London", [d(AUTUMN + k * SP) for k in range(49)], None,
     {"day": "2026-10-25", "periods": 50, "earned_gbp": 88.2, "earned_periods": 49, "unrecorded_periods": 0,
      "expected_gbp": None, "expected_periods": 0, "unplanned_periods": 1, "total_gbp": None, "plan_id": None,
      "no_plan": "no plan: the rule-based modes decide"}),
    ("a plan that starts mid-day: the planner started at 12:50 local and planned from the 11:30 UTC period; "
     "now 13:20 local; the ended 11:30 UTC period is not recorded (its planned P is not what happened: not "
     "counted), 10:30 UTC is D (1.80); from the running 12:00 UTC period the plan: P, then idle: 14.00",
     BST_MIDNIGHT + timedelta(hours=13, minutes=20), "Europe/London", [d(BST_MIDNIGHT + 23 * SP)],
     plan(BST_MIDNIGHT + timedelta(hours=12, minutes=50),
          [p(BST_MIDNIGHT + 25 * SP), p(BST_MIDNIGHT + 26 * SP), *idle(BST_MIDNIGHT + 27 * SP, 40)]),
     {"periods": 48, "earned_gbp": 1.8, "earned_periods": 1, "unrecorded_periods": 25, "expected_gbp": 14.0,
      "expected_periods": 22, "unplanned_periods": 0, "total_gbp": 15.8}),
    ("a settlement period across the site's midnight (Asia/Kathmandu, +05:45) counts by its share: the day "
     "overlaps 49 periods, the first and last a half each; D in the first: 180 / 2 = 0.90",
     KTM_MIDNIGHT + timedelta(hours=2), "Asia/Kathmandu", [d(KTM_MIDNIGHT - timedelta(minutes=15))], None,
     {"day": "2026-07-01", "periods": 49, "earned_gbp": 0.9, "earned_periods": 1, "unrecorded_periods": 3,
      "unplanned_periods": 45}),
    ("the first period of the day at the very start of it: nothing has ended, the running period is planned",
     BST_MIDNIGHT, "Europe/London", [], plan(BST_MIDNIGHT, [p(BST_MIDNIGHT)]),
     {"earned_gbp": 0.0, "earned_periods": 0, "unrecorded_periods": 0, "expected_gbp": 14.0, "expected_periods": 1,
      "unplanned_periods": 47, "total_gbp": 14.0}),
]


@pytest.mark.parametrize(("why", "now", "timezone", "recorded", "plan_", "expected"), CASES,
                         ids=[c[0].split(":")[0] for c in CASES])
def test_day_value(why: str, now: datetime, timezone: str, recorded: list[RecordedPeriod], plan_: Plan | None,
                   expected: dict[str, Any]) -> None:
    got = day_value(now, timezone, recorded, plan_, MODEL).as_json()
    assert {k: got[k] for k in expected} == expected, why


def test_the_day_runs_from_local_midnight_to_local_midnight() -> None:
    got = day_value(NOW_BST, "Europe/London", [], None, MODEL).as_json()
    assert got["day_start"] == BST_MIDNIGHT.isoformat()
    assert got["day_end"] == (BST_MIDNIGHT + timedelta(days=1)).isoformat()


def rate(p_per_kwh: float) -> TimedRate:
    return TimedRate.model_validate({"rate": p_per_kwh, "periods": [{"start": "00:00", "end": "24:00"}]},
                                    context={"timezone": "Europe/London"})


# (why, model, recorded period, pence)
PERIODS: list[tuple[str, ValueModel, RecordedPeriod, float | None]] = [
    ("the rates are the planner's: a discharge that turns 5 kWh of import at 20 + 5 into 10 kWh of export at "
     "20 - 2: 125 + 180, less 15 kWh x 2 p of wear",
     ValueModel((rate(5.0),), (rate(2.0),), 2.0), RecordedPeriod(BST_MIDNIGHT, 0.0, 10.0, 0.0, 15.0, 20.0), 275.0),
    ("no price recorded and no default: not counted",
     MODEL, RecordedPeriod(BST_MIDNIGHT, 50.0, 0.0, 0.0, 10.0, None), None),
    ("no price recorded: the configured default (10 p): 600 - 500 - 20",
     ValueModel(throughput_p_per_kwh=2.0, default_price_p_per_kwh=10.0),
     RecordedPeriod(BST_MIDNIGHT, 50.0, 0.0, 0.0, 10.0, None), 80.0),
    ("a schedule price source: its price (40 p), not the recorded imbalance price: 2400 - 2000 - 20",
     ValueModel(throughput_p_per_kwh=2.0, prices={BST_MIDNIGHT: 40.0}), d(BST_MIDNIGHT), 380.0),
    ("no battery meter: the mean setpoint (+20 kW = 10 kWh discharged), as D: 180",
     MODEL, RecordedPeriod.of({"period_start": BST_MIDNIGHT, "site_import_kwh": 50.0, "site_export_kwh": 0.0,
                               "imbalance_price_p_per_kwh": 20.0, "target_kw_mean": 20.0}), 180.0),
]


@pytest.mark.parametrize(("why", "model", "row", "pence"), PERIODS, ids=[r[0].split(":")[0] for r in PERIODS])
def test_recorded_period_value(why: str, model: ValueModel, row: RecordedPeriod, pence: float | None) -> None:
    value = row.value_p(model)
    assert (value is None if pence is None else value == pytest.approx(pence)), why


def test_setpoint_periods_are_counted_as_such() -> None:
    row = RecordedPeriod.of({"period_start": BST_MIDNIGHT, "site_import_kwh": 50.0, "site_export_kwh": 0.0,
                             "imbalance_price_p_per_kwh": 20.0, "target_kw_mean": 20.0})
    got = day_value(BST_MIDNIGHT + SP, "Europe/London", [row], None, MODEL)
    assert got.setpoint_periods == 1 and got.earned_p == pytest.approx(180.0)


def test_a_planned_period_is_valued_like_the_planner_values_it() -> None:
    assert planned_value_p(p(BST_MIDNIGHT), MODEL) == pytest.approx(1400.0)
    assert planned_value_p(p(BST_MIDNIGHT, -100.0), MODEL) == pytest.approx(-1500.0)


def test_a_site_without_a_planner_block_values_as_the_blocks_defaults() -> None:
    from controller.planner.config import PlannerConfig

    rates = [TimedRate(rate=2.5, periods=[{"start": "16:00", "end": "19:00"}])]  # type: ignore[list-item]
    assert ValueModel.of(None, rates) == ValueModel.of(PlannerConfig(), rates)
