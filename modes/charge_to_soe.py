"""Charge to a target SoE by the end of the period, spread evenly, allowing more charge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.config import ConfigModel
from controller.core.schema import Field
from controller.engine.proposal import Proposal, charge_allowing_more
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, PeriodMode


class ChargeToSoeParams(ConfigModel):
    soe_kwh: float = Field(ge=0, description="target state of energy at the end of the period")


class ChargeToSoeConfig(ModeConfigBase):
    type: Literal["charge_to_soe"]
    params: ChargeToSoeParams


class ChargeToSoe(PeriodMode[ChargeToSoeConfig]):
    """Energy needed = (target - SoE) / efficiency, spread evenly over the hours left in the period."""

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.soe_kwh is None:
            return None
        energy = (self.config.params.soe_kwh - state.soe_kwh) / self.ctx.charge_efficiency
        hours = window.hours_left(now)
        if energy <= 0 or hours <= 0:
            return None
        return charge_allowing_more(energy / hours)
