"""Discharge through a peak period down to a target SoE, harder when the system is short."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.config import ConfigModel
from controller.core.schema import Field
from controller.engine.prediction import PredictionSettings, predict
from controller.engine.proposal import INF, Proposal, import_avoidance
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, PeriodMode

FLAT_OUT = Proposal(target=INF, min=INF)
HOLD = Proposal(min=0.0)  # nobody may charge during the peak


class DynamicPeakDischargeParams(ConfigModel):
    target_soe_kwh: float = Field(ge=0, description="SoE to reach by the end of the peak")
    prioritise_residual_load: bool = False
    target_short_periods: bool = Field(default=True, description="discharge harder when the system is short")
    short_prediction: PredictionSettings = Field(default_factory=PredictionSettings)


class DynamicPeakDischargeConfig(ModeConfigBase):
    type: Literal["dynamic_peak_discharge"]
    params: DynamicPeakDischargeParams


class DynamicPeakDischarge(PeriodMode[DynamicPeakDischargeConfig]):
    """Discharge through the peak down to the target SoE; flat out when the system is short (modes.md)."""

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.soe_kwh is None or state.site_power_kw is None:
            return None
        p = self.config.params
        available = state.soe_kwh - p.target_soe_kwh
        if available <= 0:
            return HOLD
        hours = window.hours_left(now)
        if available >= self.ctx.limits.discharge_kw * hours:
            return FLAT_OUT  # it could no longer empty by the peak's end otherwise
        prediction = predict(state, now, p.short_prediction, None) if p.target_short_periods else None
        residual = state.residual_load_kw
        if prediction is None or prediction.long:
            return import_avoidance(residual, allow_more_discharge=False) if p.prioritise_residual_load else HOLD
        if not p.prioritise_residual_load:
            return FLAT_OUT
        reserve = residual * hours
        if available > reserve:
            return FLAT_OUT
        return import_avoidance(residual, allow_more_discharge=False)
