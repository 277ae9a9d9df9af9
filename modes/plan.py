"""Track the planner's plan: bring the SoE to the plan's target for the end of the current settlement period.

Like `charge_to_soe`, the energy still to move (charge divided by the efficiency) is spread over the time
left in the period, and re-aimed every tick, so a tick's shortfall is made up by the next. Unlike it, the
power is pinned (target = min = max, as Axle's charge_max pins it): the plan already weighed every price
and rule, and arbitration lets a lower-priority target replace a higher one unless bounds stop it.
No plan, a plan older than `max_plan_age_s`, or a time the plan does not cover: inactive, and the
rule-based modes below decide. The safety envelope keeps the last word.

Default place: right after `axle` (catalog). Axle's dispatch is a commitment the plan itself respects, so it
stays above; every rule-based mode pursues one of the aims the plan already optimises together, so while a
fresh plan exists it should decide, and with none they take over as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.config import ConfigModel, Period, Periods
from controller.core.schema import Field
from controller.engine.proposal import Proposal
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, PeriodMode


def _always() -> list[Period]:
    return [Period.model_validate({"start": "00:00", "end": "24:00"})]


class PlanParams(ConfigModel):
    max_plan_age_s: float = Field(default=3600.0, gt=0, description="an older plan is stale: inactive")
    deadband_kwh: float = Field(default=0.5, ge=0, description="closer than this to the target: hold at 0 kW")


class PlanModeConfig(ModeConfigBase):
    type: Literal["plan"]
    periods: Periods = Field(default_factory=_always, description="default: always (the plan decides)")
    params: PlanParams = Field(default_factory=PlanParams)


class PlanMode(PeriodMode[PlanModeConfig]):
    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        plan = state.plan
        if plan is None or state.soe_kwh is None:
            return None
        age = (now - plan.created_at).total_seconds()
        if age > self.config.params.max_plan_age_s or age < -60:  # stale, or from the future (a clock jump)
            return None
        target = plan.target_at(now)
        if target is None:
            return None
        end, soe_target = target
        hours = (end - now).total_seconds() / 3600.0
        if hours <= 0:
            return None
        gap = soe_target - state.soe_kwh
        if abs(gap) <= self.config.params.deadband_kwh:
            power = 0.0
        elif gap > 0:
            power = -gap / self.ctx.charge_efficiency / hours
        else:
            power = -gap / hours
        return Proposal(power, power, power)
