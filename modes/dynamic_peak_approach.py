"""Charge along a time-vs-SoE curve so that the battery is full when the peak starts."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from controller.core.config import ConfigModel, ProblemList
from controller.core.schema import Field
from controller.engine.prediction import PredictionSettings, predict
from controller.engine.proposal import Proposal, charge_allowing_more
from controller.engine.schedule import Window, occurrences
from controller.engine.settlement import SP, current_sp_start
from controller.engine.site_state import SiteState
from modes.base import Mode, ModeConfigBase, ModeContext


class DynamicPeakApproachParams(ConfigModel):
    to_soe_kwh: float = Field(ge=0, description="SoE to reach before the peak (forced)")
    encourage_to_soe_kwh: float = Field(ge=0, description="SoE to reach before the peak when predicted long")
    assumed_charge_power_kw: float = Field(gt=0)
    force_charge_duration_factor: float = Field(default=1.0, gt=0)
    encourage_charge_duration_factor: float = Field(default=1.0, gt=0)
    charge_cushion_min: float = Field(default=0.0, ge=0, description="reach the target this long before the peak")
    long_prediction: PredictionSettings = Field(default_factory=PredictionSettings)


class DynamicPeakApproachConfig(ModeConfigBase):
    """`periods` are the peak periods the approach prepares for."""

    type: Literal["dynamic_peak_approach"]
    params: DynamicPeakApproachParams

    def problems(self) -> ProblemList:
        yield from super().problems()
        if self.params.encourage_to_soe_kwh < self.params.to_soe_kwh:
            yield ("params", "encourage_to_soe_kwh"), "must be at least to_soe_kwh"


class DynamicPeakApproach(Mode[DynamicPeakApproachConfig]):
    """Charge along a time-vs-SoE curve that reaches the target `cushion` before the peak (modes.md).

    The curve rises linearly from 0, starting `(to_soe / assumed power / efficiency) x factor` hours
    before the target time, and stays flat at the target until the peak ends. "Encourage" target and
    factor apply when the system is predicted long, "force" ones otherwise. Peaks may cross midnight:
    occurrences are found in real time, so a ramp spanning midnight (or a clock change) is one line.
    """

    def __init__(self, config: DynamicPeakApproachConfig, ctx: ModeContext, name: str) -> None:
        super().__init__(config, ctx, name)
        p = config.params
        longest_h = max(self._ramp_h(p.to_soe_kwh, p.force_charge_duration_factor),
                        self._ramp_h(p.encourage_to_soe_kwh, p.encourage_charge_duration_factor))
        self._days_ahead = math.ceil((longest_h + p.charge_cushion_min / 60) / 24) + 1

    def _ramp_h(self, to_soe: float, factor: float) -> float:
        return to_soe / self.config.params.assumed_charge_power_kw / self.ctx.charge_efficiency * factor

    def curve_kwh(self, peak: Window, to_soe: float, factor: float, t: datetime) -> float:
        reach = peak.start - timedelta(minutes=self.config.params.charge_cushion_min)
        ramp_s = self._ramp_h(to_soe, factor) * 3600
        start = reach - timedelta(seconds=ramp_s)
        if t < start or t > peak.end:
            return 0.0
        if t >= reach or ramp_s <= 0:
            return to_soe
        return to_soe * (t - start).total_seconds() / ramp_s

    def propose(self, state: SiteState, now: datetime) -> Proposal | None:
        if state.soe_kwh is None:
            return None
        p = self.config.params
        prediction = predict(state, now, None, p.long_prediction)
        if prediction is not None and prediction.long:
            to_soe, factor = p.encourage_to_soe_kwh, p.encourage_charge_duration_factor
        else:
            to_soe, factor = p.to_soe_kwh, p.force_charge_duration_factor
        lead = timedelta(hours=self._ramp_h(to_soe, factor), minutes=p.charge_cushion_min)
        peaks = [w for period in self.config.periods for w in occurrences(period, now, 1, self._days_ahead)
                 if w.start - lead <= now < w.end]
        if not peaks:
            return None
        peak = min(peaks, key=lambda w: w.end)
        sp_end = current_sp_start(now) + SP
        hours = (sp_end - now).total_seconds() / 3600.0
        need = self.curve_kwh(peak, to_soe, factor, min(sp_end, peak.end)) - state.soe_kwh
        if need <= 0 or hours <= 0:
            return None
        return charge_allowing_more(need / hours / self.ctx.charge_efficiency)
