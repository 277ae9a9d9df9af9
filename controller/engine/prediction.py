"""The shared imbalance-prediction rules (modes.md): which market data may stand for the current SP.

- data for the current SP: trusted from 10 minutes into the SP; before that, no prediction;
- data for the previous SP: a prediction early in the current SP, by direction (short if its volume is
  positive), only where that direction's settings allow it, while the time into the SP is below the
  time cut-off and the volume's magnitude is at least the volume cut-off;
- anything else (older, or for a future SP): no prediction.
The direction comes from the volume; the price counts only when it is for the same SP as the volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.core.config import ConfigModel
from controller.core.schema import Field
from controller.engine.settlement import SP, current_sp_start
from controller.engine.site_state import SiteState

CURRENT_SP_TRUSTED_AFTER_S = 600.0


class PredictionSettings(ConfigModel):
    """When the previous settlement period's data may stand in for the current one (see modes.md)."""

    allow_prediction: bool = False
    time_cutoff_s: float = Field(default=0.0, ge=0, le=1800, description="usable while time into the SP is below")
    volume_cutoff_mwh: float = Field(default=0.0, ge=0, description="usable only if |volume| is at least this")


@dataclass(frozen=True, slots=True)
class Prediction:
    volume_mwh: float
    price: float | None  # p/kWh, None when the price is not for the same SP as the volume
    from_previous_sp: bool

    @property
    def short(self) -> bool:
        return self.volume_mwh > 0

    @property
    def long(self) -> bool:
        return not self.short


def predict(state: SiteState, now: datetime, when_short: PredictionSettings | None,
            when_long: PredictionSettings | None) -> Prediction | None:
    volume = state.imbalance_volume
    if volume is None:
        return None
    current = current_sp_start(now)
    into_s = (now - current).total_seconds()
    price = state.imbalance_price
    same_sp_price = price.value if price is not None and price.settlement_period == volume.settlement_period else None
    if volume.settlement_period == current:
        if into_s < CURRENT_SP_TRUSTED_AFTER_S:
            return None
        return Prediction(volume.value, same_sp_price, from_previous_sp=False)
    if volume.settlement_period == current - SP:
        settings = when_short if volume.value > 0 else when_long
        if settings is None or not settings.allow_prediction:
            return None
        if into_s >= settings.time_cutoff_s or abs(volume.value) < settings.volume_cutoff_mwh:
            return None
        return Prediction(volume.value, same_sp_price, from_previous_sp=True)
    return None
