"""Discharge through a peak period down to a target SoE, harder when the system is short."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.core.config import ConfigModel
from modes.config import ModeConfigBase, PredictionSettings


class DynamicPeakDischargeParams(ConfigModel):
    target_soe_kwh: float = Field(ge=0, description="SoE to reach by the end of the peak")
    prioritise_residual_load: bool = False
    target_short_periods: bool = Field(default=True, description="discharge harder when the system is short")
    short_prediction: PredictionSettings = Field(default_factory=PredictionSettings)


class DynamicPeakDischargeConfig(ModeConfigBase):
    type: Literal["dynamic_peak_discharge"]
    params: DynamicPeakDischargeParams
