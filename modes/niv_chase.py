"""NIV chase: charge when the imbalance price is low and discharge when it is high, by SoE curves."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator

from controller.core.config import ConfigModel, TimedRate
from modes.config import ModeConfigBase, PredictionSettings


class CurvePoint(ConfigModel):
    price: float = Field(description="p/kWh")
    soe_kwh: float = Field(ge=0)


def _check_curve(points: list[CurvePoint]) -> list[CurvePoint]:
    if len(points) < 2:
        raise ValueError("a curve needs at least two points")
    for a, b in itertools.pairwise(points):
        if b.price <= a.price:
            raise ValueError("curve prices must strictly increase from one point to the next")
    return points


class NivPrediction(ConfigModel):
    when_short: PredictionSettings = Field(default_factory=PredictionSettings)
    when_long: PredictionSettings = Field(default_factory=PredictionSettings)


class NivChaseParams(ConfigModel):
    charge_curve: list[CurvePoint]
    discharge_curve: list[CurvePoint]
    curve_shift_long: float = Field(default=0.0, description="p/kWh subtracted from prices when long")
    curve_shift_short: float = Field(default=0.0, description="p/kWh added to prices when short")
    default_pricing: list[TimedRate] = Field(default_factory=list, description="price when there is no prediction")
    prediction: NivPrediction = Field(default_factory=NivPrediction)

    _curves = field_validator("charge_curve", "discharge_curve")(_check_curve)


class NivChaseConfig(ModeConfigBase):
    type: Literal["niv_chase"]
    params: NivChaseParams
