from __future__ import annotations

from datetime import datetime

from controller.engine.prediction import predict
from controller.engine.proposal import Proposal, import_avoidance
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import PeriodMode
from modes.import_avoidance_when_short import ImportAvoidanceWhenShortConfig


class ImportAvoidanceWhenShort(PeriodMode[ImportAvoidanceWhenShortConfig]):
    """Import avoidance only while a prediction says the system is short; "long" predictions are never used."""

    type = "import_avoidance_when_short"

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.site_power_kw is None:
            return None
        prediction = predict(state, now, self.config.params.short_prediction, None)
        if prediction is None or not prediction.short:
            return None
        return import_avoidance(state.residual_load_kw, allow_more_discharge=True)
