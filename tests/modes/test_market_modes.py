"""niv_chase, dynamic_peak_discharge, dynamic_peak_approach and axle: one row per behaviour."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.engine.proposal import Proposal as P
from controller.engine.site_state import AxleStep, MarketValue, SiteState
from modes.axle import Axle
from tests.modes.util import Z, build, close

INF = math.inf
EFF = 0.92

NIV: dict[str, Any] = {
    "type": "niv_chase", "periods": [{"days": "weekends", "start": "00:00", "end": "24:00"}],
    "params": {
        "charge_curve": [{"price": -100, "soe_kwh": 950}, {"price": 0, "soe_kwh": 950}, {"price": 8, "soe_kwh": 300},
                         {"price": 100, "soe_kwh": 300}],
        "discharge_curve": [{"price": -100, "soe_kwh": 1000}, {"price": 20, "soe_kwh": 1000},
                            {"price": 30, "soe_kwh": 100}, {"price": 300, "soe_kwh": 100}],
        "curve_shift_long": 1.5, "curve_shift_short": 2.5,
        "default_pricing": [{"rate": 12, "periods": [{"start": "00:00", "end": "24:00"}]}],
        "prediction": {"when_short": {"allow_prediction": True, "volume_cutoff_mwh": 0, "time_cutoff_s": 600}},
    },
}
NIV_NO_DEFAULT = {**NIV, "params": {**NIV["params"], "default_pricing": []}}
SAT_SP = Z("2026-06-06T15:00")  # Saturday, SP33 (16:00 BST)
PREV = SAT_SP - timedelta(minutes=30)
Q = 0.25  # hours left in the SP at 15 minutes in


def M(price: float | None, volume: float | None, sp: datetime, site: float = 0.0, soe: float = 500.0,
      last: float = 0.0) -> SiteState:
    return SiteState(site, soe, last,
                     imbalance_price=None if price is None else MarketValue(price, sp),
                     imbalance_volume=None if volume is None else MarketValue(volume, sp))


def charge(kw: float) -> P:
    return P(-kw, None, -kw)


def discharge(kw: float) -> P:
    return P(kw, kw, None)


AT15 = SAT_SP + timedelta(minutes=15)
NIV_ROWS = [
    # (why, mode, controller extras, state, now, proposal)
    ("long: price 4 shifted to 2.5 -> charge curve 746.875", NIV, {}, M(4, -50, SAT_SP, soe=700), AT15,
     charge((950 - 650 * 2.5 / 8 - 700) / EFF / Q)),
    ("short: price 25 shifted to 27.5 -> discharge curve 325", NIV, {}, M(25, 120, SAT_SP), AT15,
     discharge((500 - 325) / Q)),
    ("between the curves: nothing", NIV, {}, M(15, -50, SAT_SP), AT15, None),
    ("no prediction: default price 12, between the curves", NIV, {}, M(None, None, SAT_SP), AT15, None),
    ("no prediction: default price 12, low SoE charges to 300", NIV, {}, M(None, None, SAT_SP, soe=200), AT15,
     charge(100 / EFF / Q)),
    ("no prediction and no default pricing: inactive", NIV_NO_DEFAULT, {}, M(None, None, SAT_SP, soe=200), AT15,
     None),
    ("import rate raises the charge price: 0 - 1.5 + 3.2 = 1.7", NIV,
     {"import_rates": [{"rate": 3.2, "periods": [{"start": "00:00", "end": "24:00"}]}]},
     M(0, -50, SAT_SP, soe=800), AT15, charge((950 - 650 * 1.7 / 8 - 800) / EFF / Q)),
    ("without the rate the same price charges to 950", NIV, {}, M(0, -50, SAT_SP, soe=800), AT15,
     charge(150 / EFF / Q)),
    ("export rate lowers the discharge price: 30 + 2.5 - 5 = 27.5", NIV,
     {"export_rates": [{"rate": 5, "periods": [{"start": "00:00", "end": "24:00"}]}]},
     M(30, 120, SAT_SP), AT15, discharge((500 - 325) / Q)),
    ("price outside both curves' spans: undefined, inactive", NIV, {}, M(400, 120, SAT_SP), AT15, None),
    ("previous SP short early: predicted price, 25 min left", NIV, {}, M(25, 120, PREV),
     SAT_SP + timedelta(minutes=5), discharge(175 / (25 / 60))),
    ("previous SP short after the cut-off: default pricing", NIV, {}, M(25, 120, PREV, soe=500),
     SAT_SP + timedelta(minutes=10), None),
    ("previous SP long, long not allowed: default pricing", NIV, {}, M(-50, -120, PREV, soe=200),
     SAT_SP + timedelta(minutes=5), charge(100 / EFF / (25 / 60))),
    ("current SP before 10 minutes: default pricing", NIV, {}, M(25, 120, SAT_SP, soe=200),
     SAT_SP + timedelta(minutes=9), charge(100 / EFF / (21 / 60))),
    ("not on a weekday", NIV, {}, M(25, 120, Z("2026-06-03T15:00")), Z("2026-06-03T15:15"), None),
]

PEAK: dict[str, Any] = {
    "type": "dynamic_peak_discharge", "periods": [{"days": "weekdays", "start": "16:00", "end": "19:00"}],
    "params": {"target_soe_kwh": 150, "prioritise_residual_load": True,
               "short_prediction": {"allow_prediction": True, "volume_cutoff_mwh": 0, "time_cutoff_s": 1200}},
}
PEAK_PLAIN = {**PEAK, "params": {**PEAK["params"], "prioritise_residual_load": False}}
PEAK_NO_SHORT = {**PEAK, "params": {**PEAK["params"], "target_short_periods": False}}
WED_SP = Z("2026-06-03T15:00")  # 16:00 BST, the peak's first SP
W15 = WED_SP + timedelta(minutes=15)  # 2.75 h left in the peak
FLAT = P(INF, INF, None)
HOLD = P(None, 0, None)
PEAK_ROWS = [
    ("at the target SoE: nobody may charge", PEAK, {}, M(None, None, WED_SP, site=60, soe=150), W15, HOLD),
    ("below the target SoE: hold", PEAK, {}, M(None, None, WED_SP, site=60, soe=100), W15, HOLD),
    ("too little time left: 300 kWh, 1 h at 250 kW", PEAK, {}, M(None, None, WED_SP, soe=450),
     Z("2026-06-03T17:00"), FLAT),
    ("no prediction, residual load first: import avoidance without extra discharge", PEAK, {},
     M(None, None, WED_SP, site=60, last=20, soe=600), W15, P(80, 80, 80)),
    ("no prediction, plain: hold", PEAK_PLAIN, {}, M(None, None, WED_SP, site=60, soe=600), W15, HOLD),
    ("long, residual load first: import avoidance", PEAK, {}, M(9, -50, WED_SP, site=60, last=20, soe=600), W15,
     P(80, 80, 80)),
    ("short, plain: flat out", PEAK_PLAIN, {}, M(9, 50, WED_SP, site=60, soe=600), W15, FLAT),
    ("short, residual first: available 450 > reserve 80 x 2.75 = 220: flat out", PEAK, {},
     M(9, 50, WED_SP, site=60, last=20, soe=600), W15, FLAT),
    ("short, residual first: available 450 <= reserve 200 x 2.75 = 550: import avoidance", PEAK, {},
     M(9, 50, WED_SP, site=200, soe=600), W15, P(200, 200, 200)),
    ("short from the previous SP within its cut-off: flat out", PEAK_PLAIN, {},
     M(9, 10, WED_SP - timedelta(minutes=30), site=60, soe=600), WED_SP + timedelta(minutes=5), FLAT),
    ("exporting, residual first, no prediction: only a floor", PEAK, {},
     M(None, None, WED_SP, site=-30, soe=600), W15, P(None, -30, None)),
    ("short ignored when target_short_periods is off", PEAK_NO_SHORT, {},
     M(9, 50, WED_SP, site=60, last=20, soe=600), W15, P(80, 80, 80)),
    ("outside the peak", PEAK, {}, M(None, None, WED_SP, site=60, soe=600), Z("2026-06-03T18:00"), None),
]

APPROACH: dict[str, Any] = {
    "type": "dynamic_peak_approach", "periods": [{"days": "weekdays", "start": "16:00", "end": "19:00"}],
    "params": {"to_soe_kwh": 900, "encourage_to_soe_kwh": 950, "assumed_charge_power_kw": 200,
               "force_charge_duration_factor": 1.5, "encourage_charge_duration_factor": 3.0,
               "charge_cushion_min": 10,
               "long_prediction": {"allow_prediction": True, "volume_cutoff_mwh": 50, "time_cutoff_s": 600}},
}
APPROACH_MIDNIGHT = {**APPROACH, "periods": [{"start": "23:00", "end": "02:00"}],
                     "params": {**APPROACH["params"], "charge_cushion_min": 0}}
FORCE_RAMP_H = 900 / 200 / EFF * 1.5  # 7.337 h
ENC_RAMP_H = 950 / 200 / EFF * 3.0  # 15.489 h
REACH = Z("2026-06-03T14:50")  # 16:00 BST less the 10 min cushion


def ramp(to_soe: float, ramp_h: float, reach: datetime, t: datetime) -> float:
    return to_soe * (1 - (reach - t).total_seconds() / 3600 / ramp_h)


APPROACH_ROWS = [
    ("force: on the ramp, curve at the SP end", APPROACH, {}, M(None, None, WED_SP, soe=500), Z("2026-06-03T14:00"),
     charge((ramp(900, FORCE_RAMP_H, REACH, Z("2026-06-03T14:30")) - 500) / 0.5 / EFF)),
    ("force: before the ramp starts", APPROACH, {}, M(None, None, WED_SP, soe=0), Z("2026-06-03T07:00"), None),
    ("force: flat part before the peak", APPROACH, {}, M(None, None, WED_SP, soe=800), Z("2026-06-03T14:55"),
     charge(100 / (5 / 60) / EFF)),
    ("force: during the peak the curve stays at the target", APPROACH, {}, M(None, None, WED_SP, soe=850),
     Z("2026-06-03T16:00"), charge(50 / 0.5 / EFF)),
    ("above the curve: nothing", APPROACH, {}, M(None, None, WED_SP, soe=900), Z("2026-06-03T14:00"), None),
    ("after the peak: nothing", APPROACH, {}, M(None, None, WED_SP, soe=0), Z("2026-06-03T18:00"), None),
    ("encourage when long: 950 kWh with factor 3", APPROACH, {}, M(5, -80, Z("2026-06-03T14:00"), soe=500),
     Z("2026-06-03T14:10"), charge((ramp(950, ENC_RAMP_H, REACH, Z("2026-06-03T14:30")) - 500) / (20 / 60) / EFF)),
    ("encourage curve starts earlier: active at 01:00Z only when long", APPROACH, {},
     M(5, -80, Z("2026-06-03T01:00"), soe=0), Z("2026-06-03T01:10"),
     charge(ramp(950, ENC_RAMP_H, REACH, Z("2026-06-03T01:30")) / (20 / 60) / EFF)),
    ("force at 01:00Z: before its ramp", APPROACH, {}, M(5, 80, Z("2026-06-03T01:00"), soe=0), Z("2026-06-03T01:10"),
     None),
    ("long below the volume cut-off from the previous SP: force", APPROACH, {},
     M(5, -30, Z("2026-06-03T13:30"), soe=500), Z("2026-06-03T14:05"),
     charge((ramp(900, FORCE_RAMP_H, REACH, Z("2026-06-03T14:30")) - 500) / (25 / 60) / EFF)),
    ("peak crossing midnight: ramp before 23:00 local", APPROACH_MIDNIGHT, {}, M(None, None, WED_SP, soe=500),
     Z("2026-06-03T21:00"), charge((ramp(900, FORCE_RAMP_H, Z("2026-06-03T22:00"), Z("2026-06-03T21:30")) - 500)
                                   / 0.5 / EFF)),
    ("peak crossing midnight: after midnight still in the peak", APPROACH_MIDNIGHT, {},
     M(None, None, WED_SP, soe=850), Z("2026-06-04T00:00"), charge(50 / 0.5 / EFF)),
    ("weekday peak: nothing on Saturday afternoon", APPROACH, {}, M(None, None, WED_SP, soe=0),
     Z("2026-06-06T14:00"), None),
]


@pytest.mark.parametrize(("why", "mode", "extra", "state", "now", "expected"),
                         NIV_ROWS + PEAK_ROWS + APPROACH_ROWS, ids=[r[0] for r in NIV_ROWS + PEAK_ROWS + APPROACH_ROWS])
def test_mode(why: str, mode: dict[str, Any], extra: dict[str, Any], state: SiteState, now: datetime,
              expected: P | None) -> None:
    got = build(mode, **extra).propose(state, now)
    assert close(got, expected), got


NOW = Z("2026-06-03T12:00")
H = timedelta(hours=1)


def step(action: str, start: datetime = NOW - H, end: datetime = NOW + H) -> AxleStep:
    return AxleStep(start, end, action)


AXLE_ROWS = [
    ("charge_max", [step("charge_max")], 0.0, P(-INF, -INF, -INF)),
    ("discharge_max", [step("discharge_max")], 0.0, P(INF, INF, INF)),
    ("avoid_import", [step("avoid_import")], 50.0, P(50, 50, None)),
    ("avoid_export", [step("avoid_export")], -50.0, P(-50, None, -50)),
    ("the first step covering now decides", [step("charge_max"), step("discharge_max")], 0.0, P(-INF, -INF, -INF)),
    ("a step that ended (end exclusive) is skipped", [step("charge_max", NOW - 2 * H, NOW), step("discharge_max")],
     0.0, P(INF, INF, INF)),
    ("a future step is not yet in force", [step("charge_max", NOW + H, NOW + 2 * H)], 0.0, None),
    ("no schedule", [], 0.0, None),
]


@pytest.mark.parametrize(("why", "steps", "site", "expected"), AXLE_ROWS, ids=[r[0] for r in AXLE_ROWS])
def test_axle(why: str, steps: list[AxleStep], site: float, expected: P | None) -> None:
    mode = build({"type": "axle"})
    got = mode.propose(SiteState(site, 500.0, axle_schedule=tuple(steps)), NOW)
    assert close(got, expected), got


def test_axle_unknown_action_is_logged_counted_once_and_ignored() -> None:
    mode = build({"type": "axle"})
    assert isinstance(mode, Axle)
    state = SiteState(10.0, 500.0, axle_schedule=(step("boost"), step("charge_max")))
    assert mode.propose(state, NOW) is None
    assert mode.propose(state, NOW + timedelta(seconds=4)) is None
    assert mode.unknown_actions == 1
