"""One decision: every mode proposes, arbitration picks, the envelope has the last word.

`Decider.decide` is the whole pure path shared by the control loop, `flux-edge decide` and the backtest.
The Decider is given its modes and limits (the application builds them from the site file:
`ControllerConfig.decider`); the engine knows a mode only as a `Proposer`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from controller.core.logs import get_logger
from controller.engine.arbitration import arbitrate
from controller.engine.envelope import STALE, Limits, apply_envelope
from controller.engine.proposal import Proposal, json_number
from controller.engine.site_state import MarketValue, SiteState

log = get_logger("engine")


class Proposer(Protocol):
    """What the engine needs of a mode: its record name, its type (for a mode override) and a proposal."""

    # Read-only, so a mode may hold its type as a class attribute.
    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    def propose(self, state: SiteState, now: datetime) -> Proposal | None:
        """This tick's proposal (None: inactive)."""


@dataclass(frozen=True, slots=True)
class Decision:
    time: datetime
    setpoint_kw: float
    requested_kw: float | None  # before the envelope; None = no mode set a power (idle)
    proposals: tuple[tuple[str, Proposal | None], ...]
    active: tuple[str, ...]
    effective: tuple[str, ...]
    constraints: tuple[str, ...]
    reason: str
    decided_by: str | None = None  # the mode whose target is the requested power
    stale_inputs: tuple[str, ...] = ()  # with the stale_data constraint: which inputs were missing or too old
    mode_types: tuple[tuple[str, str], ...] = ()  # (mode name, mode type) of every mode asked, in order
    max_reading_age_s: float | None = None

    def answer(self) -> dict[str, Any]:
        """The `flux-edge decide` contract (spec README)."""
        return {"target_kw": self.setpoint_kw, "active_modes": list(self.active),
                "effective_modes": list(self.effective), "constraints": list(self.constraints),
                "reason": self.reason}


def _market(v: MarketValue | None) -> dict[str, Any] | None:
    return None if v is None else {"value": v.value, "settlement_period": v.settlement_period.isoformat()}


def _finite(x: float | None) -> float | None:
    """Records are JSON: a missing value's infinite age (or any non-finite input) is recorded as null."""
    return x if x is not None and math.isfinite(x) else None


def _plan(state: SiteState, now: datetime | None) -> dict[str, Any]:
    """The plan a decision saw: its id and, at `now`, the period's target (what the `plan` mode aims at)."""
    assert state.plan is not None
    target = None if now is None else state.plan.target_at(now)
    return {"plan_id": state.plan.plan_id, "created_at": state.plan.created_at.isoformat(),
            "period_end": None if target is None else target[0].isoformat(),
            "target_soe_kwh": None if target is None else target[1]}
def _axle_step(state: SiteState, now: datetime) -> dict[str, Any] | None:
    step = next((s for s in state.axle_schedule if s.covers(now)), None)
    if step is None:
        return None
    return {"action": step.action, "start": step.start.isoformat(), "end": step.end.isoformat()}


def inputs_of(state: SiteState, now: datetime | None = None) -> dict[str, Any]:
    return {
        "site_power_kw": _finite(state.site_power_kw), "site_power_age_s": _finite(state.site_power_age_s),
        "bess_soe_kwh": _finite(state.soe_kwh), "bess_soe_age_s": _finite(state.soe_age_s),
        "bess_last_target_kw": _finite(state.last_setpoint_kw),
        "bess_power_kw": _finite(state.battery_power_kw), "bess_power_age_s": _finite(state.battery_power_age_s),
        "imbalance_price": _market(state.imbalance_price), "imbalance_volume": _market(state.imbalance_volume),
        "axle_steps": len(state.axle_schedule),
        **({} if state.plan is None else {"plan": _plan(state, now)}),
        **({} if now is None else {"axle_step": _axle_step(state, now)}),
    }


def record_body(decision: Decision, state: SiteState, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-ready decision record: the `decide` answer plus inputs (with ages) and every proposal."""
    return {
        "time": decision.time.isoformat(), **decision.answer(),
        "requested_kw": json_number(decision.requested_kw),
        "inputs": inputs_of(state, decision.time),
        "proposals": {name: (None if p is None else p.as_json()) for name, p in decision.proposals},
        "decided_by": decision.decided_by,
        "stale_inputs": list(decision.stale_inputs),
        "mode_types": dict(decision.mode_types),
        "max_reading_age_s": decision.max_reading_age_s,
        **(extra or {}),
    }


class Decider:
    """A site's modes in priority order (highest first) and its safety limits."""

    def __init__(self, limits: Limits, modes: Sequence[Proposer]) -> None:
        self.limits = limits
        self.modes: list[Proposer] = list(modes)
        self.mode_errors = 0

    def _proposals(self, state: SiteState, now: datetime, only_mode: str | None) -> list[tuple[str, Proposal | None]]:
        out: list[tuple[str, Proposal | None]] = []
        for mode in self.modes:
            if only_mode is not None and only_mode not in (mode.name, mode.type):
                continue
            try:
                out.append((mode.name, mode.propose(state, now)))
            except (ArithmeticError, ValueError, OverflowError) as exc:
                # Bad data must not stop the others deciding: the mode is inactive this tick.
                self.mode_errors += 1
                log.error("mode_failed", mode=mode.name, error=repr(exc))
                out.append((mode.name, None))
        return out

    def decide(self, state: SiteState, now: datetime, *, manual_setpoint_kw: float | None = None,
               only_mode: str | None = None) -> Decision:
        proposals = tuple(self._proposals(state, now, only_mode))
        arb = arbitrate(proposals)
        decided_by = arb.decided_by
        if manual_setpoint_kw is not None:
            decided_by = None
            requested: float | None = manual_setpoint_kw
            reason = "manual override"
        elif arb.power is None:
            requested = None
            reason = "idle: no mode set a power"
        else:
            requested = arb.power
            reason = f"{arb.decided_by} set the target"
        env = apply_envelope(0.0 if requested is None else requested, state, self.limits)
        if env.constraints == (STALE,):
            reason = "stale_data: " + ", ".join(env.stale_inputs) + " missing or too old"
        elif env.constraints:
            reason += "; limited by " + ", ".join(env.constraints)
        types = tuple((m.name, m.type) for m in self.modes if only_mode is None or only_mode in (m.name, m.type))
        return Decision(now, env.setpoint_kw, requested, proposals, arb.active, arb.effective, env.constraints,
                        reason, decided_by, env.stale_inputs, types, self.limits.max_reading_age_s)
