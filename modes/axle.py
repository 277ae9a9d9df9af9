"""Axle Energy dispatch: the first schedule step covering now decides."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.core.config import Period, Periods
from modes.config import ModeConfigBase, NoParams


def _always() -> list[Period]:
    return [Period.model_validate({"start": "00:00", "end": "24:00"})]


class AxleModeConfig(ModeConfigBase):
    type: Literal["axle"]
    periods: Periods = Field(default_factory=_always, description="default: always (Axle's schedule decides)")
    params: NoParams = Field(default_factory=NoParams)
