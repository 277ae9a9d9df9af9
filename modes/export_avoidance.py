"""Charge to absorb the site's net export so that it does not export, allowing more charge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.schema import Field
from controller.engine.proposal import Proposal, export_avoidance
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, NoParams, PeriodMode


class ExportAvoidanceConfig(ModeConfigBase):
    type: Literal["export_avoidance"]
    params: NoParams = Field(default_factory=NoParams)


class ExportAvoidance(PeriodMode[ExportAvoidanceConfig]):
    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.site_power_kw is None:
            return None
        return export_avoidance(state.residual_load_kw, allow_more_charge=True)
