"""Charge along a time-vs-SoE curve so that the battery is full when the peak starts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.core.config import ConfigModel, ProblemList
from modes.config import ModeConfigBase, PredictionSettings


class DynamicPeakApproachParams(ConfigModel):
    to_soe_kwh: float = Field(ge=0, description="SoE to reach before the peak (forced)")
    encourage_to_soe_kwh: float = Field(ge=0, description="SoE to reach before the peak when predicted long")
    assumed_charge_power_kw: float = Field(gt=0)
    force_charge_duration_factor: float = Field(default=1.0, gt=0)
    encourage_charge_duration_factor: float = Field(default=1.0, gt=0)
    charge_cushion_min: float = Field(default=0.0, ge=0, description="reach the target this long before the peak")
    long_prediction: PredictionSettings = Field(default_factory=PredictionSettings)


class DynamicPeakApproachConfig(ModeConfigBase):
    """`periods` are the peak periods the approach prepares for."""

    type: Literal["dynamic_peak_approach"]
    params: DynamicPeakApproachParams

    def problems(self) -> ProblemList:
        yield from super().problems()
        if self.params.encourage_to_soe_kwh < self.params.to_soe_kwh:
            yield ("params", "encourage_to_soe_kwh"), "must be at least to_soe_kwh"
