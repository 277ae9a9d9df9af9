"""The plan mode: aim at the plan's SoE for the end of the current settlement period; no plan, a stale one,
or a time outside it: inactive."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from controller.engine.proposal import Proposal as P
from controller.engine.site_state import PlanTargets, SiteState
from tests.modes.util import Z, build, close

MODE = {"type": "plan"}
T0 = Z("2026-06-03T12:00")
PLAN = PlanTargets("p1", T0, 1800.0, ((T0, 600.0), (T0 + timedelta(minutes=30), 400.0)))


def pin(kw: float) -> P:
    return P(kw, kw, kw)


def S(soe: float | None = 500.0, plan: PlanTargets | None = PLAN) -> SiteState:
    return SiteState(10.0, soe, 0.0, plan=plan)


ROWS: list[tuple[str, dict[str, object], SiteState, datetime, P | None]] = [
    ("charge 100 kWh over the 30 min left, at 92 % efficiency: 217.4 kW", MODE, S(500), T0, pin(-100 / 0.92 / 0.5)),
    ("charge the last 23 kWh over the 6 min left: 250 kW", MODE, S(600 - 23), T0 + timedelta(minutes=24),
     pin(-23 / 0.92 / 0.1)),
    ("next period: discharge 100 kWh over 30 min: 200 kW", MODE, S(500), T0 + timedelta(minutes=30), pin(200)),
    ("within the dead band: hold", MODE, S(599.8), T0 + timedelta(minutes=10), pin(0.0)),
    ("a wider dead band from the site file", {"type": "plan", "params": {"deadband_kwh": 5}}, S(597),
     T0 + timedelta(minutes=10), pin(0.0)),
    ("no plan: inactive", MODE, S(500, None), T0, None),
    ("no SoE: inactive", MODE, S(None), T0, None),
    ("after the plan's last period: inactive", MODE, S(500), T0 + timedelta(minutes=60), None),
    ("a plan older than max_plan_age_s: inactive", {"type": "plan", "params": {"max_plan_age_s": 600}}, S(500),
     T0 + timedelta(minutes=11), None),
    ("a plan made 4 min after now (a clock jump back): inactive", MODE,
     S(500, PlanTargets("p2", T0 + timedelta(minutes=5), 1800.0, PLAN.targets)), T0 + timedelta(minutes=1), None),
]


@pytest.mark.parametrize(("why", "mode", "state", "now", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_plan_mode(why: str, mode: dict[str, object], state: SiteState, now: datetime, expected: P | None) -> None:
    got = build(mode).propose(state, now)
    assert close(got, expected), got


def test_decision_records_name_the_plan_and_the_periods_target() -> None:
    from controller.engine.decision import Decider, record_body

    mode = build(MODE)
    decider = Decider(mode.ctx.limits, [mode])
    now = T0 + timedelta(minutes=10)
    state = SiteState(10.0, 500.0, 0.0, plan=PLAN)
    body = record_body(decider.decide(state, now), state)
    assert body["effective_modes"] == ["plan"]
    assert body["inputs"]["plan"] == {"plan_id": "p1", "created_at": T0.isoformat(),
                                      "period_end": (T0 + timedelta(minutes=30)).isoformat(), "target_soe_kwh": 600.0}
    assert "plan" not in record_body(decider.decide(S(500, None), now), S(500, None))["inputs"]
