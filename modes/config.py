"""What every mode entry of the site file has in common, and settings shared by several modes."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from controller.core.config import ConfigModel, Periods, ProblemList, overlapping_pairs


class NoParams(ConfigModel):
    pass


class PredictionSettings(ConfigModel):
    """When the previous settlement period's data may stand in for the current one (see modes.md)."""

    allow_prediction: bool = False
    time_cutoff_s: float = Field(default=0.0, ge=0, le=1800, description="usable while time into the SP is below")
    volume_cutoff_mwh: float = Field(default=0.0, ge=0, description="usable only if |volume| is at least this")


class ModeConfigBase(ConfigModel):
    type: str
    name: str | None = Field(default=None, description="label in logs and decision records")
    priority: int | None = Field(
        default=None, ge=1, le=1000, description="1 = highest; default: the spec's order of mode types")
    periods: Periods

    @field_validator("params", mode="before", check_fields=False)
    @classmethod
    def _empty_params(cls, v: Any) -> Any:
        return {} if v is None else v

    def problems(self) -> ProblemList:
        for i, j in overlapping_pairs(self.periods):
            yield ("periods", j), f"overlaps periods.{i} of the same mode"
