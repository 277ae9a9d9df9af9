"""Discharge to a target SoE by the end of the period, spread evenly, allowing more discharge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.config import ConfigModel
from controller.core.schema import Field
from controller.engine.proposal import Proposal, discharge_allowing_more
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, PeriodMode


class DischargeToSoeParams(ConfigModel):
    soe_kwh: float = Field(ge=0, description="target state of energy at the end of the period")


class DischargeToSoeConfig(ModeConfigBase):
    type: Literal["discharge_to_soe"]
    params: DischargeToSoeParams


class DischargeToSoe(PeriodMode[DischargeToSoeConfig]):
    """Energy = SoE - target (discharge efficiency 1), spread evenly over the hours left in the period."""

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.soe_kwh is None:
            return None
        energy = state.soe_kwh - self.config.params.soe_kwh
        hours = window.hours_left(now)
        if energy <= 0 or hours <= 0:
            return None
        return discharge_allowing_more(energy / hours)
