"""NIV chase: charge when the imbalance price is low and discharge when it is high, by SoE curves."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from controller.core.config import ConfigModel, TimedRate
from controller.core.schema import Field, field_validator
from controller.engine.prediction import PredictionSettings, predict
from controller.engine.proposal import Proposal, charge_allowing_more, discharge_allowing_more
from controller.engine.rates import first_rate
from controller.engine.schedule import Window
from controller.engine.settlement import SP, current_sp_start
from controller.engine.site_state import SiteState
from modes.base import ModeConfigBase, PeriodMode
from modes.curves import CurvePoint, check_curve, soe_at


class NivPrediction(ConfigModel):
    when_short: PredictionSettings = Field(default_factory=PredictionSettings)
    when_long: PredictionSettings = Field(default_factory=PredictionSettings)


class NivChaseParams(ConfigModel):
    charge_curve: list[CurvePoint]
    discharge_curve: list[CurvePoint]
    curve_shift_long: float = Field(default=0.0, description="p/kWh subtracted from prices when long")
    curve_shift_short: float = Field(default=0.0, description="p/kWh added to prices when short")
    default_pricing: list[TimedRate] = Field(default_factory=list, description="price when there is no prediction")
    prediction: NivPrediction = Field(default_factory=NivPrediction)

    _curves = field_validator("charge_curve", "discharge_curve")(check_curve)


class NivChaseConfig(ModeConfigBase):
    type: Literal["niv_chase"]
    params: NivChaseParams


class NivChase(PeriodMode[NivChaseConfig]):
    """Charge when the (predicted) imbalance price is low, discharge when high, by SoE curves (modes.md)."""

    def propose_in(self, state: SiteState, now: datetime, window: Window) -> Proposal | None:
        if state.soe_kwh is None:
            return None
        p = self.config.params
        prediction = predict(state, now, p.prediction.when_short, p.prediction.when_long)
        shift = 0.0
        if prediction is not None and prediction.price is not None:
            price = prediction.price
            shift = p.curve_shift_short if prediction.short else -p.curve_shift_long
        else:
            default = first_rate(p.default_pricing, now)
            if default is None:
                return None
            price = default
        charge_price = price + self.ctx.import_rate(now) + shift
        discharge_price = price - self.ctx.export_rate(now) + shift
        hours = (current_sp_start(now) + SP - now).total_seconds() / 3600.0
        if hours <= 0:
            return None
        charge_soe = soe_at(p.charge_curve, charge_price)
        if charge_soe is not None and charge_soe - state.soe_kwh > 0:
            energy = (charge_soe - state.soe_kwh) / self.ctx.charge_efficiency
            return charge_allowing_more(energy / hours)
        discharge_soe = soe_at(p.discharge_curve, discharge_price)
        if discharge_soe is not None and discharge_soe - state.soe_kwh < 0:
            return discharge_allowing_more((state.soe_kwh - discharge_soe) / hours)
        return None
