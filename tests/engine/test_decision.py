"""The whole pure path: modes -> arbitration -> envelope, with overrides, and its properties on the demo site."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import load_site
from controller.engine.arbitration import arbitrate
from controller.engine.envelope import Limits, apply_envelope
from controller.engine.proposal import Proposal
from controller.engine.site_state import AxleStep, MarketValue, SiteState

DEMO = load_site(Path(__file__).resolve().parents[2] / "config" / "sites" / "demo.yaml").config
assert DEMO.controller is not None
DECIDER = DEMO.controller.decider()
LIMITS = DECIDER.limits
WED_PEAK = datetime(2026, 6, 3, 15, 20, tzinfo=UTC)


def test_manual_override_replaces_arbitration_and_passes_the_envelope() -> None:
    d = DECIDER.decide(SiteState(42.0, 800.0), WED_PEAK, manual_setpoint_kw=1e9)
    assert d.setpoint_kw == 250.0
    assert d.requested_kw == 1e9
    assert d.constraints == ("bess_power",)
    assert d.reason.startswith("manual override")
    assert d.active == ("dynamic_peak_discharge", "dynamic_peak_approach")  # still recorded


def test_mode_override_runs_only_that_mode() -> None:
    d = DECIDER.decide(SiteState(42.0, 800.0), WED_PEAK, only_mode="dynamic_peak_approach")
    assert d.active == d.effective == ("dynamic_peak_approach",)
    assert d.setpoint_kw < 0  # the approach charges towards 900 kWh
    assert [name for name, _ in d.proposals] == ["dynamic_peak_approach"]


def test_idle_when_no_mode_sets_a_power() -> None:
    d = DECIDER.decide(SiteState(10.0, 500.0), datetime(2026, 6, 3, 23, 30, tzinfo=UTC))
    assert (d.setpoint_kw, d.requested_kw, d.reason) == (0.0, None, "idle: no mode set a power")


finite = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False)
bound = st.one_of(st.none(), finite, st.sampled_from([math.inf, -math.inf]))
proposals = st.lists(st.builds(Proposal, target=bound, min=bound, max=bound), max_size=9)
limits = st.builds(Limits, charge_kw=st.floats(0, 5000), discharge_kw=st.floats(0, 5000),
                   import_kw=st.floats(0, 5000), export_kw=st.floats(0, 5000),
                   soe_min_kwh=st.floats(0, 500), soe_max_kwh=st.floats(500.001, 5000),
                   max_reading_age_s=st.floats(1, 600))
states = st.builds(SiteState, site_power_kw=finite, soe_kwh=st.floats(-10, 6000), last_setpoint_kw=finite,
                   site_power_age_s=st.floats(0, 700), soe_age_s=st.floats(0, 700))


@settings(max_examples=300, deadline=None)
@given(ps=proposals, state=states, lim=limits)
def test_any_proposals_give_a_finite_setpoint_within_the_battery_and_soe_limits(
        ps: list[Proposal], state: SiteState, lim: Limits) -> None:
    arb = arbitrate([(f"m{i}", p) for i, p in enumerate(ps)])
    out = apply_envelope(0.0 if arb.power is None else arb.power, state, lim)
    p = out.setpoint_kw
    assert math.isfinite(p)
    assert -lim.charge_kw <= p <= lim.discharge_kw
    assert state.soe_kwh is not None
    if max(state.site_power_age_s, state.soe_age_s) > lim.max_reading_age_s:
        assert p == 0.0
    if state.soe_kwh <= lim.soe_min_kwh:
        assert p <= 0
    if state.soe_kwh >= lim.soe_max_kwh:
        assert p >= 0


markets = st.one_of(st.none(), st.builds(MarketValue, finite, st.sampled_from(
    [WED_PEAK.replace(minute=0), WED_PEAK.replace(minute=0) - timedelta(minutes=30)])))
demo_states = st.builds(
    SiteState, site_power_kw=st.one_of(st.none(), finite), soe_kwh=st.one_of(st.none(), st.floats(-10, 1200)),
    last_setpoint_kw=st.floats(-250, 250), site_power_age_s=st.floats(0, 60), soe_age_s=st.floats(0, 60),
    imbalance_price=markets, imbalance_volume=markets,
    axle_schedule=st.lists(st.builds(AxleStep, st.just(WED_PEAK - timedelta(minutes=5)),
                                     st.just(WED_PEAK + timedelta(minutes=5)),
                                     st.sampled_from(["charge_max", "discharge_max", "avoid_import", "avoid_export",
                                                      "boost"])), max_size=2).map(tuple))


@settings(max_examples=300, deadline=None)
@given(state=demo_states, offset_s=st.integers(0, 7 * 86400))
def test_demo_site_decisions_stay_within_every_limit(state: SiteState, offset_s: int) -> None:
    now = WED_PEAK + timedelta(seconds=offset_s)
    d = DECIDER.decide(state, now)
    p = d.setpoint_kw
    assert math.isfinite(p)
    assert -LIMITS.charge_kw <= p <= LIMITS.discharge_kw
    if state.site_power_kw is None or state.soe_kwh is None or state.site_power_age_s > LIMITS.max_reading_age_s \
            or state.soe_age_s > LIMITS.max_reading_age_s:
        assert (p, d.constraints) == (0.0, ("stale_data",))
        return
    if state.soe_kwh <= LIMITS.soe_min_kwh:
        assert p <= 0
    if state.soe_kwh >= LIMITS.soe_max_kwh:
        assert p >= 0


def test_decision_record_is_strict_json_even_with_missing_inputs_and_infinite_proposals() -> None:
    import json

    from controller.engine.decision import record_body

    state = SiteState(None, 500.0, site_power_age_s=math.inf,
                      axle_schedule=(AxleStep(WED_PEAK, WED_PEAK + timedelta(hours=1), "discharge_max"),))
    d = DECIDER.decide(state, WED_PEAK)
    body = record_body(d, state)
    text = json.dumps(body, allow_nan=False)  # raises on NaN/Infinity
    assert json.loads(text)["proposals"]["axle"] == {"target": "inf", "min": "inf", "max": "inf"}
    assert body["inputs"]["site_power_age_s"] is None
    assert body["target_kw"] == 0.0 and body["constraints"] == ["stale_data"]
