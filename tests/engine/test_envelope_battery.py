"""The envelope with the battery's power known only as an interval: measured (matching the site reading in
time, widened by the ramp rate), the worst case when no measurement matches, or `decide`'s last setpoint."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.engine.envelope import LAST_SETPOINT, MEASURED, WORST_CASE, Limits, apply_envelope, battery_interval
from controller.engine.site_state import SiteState

LIM = Limits(charge_kw=250, discharge_kw=200, import_kw=300, export_kw=350, soe_min_kwh=50, soe_max_kwh=950,
             max_reading_age_s=30, soe_horizon_s=4, site_margin_kw=10, battery_ramp_kw_per_s=100,
             battery_match_s=1.0)


def S(site: float = 0.0, last: float = 0.0, measured: float | None = None, measured_age: float = 1.0,
      span: tuple[float, float] | None = None, age: float = 1.0, soe: float = 500.0) -> SiteState:
    return SiteState(site_power_kw=site, soe_kwh=soe, last_setpoint_kw=last, site_power_age_s=age, soe_age_s=1.0,
                     battery_power_kw=measured, battery_power_age_s=measured_age, battery_span_kw=span)


ROWS = [
    # The failure: a charge command had been sent, but the battery idled itself (failed writes,
    # its own heartbeat timeout). The measured 0 kW, not the last setpoint, is what the site reading holds.
    ("measured idle battery: charging is cut to the import limit less the margin", -100.0,
     S(site=280, last=-100, measured=0.0), -10.0, ("site_import",)),
    ("the last setpoint alone would have allowed it; decide's fallback takes 0 or last, the worse",
     -100.0, S(site=280, last=-100), -10.0, ("site_import",)),
    ("measured discharging battery counts fully", 0.0, S(site=250, last=0, measured=100.0), 60.0,
     ("site_import",)),
    ("a measurement 0.5 s off the site reading is widened by the ramp (100 kW/s)", 0.0,
     S(site=250, measured=0.0, measured_age=1.5), 0.0 + 250 + 50 - 290, ("site_import",)),
    ("a measurement too far from the site reading: the worst-case span", 0.0,
     S(site=250, measured=0.0, measured_age=5.0, span=(-50.0, 120.0)), 80.0, ("site_import",)),
    ("no measurement, no span: worst case of 0 and the last setpoint", 0.0, S(site=250, last=150), 110.0,
     ("site_import",)),
    ("export limit held for the bottom of the interval", 200.0, S(site=-200, measured=-100.0), 40.0,
     ("site_export",)),
    ("import and export cannot both hold: the import limit wins", 0.0, S(site=0, span=(-400.0, 400.0)), 110.0,
     ("site_import",)),
]


@pytest.mark.parametrize(("why", "requested", "state", "setpoint", "constraints"), ROWS, ids=[r[0] for r in ROWS])
def test_rows(why: str, requested: float, state: SiteState, setpoint: float, constraints: tuple[str, ...]) -> None:
    out = apply_envelope(requested, state, LIM)
    assert out.setpoint_kw == pytest.approx(setpoint)
    assert out.constraints == constraints


def test_interval_sources() -> None:
    assert battery_interval(S(measured=20.0, measured_age=1.0), LIM) == (20.0, 20.0, MEASURED)
    assert battery_interval(S(measured=20.0, measured_age=31.0, span=(5.0, 30.0)), LIM) == (0.0, 30.0, WORST_CASE)
    assert battery_interval(S(last=-40.0), LIM) == (-40.0, 0.0, LAST_SETPOINT)
    assert battery_interval(S(measured=math.nan, span=(math.nan, 1.0)), LIM)[2] == WORST_CASE


finite = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False)
limits = st.builds(Limits, charge_kw=st.floats(0, 5000), discharge_kw=st.floats(0, 5000),
                   import_kw=st.floats(0, 5000), export_kw=st.floats(0, 5000),
                   soe_min_kwh=st.floats(0, 500), soe_max_kwh=st.floats(500.001, 5000),
                   max_reading_age_s=st.floats(1, 600), soe_horizon_s=st.floats(0, 60),
                   site_margin_kw=st.floats(0, 100), battery_ramp_kw_per_s=st.floats(1, 1000),
                   battery_match_s=st.floats(0, 5))
states = st.builds(
    SiteState, site_power_kw=finite, soe_kwh=st.floats(-100, 6000), last_setpoint_kw=finite,
    site_power_age_s=st.floats(0, 60), soe_age_s=st.floats(0, 60),
    battery_power_kw=st.one_of(st.none(), finite, st.just(math.nan), st.just(math.inf)),
    battery_power_age_s=st.one_of(st.floats(0, 60), st.just(math.inf)),
    battery_span_kw=st.one_of(st.none(), st.tuples(finite, finite)))
requests = st.one_of(st.floats(allow_nan=True, allow_infinity=True), finite)


@settings(max_examples=500, deadline=None)
@given(requested=requests, state=states, lim=limits, where=st.floats(0, 1))
def test_never_beyond_the_battery_and_never_into_the_import_limit_when_it_can_be_held(
        requested: float, state: SiteState, lim: Limits, where: float) -> None:
    out = apply_envelope(requested, state, lim)
    p = out.setpoint_kw
    assert math.isfinite(p)
    assert -lim.charge_kw <= p <= lim.discharge_kw
    if out.constraints == ("stale_data",):
        assert p == 0.0
        return
    assert state.site_power_kw is not None and state.soe_kwh is not None
    lo, hi, _ = battery_interval(state, lim)
    assert lo <= hi
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return
    true_battery = lo + (hi - lo) * where  # whatever the battery really did, within what we know
    predicted = state.site_power_kw + true_battery - p
    target = max(0.0, lim.import_kw - lim.site_margin_kw)
    # The most discharge any setpoint within the limits could give: the battery's limit, the SoE taper.
    horizon_h = (lim.soe_horizon_s + state.soe_age_s) / 3600
    room = state.soe_kwh - lim.soe_min_kwh
    best = 0.0 if room <= 0 else lim.discharge_kw if horizon_h <= 0 else min(lim.discharge_kw, room / horizon_h)
    achievable = state.site_power_kw + hi - max(best, -lim.charge_kw) <= target
    tol = 1e-6 * max(1.0, abs(state.site_power_kw), abs(hi), abs(lo))
    if achievable:
        assert predicted <= target + tol, (predicted, target, out)
