"""Charge to absorb the site's net export so that it does not export, allowing more charge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modes.config import ModeConfigBase, NoParams


class ExportAvoidanceConfig(ModeConfigBase):
    type: Literal["export_avoidance"]
    params: NoParams = Field(default_factory=NoParams)
