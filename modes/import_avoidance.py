"""Discharge to cover the site's net load so that it does not import, allowing more discharge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modes.config import ModeConfigBase, NoParams


class ImportAvoidanceConfig(ModeConfigBase):
    type: Literal["import_avoidance"]
    params: NoParams = Field(default_factory=NoParams)
