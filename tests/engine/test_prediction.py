"""The shared imbalance-prediction rules, one row per behaviour (modes.md), including the edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.engine.prediction import PredictionSettings, predict
from controller.engine.site_state import MarketValue, SiteState

SP = datetime(2026, 6, 3, 15, 0, tzinfo=UTC)  # SP33 of 3 June (16:00 BST)
PREV = SP - timedelta(minutes=30)
SHORT = PredictionSettings(allow_prediction=True, time_cutoff_s=600, volume_cutoff_mwh=50)
LONG_OFF = PredictionSettings(allow_prediction=False, time_cutoff_s=600, volume_cutoff_mwh=0)
LONG_ON = PredictionSettings(allow_prediction=True, time_cutoff_s=900, volume_cutoff_mwh=100)


def state(volume: float | None, vol_sp: datetime, price: float | None = 9.5, price_sp: datetime | None = None
          ) -> SiteState:
    return SiteState(
        site_power_kw=0.0, soe_kwh=500.0,
        imbalance_volume=None if volume is None else MarketValue(volume, vol_sp),
        imbalance_price=None if price is None else MarketValue(price, price_sp or vol_sp))


ROWS = [
    # (why, state, seconds into SP, short settings, long settings, expected (volume, price, previous) or None)
    ("no market data", state(None, SP), 900, SHORT, LONG_ON, None),
    ("current SP before 10 minutes: nothing", state(120, SP), 599, SHORT, LONG_ON, None),
    ("current SP at exactly 10 minutes", state(120, SP), 600, SHORT, LONG_ON, (120, 9.5, False)),
    ("current SP later: settings do not apply", state(-10, SP), 1500, None, LONG_OFF, (-10, 9.5, False)),
    ("previous SP short, early, big enough", state(120, PREV), 300, SHORT, LONG_OFF, (120, 9.5, True)),
    ("previous SP short at the time cut-off: nothing", state(120, PREV), 600, SHORT, LONG_OFF, None),
    ("previous SP short just under the time cut-off", state(120, PREV), 599, SHORT, LONG_OFF, (120, 9.5, True)),
    ("previous SP short below the volume cut-off", state(49.9, PREV), 60, SHORT, LONG_OFF, None),
    ("previous SP short exactly at the volume cut-off", state(50, PREV), 60, SHORT, LONG_OFF, (50, 9.5, True)),
    ("previous SP long, long not allowed", state(-200, PREV), 60, SHORT, LONG_OFF, None),
    ("previous SP long, long allowed", state(-200, PREV), 60, SHORT, LONG_ON, (-200, 9.5, True)),
    ("previous SP long uses the long cut-offs (volume)", state(-99, PREV), 60, SHORT, LONG_ON, None),
    ("previous SP long uses the long cut-offs (time)", state(-200, PREV), 900, SHORT, LONG_ON, None),
    ("zero volume counts as long", state(0, PREV), 60, SHORT, LONG_OFF, None),
    ("previous SP short but the mode has no short settings", state(120, PREV), 60, None, LONG_ON, None),
    ("two SPs old: nothing", state(120, PREV - timedelta(minutes=30)), 60, SHORT, LONG_ON, None),
    ("a future SP: nothing", state(120, SP + timedelta(minutes=30)), 900, SHORT, LONG_ON, None),
    ("price for another SP is not used", state(120, SP, 9.5, PREV), 900, SHORT, LONG_ON, (120, None, False)),
]


@pytest.mark.parametrize(("why", "st", "into_s", "short", "long", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_predict(why: str, st: SiteState, into_s: float, short: PredictionSettings | None,
                 long: PredictionSettings | None, expected: tuple[float, float | None, bool] | None) -> None:
    p = predict(st, SP + timedelta(seconds=into_s), short, long)
    if expected is None:
        assert p is None
    else:
        assert p is not None
        assert (p.volume_mwh, p.price, p.from_previous_sp) == expected
        assert p.short == (expected[0] > 0)
