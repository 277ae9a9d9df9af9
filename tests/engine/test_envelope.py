"""The safety envelope: table rows with numbers, then properties over any state and request."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.engine.envelope import Limits, apply_envelope, battery_interval
from controller.engine.site_state import SiteState

LIM = Limits(charge_kw=250, discharge_kw=200, import_kw=300, export_kw=350, soe_min_kwh=50, soe_max_kwh=950,
             max_reading_age_s=30)
INF = math.inf


def S(site: float | None = 0.0, soe: float | None = 500.0, last: float = 0.0, age: float = 1.0,
      soe_age: float = 1.0) -> SiteState:
    return SiteState(site_power_kw=site, soe_kwh=soe, last_setpoint_kw=last, site_power_age_s=age,
                     soe_age_s=soe_age)


ROWS = [
    # (why, requested, state, setpoint, constraints)
    ("within every limit", 100.0, S(), 100.0, ()),
    ("discharge limit", 500.0, S(), 200.0, ("bess_power",)),
    ("charge limit", -400.0, S(), -250.0, ("bess_power",)),
    ("+inf means as hard as allowed", INF, S(), 200.0, ("bess_power",)),
    ("-inf means as hard as allowed", -INF, S(), -250.0, ("bess_power",)),
    ("NaN request idles", math.nan, S(), 0.0, ("invalid_request",)),
    # predicted site = site - (new - last)
    ("import limit raises discharge just to the limit", 0.0, S(site=350), 50.0, ("site_import",)),
    ("import limit counts the last setpoint", 0.0, S(site=330, last=20), 50.0, ("site_import",)),
    ("import limit never beyond the discharge limit", 0.0, S(site=700), 200.0, ("site_import",)),
    ("charging into an import limit is reduced", -200.0, S(site=200), -100.0, ("site_import",)),
    ("export limit raises charge just to the limit", 0.0, S(site=-400), -50.0, ("site_export",)),
    ("export limit never beyond the charge limit", 0.0, S(site=-900), -250.0, ("site_export",)),
    ("discharging into an export limit is reduced", 200.0, S(site=-300), 50.0, ("site_export",)),
    ("no discharge at soe_min", 100.0, S(soe=50), 0.0, ("soe_min",)),
    ("no discharge below soe_min", 100.0, S(soe=10), 0.0, ("soe_min",)),
    ("charging allowed at soe_min", -100.0, S(soe=50), -100.0, ()),
    ("no charge at soe_max", -100.0, S(soe=950), 0.0, ("soe_max",)),
    ("discharge allowed at soe_max", 100.0, S(soe=950), 100.0, ()),
    ("site import step cannot flip sign against soe_min", 0.0, S(site=400, soe=40), 0.0,
     ("site_import", "soe_min")),
    ("site export step cannot flip sign against soe_max", 0.0, S(site=-500, soe=960), 0.0,
     ("site_export", "soe_max")),
    ("stale site power idles", 100.0, S(age=31), 0.0, ("stale_data",)),
    ("stale SoE idles", -100.0, S(soe_age=60), 0.0, ("stale_data",)),
    ("age exactly at the maximum is still fresh", 100.0, S(age=30), 100.0, ()),
    ("missing site power idles", 100.0, S(site=None), 0.0, ("stale_data",)),
    ("missing SoE idles", 100.0, S(soe=None), 0.0, ("stale_data",)),
    ("non-finite site power idles", 100.0, S(site=math.inf), 0.0, ("stale_data",)),
]

# With a horizon (control period 4 s + the SoE reading's age): near a bound, no more power than the
# energy left before it can deliver until the next decision.
LIM_H = Limits(charge_kw=250, discharge_kw=200, import_kw=300, export_kw=350, soe_min_kwh=50, soe_max_kwh=950,
               max_reading_age_s=30, soe_horizon_s=4, charge_efficiency=0.9)
HORIZON_ROWS = [
    # 0.1 kWh above soe_min, 4 s + 2 s of horizon: 0.1 kWh / (6/3600 h) = 60 kW
    ("discharge tapers to the energy left above soe_min", 200.0, S(soe=50.1, soe_age=2), 60.0, ("soe_min",)),
    ("far from soe_min the taper does not bite", 200.0, S(soe=60, soe_age=2), 200.0, ()),
    # 0.09 kWh below soe_max stores 0.9 per kWh drawn over 5 s: 0.09 / (5/3600 x 0.9) = 72 kW
    ("charge tapers to the room left below soe_max", -250.0, S(soe=949.91, soe_age=1), -72.0, ("soe_max",)),
    ("at soe_min still no discharge", 10.0, S(soe=50), 0.0, ("soe_min",)),
    ("the site import step is tapered too, never flipped", 0.0, S(site=400, soe=50.05, soe_age=2), 30.0,
     ("site_import", "soe_min")),
]


LIM_M = Limits(charge_kw=250, discharge_kw=200, import_kw=300, export_kw=350, soe_min_kwh=50, soe_max_kwh=950,
               max_reading_age_s=30, site_margin_kw=20)
MARGIN_ROWS = [
    # import limit 300 - margin 20: site 200 with the battery idle leaves 80 kW of charge
    ("a site margin keeps charging 20 kW inside the import limit", -200.0, S(site=200), -80.0, ("site_import",)),
    # export limit 350 - margin 20: site -300 with the battery idle leaves 30 kW of discharge
    ("a site margin keeps discharging 20 kW inside the export limit", 200.0, S(site=-300), 30.0, ("site_export",)),
    ("inside the margin nothing moves", -20.0, S(site=250), -20.0, ()),
]


@pytest.mark.parametrize(("why", "requested", "state", "setpoint", "constraints"), MARGIN_ROWS,
                         ids=[r[0] for r in MARGIN_ROWS])
def test_envelope_with_a_site_margin(why: str, requested: float, state: SiteState, setpoint: float,
                                     constraints: tuple[str, ...]) -> None:
    out = apply_envelope(requested, state, LIM_M)
    assert out.setpoint_kw == pytest.approx(setpoint)
    assert out.constraints == constraints


@pytest.mark.parametrize(("why", "requested", "state", "setpoint", "constraints"), HORIZON_ROWS,
                         ids=[r[0] for r in HORIZON_ROWS])
def test_envelope_near_soe_bounds(why: str, requested: float, state: SiteState, setpoint: float,
                                  constraints: tuple[str, ...]) -> None:
    out = apply_envelope(requested, state, LIM_H)
    assert out.setpoint_kw == pytest.approx(setpoint)
    assert out.constraints == constraints


@settings(max_examples=400, deadline=None)
@given(requested=st.floats(allow_nan=True, allow_infinity=True), soe=st.floats(0, 6000), age=st.floats(0, 30),
       horizon=st.floats(0.5, 60),
       efficiency=st.floats(0.5, 1.0))
def test_one_decision_never_carries_the_soe_across_a_bound(requested: float, soe: float, age: float,
                                                           horizon: float, efficiency: float) -> None:
    lim = Limits(charge_kw=5000, discharge_kw=5000, import_kw=1e9, export_kw=1e9, soe_min_kwh=50,
                 soe_max_kwh=950, max_reading_age_s=30, soe_horizon_s=horizon, charge_efficiency=efficiency)
    p = apply_envelope(requested, S(site=0.0, soe=soe, soe_age=age), lim).setpoint_kw
    hours = (horizon + age) / 3600
    if p > 0:
        assert soe - p * hours >= 50 - 1e-6
    if p < 0:
        assert soe - p * hours * efficiency <= 950 + 1e-6


@pytest.mark.parametrize(("why", "requested", "state", "setpoint", "constraints"), ROWS, ids=[r[0] for r in ROWS])
def test_envelope(why: str, requested: float, state: SiteState, setpoint: float, constraints: tuple[str, ...]) -> None:
    out = apply_envelope(requested, state, LIM)
    assert out.setpoint_kw == pytest.approx(setpoint)
    assert out.constraints == constraints


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
power = st.one_of(st.floats(allow_nan=True, allow_infinity=True), finite)
limits = st.builds(Limits, charge_kw=st.floats(0, 5000), discharge_kw=st.floats(0, 5000),
                   import_kw=st.floats(0, 5000), export_kw=st.floats(0, 5000),
                   soe_min_kwh=st.floats(0, 500), soe_max_kwh=st.floats(500.001, 5000),
                   max_reading_age_s=st.floats(1, 600))
states = st.builds(SiteState, site_power_kw=st.one_of(st.none(), finite, st.just(math.inf)),
                   soe_kwh=st.one_of(st.none(), st.floats(-100, 6000)), last_setpoint_kw=finite,
                   site_power_age_s=st.floats(0, 1000), soe_age_s=st.floats(0, 1000))


@settings(max_examples=400, deadline=None)
@given(requested=power, state=states, lim=limits)
def test_envelope_always_finite_and_within_every_limit(requested: float, state: SiteState, lim: Limits) -> None:
    out = apply_envelope(requested, state, lim)
    p = out.setpoint_kw
    assert math.isfinite(p)
    assert -lim.charge_kw <= p <= lim.discharge_kw
    stale = (state.site_power_kw is None or state.soe_kwh is None or not math.isfinite(state.site_power_kw)
             or state.site_power_age_s > lim.max_reading_age_s or state.soe_age_s > lim.max_reading_age_s)
    if stale:
        assert p == 0.0 and out.constraints == ("stale_data",)
        return
    assert state.soe_kwh is not None and state.site_power_kw is not None
    if state.soe_kwh <= lim.soe_min_kwh:
        assert p <= 0
    if state.soe_kwh >= lim.soe_max_kwh:
        assert p >= 0
    # The site limits hold unless the battery is already at its own limit or held by an SoE bound
    # (at the bound, or tapered near it so one decision cannot carry it across).
    # The battery behind the site reading is the last setpoint or idle (decide's reading of it): the
    # import limit holds for the worse of the two, the export limit too unless the import limit forbids it.
    lo, hi, _ = battery_interval(state, lim)
    tol = 1e-6 * max(1.0, abs(state.site_power_kw), abs(state.last_setpoint_kw))
    if state.site_power_kw + hi - p > lim.import_kw + tol:
        assert p == lim.discharge_kw or "soe_min" in out.constraints
    if state.site_power_kw + lo - p < -lim.export_kw - tol:
        import_binds = state.site_power_kw + hi - lim.import_kw >= p - tol
        assert p == -lim.charge_kw or "soe_max" in out.constraints or import_binds


@settings(max_examples=200, deadline=None)
@given(requested=power, state=states, lim=limits, extra_age=st.floats(0.001, 1e6))
def test_envelope_idles_on_stale_data(requested: float, state: SiteState, lim: Limits, extra_age: float) -> None:
    stale = SiteState(state.site_power_kw, state.soe_kwh, state.last_setpoint_kw,
                      site_power_age_s=lim.max_reading_age_s + extra_age, soe_age_s=state.soe_age_s)
    out = apply_envelope(requested, stale, lim)
    assert out.setpoint_kw == 0.0
    assert out.constraints == ("stale_data",)
