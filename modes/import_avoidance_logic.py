from __future__ import annotations

from datetime import datetime

from controller.engine.proposal import Proposal, import_avoidance
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import PeriodMode
from modes.import_avoidance import ImportAvoidanceConfig


class ImportAvoidance(PeriodMode[ImportAvoidanceConfig]):
    type = "import_avoidance"

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.site_power_kw is None:
            return None
        return import_avoidance(state.residual_load_kw, allow_more_discharge=True)
