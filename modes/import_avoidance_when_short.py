"""Import avoidance, only while the system is predicted short."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.config import ConfigModel
from controller.core.schema import Field
from controller.engine.prediction import PredictionSettings, predict
from controller.engine.proposal import Proposal, import_avoidance
from controller.engine.schedule import Window
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, PeriodMode


class ImportAvoidanceWhenShortParams(ConfigModel):
    short_prediction: PredictionSettings = Field(default_factory=PredictionSettings)


class ImportAvoidanceWhenShortConfig(ModeConfigBase):
    type: Literal["import_avoidance_when_short"]
    params: ImportAvoidanceWhenShortParams = Field(default_factory=ImportAvoidanceWhenShortParams)


class ImportAvoidanceWhenShort(PeriodMode[ImportAvoidanceWhenShortConfig]):
    """Import avoidance only while a prediction says the system is short; "long" predictions are never used."""

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.site_power_kw is None:
            return None
        prediction = predict(state, now, self.config.params.short_prediction, None)
        if prediction is None or not prediction.short:
            return None
        return import_avoidance(state.residual_load_kw, allow_more_discharge=True)
