"""Discharge to a target SoE by the end of the period, spread evenly, allowing more discharge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.core.config import ConfigModel
from modes.config import ModeConfigBase


class DischargeToSoeParams(ConfigModel):
    soe_kwh: float = Field(ge=0, description="target state of energy at the end of the period")


class DischargeToSoeConfig(ModeConfigBase):
    type: Literal["discharge_to_soe"]
    params: DischargeToSoeParams
