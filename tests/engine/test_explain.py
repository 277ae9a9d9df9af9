"""The one-line reason, table-driven: one decision record body per situation, and the line it must give."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.engine.decision import Decider, record_body
from controller.engine.envelope import Limits
from controller.engine.explain import explain
from controller.engine.proposal import INF, Proposal
from controller.engine.schedule import zone
from controller.engine.site_state import AxleStep, MarketValue, SiteState

SP = "2026-11-23T16:00:00+00:00"
SHORT = {"imbalance_volume": {"value": 184.0, "settlement_period": SP},
         "imbalance_price": {"value": 45.24, "settlement_period": SP}}


def body(target: float, *, decided: str | None = None, kind: str | None = None, constraints: tuple[str, ...] = (),
         inputs: dict[str, Any] | None = None, proposal: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"time": "2026-11-23T16:16:00+00:00", "target_kw": target, "requested_kw": target,
                         "active_modes": [decided] if decided else [], "effective_modes": [decided] if decided else [],
                         "constraints": list(constraints), "decided_by": decided,
                         "mode_types": {decided: kind or decided} if decided else {},
                         "inputs": {"site_power_kw": 40.0, "site_power_age_s": 2.0, "bess_soe_kwh": 500.0,
                                    "bess_soe_age_s": 2.0, **(inputs or {})},
                         "proposals": {decided: proposal or {"target": target, "min": None, "max": None}}
                         if decided else {},
                         "stale_inputs": [], "max_reading_age_s": 30.0, "override": None}
    b.update(extra)
    return b


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("peak discharge, system short, full power capped",
     body(250.0, decided="dynamic_peak_discharge", constraints=("bess_power",), inputs=SHORT,
          proposal={"target": "inf", "min": "inf", "max": None}),
     "discharging 250 kW: system short, NIV +184 MWh for SP 16:00, price 45.2 p/kWh, "
     "peak discharge asking for full power, capped at the battery's limit"),
    ("peak discharge covering only the site load (prioritise residual load)",
     body(47.1, decided="dynamic_peak_discharge", inputs={**SHORT, "site_power_kw": 0.2, "bess_last_target_kw": 46.9},
          proposal={"target": 47.1, "min": 47.1, "max": 47.1}),
     "discharging 47.1 kW: system short, NIV +184 MWh for SP 16:00, price 45.2 p/kWh, "
     "peak discharge covering the site load"),
    ("NIV chase, system long, charging",
     body(-120.5, decided="niv_chase", inputs={
         "imbalance_volume": {"value": -95.0, "settlement_period": SP},
         "imbalance_price": {"value": -3.0, "settlement_period": SP}}),
     "charging 120.5 kW: system long, NIV -95 MWh for SP 16:00, price -3.0 p/kWh, NIV chase"),
    ("Axle step",
     body(-250.0, decided="axle", constraints=("bess_power",),
          inputs={"axle_step": {"action": "charge_max", "start": "2026-11-23T16:00:00+00:00",
                                "end": "2026-11-23T16:30:00+00:00"}},
          proposal={"target": "-inf", "min": "-inf", "max": "-inf"}),
     "charging 250 kW: Axle step charge_max until 16:30 asking for full power, capped at the battery's limit"),
    ("stale site power",
     body(0.0, constraints=("stale_data",), stale_inputs=["site_power_kw"],
          inputs={"site_power_age_s": 95.0}),
     "idle at 0 kW: stale data: site power 95 s old (allowed 30 s), safe idle"),
    ("missing SoE",
     body(0.0, constraints=("stale_data",), stale_inputs=["bess_soe_kwh"],
          inputs={"bess_soe_kwh": None, "bess_soe_age_s": None}),
     "idle at 0 kW: stale data: SoE missing, safe idle"),
    ("manual override",
     body(-100.0, override={"manual_setpoint_kw": -100.0, "mode": None, "source": "mqtt:alice",
                            "until": "2026-11-23T16:30:00+00:00"}),
     "charging 100 kW: manual override -100 kW by mqtt:alice until 16:30"),
    ("mode override that cannot act now",
     body(0.0, override={"manual_setpoint_kw": None, "mode": "charge_to_soe", "source": "mqtt:bob",
                         "until": "2026-11-23T17:00:00+00:00"}, requested_kw=None),
     "idle at 0 kW: mode override: only charge_to_soe by mqtt:bob until 17:00, charge_to_soe has nothing to do now"),
    ("named mode, site import limit, dry run",
     body(60.0, decided="evening", kind="import_avoidance", constraints=("site_import",), dry_run=True),
     "discharging 60 kW: covering the site load (import avoidance) (evening), "
     "moved to keep the site's import within its limit, dry run: not written"),
    ("nothing proposed: the envelope alone",
     body(40.0, constraints=("site_import",), requested_kw=None),
     "discharging 40 kW: no mode set a power, moved to keep the site's import within its limit"),
    ("idle, one mode only bounding",
     {**body(0.0, requested_kw=None), "active_modes": ["dynamic_peak_discharge"]},
     "idle at 0 kW: no mode set a power (dynamic_peak_discharge only bound it)"),
    ("a record from before decided_by",
     {k: v for k, v in body(-50.0, decided="charge_to_soe").items() if k not in ("decided_by", "mode_types")},
     "charging 50 kW: charging to its target SoE"),
    ("internal error", body(0.0, constraints=("internal_error",)), "idle at 0 kW: internal error, safe idle"),
]


@pytest.mark.parametrize(("situation", "record", "line"), CASES, ids=[c[0] for c in CASES])
def test_reason_line(situation: str, record: dict[str, Any], line: str) -> None:
    assert explain(record) == line


def test_clock_times_in_the_site_zone() -> None:
    summer = body(250.0, decided="niv_chase", inputs={
        "imbalance_volume": {"value": 10.0, "settlement_period": "2026-06-06T15:00:00+00:00"}})
    assert "for SP 16:00" in explain(summer, zone("Europe/London"))
    assert "for SP 15:00" in explain(summer)


class _Mode:
    def __init__(self, name: str, type_: str, proposal: Proposal | None) -> None:
        self.name, self.type, self._p = name, type_, proposal

    def propose(self, state: SiteState, now: datetime) -> Proposal | None:
        return self._p


def test_the_record_body_carries_what_the_line_needs() -> None:
    now = datetime(2026, 11, 23, 16, 16, tzinfo=UTC)
    sp = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    limits = Limits(250, 250, 300, 350, 50, 950, 30)
    decider = Decider(limits, [_Mode("axle", "axle", None), _Mode("dpd", "dynamic_peak_discharge",
                                                                   Proposal(INF, INF))])
    step = AxleStep(now.replace(minute=0), now.replace(minute=30), "discharge_max")
    state = SiteState(40.0, 600.0, 0.0, 2.0, 2.0, MarketValue(45.0, sp), MarketValue(184.0, sp), (step,))
    rec = record_body(decider.decide(state, now), state)
    assert rec["decided_by"] == "dpd" and rec["mode_types"] == {"axle": "axle", "dpd": "dynamic_peak_discharge"}
    assert rec["inputs"]["axle_step"]["action"] == "discharge_max"
    assert explain(rec) == ("discharging 250 kW: system short, NIV +184 MWh for SP 16:00, price 45.0 p/kWh, "
                            "peak discharge (dpd) asking for full power, capped at the battery's limit")
    stale = SiteState(40.0, 600.0, 0.0, 2.0, 31.0)
    assert explain(record_body(decider.decide(stale, now), stale)) == (
        "idle at 0 kW: stale data: SoE 31 s old (allowed 30 s), safe idle")
