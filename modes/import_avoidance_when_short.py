"""Import avoidance, only while the system is predicted short."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.core.config import ConfigModel
from modes.config import ModeConfigBase, PredictionSettings


class ImportAvoidanceWhenShortParams(ConfigModel):
    short_prediction: PredictionSettings = Field(default_factory=PredictionSettings)


class ImportAvoidanceWhenShortConfig(ModeConfigBase):
    type: Literal["import_avoidance_when_short"]
    params: ImportAvoidanceWhenShortParams = Field(default_factory=ImportAvoidanceWhenShortParams)
