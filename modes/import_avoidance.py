"""Discharge to cover the site's net load so that it does not import, allowing more discharge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.schema import Field
from controller.engine.proposal import Proposal, import_avoidance
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, NoParams, PeriodMode


class ImportAvoidanceConfig(ModeConfigBase):
    type: Literal["import_avoidance"]
    params: NoParams = Field(default_factory=NoParams)


class ImportAvoidance(PeriodMode[ImportAvoidanceConfig]):
    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.site_power_kw is None:
            return None
        return import_avoidance(state.residual_load_kw, allow_more_discharge=True)
