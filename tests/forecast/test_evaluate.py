"""Walk-forward evaluation: hand-computable scores, and no peeking at the day being forecast."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from controller.core.forecast import NET_LOAD
from controller.forecast.evaluate import evaluate, issue_times
from controller.forecast.series import History
from tests.forecast.helpers import rows_from


def test_constant_history_scores_zero_error() -> None:
    history = History.from_rows(rows_from(lambda t: 50.0, date(2026, 6, 1), 35))
    ev = evaluate(history, date(2026, 7, 1), date(2026, 7, 2), every=12).as_json()
    s = ev["quantities"][NET_LOAD]
    assert s["similar_day"]["mae"] == 0.0 and s["persistence_week"]["mae"] == 0.0
    assert s["similar_day"]["coverage_80"] == 1.0
    assert s["similar_day"]["skill"] is None  # persistence is perfect: no skill to measure against
    assert ev["days"] == 2 and ev["forecasts"] == 8


def test_a_step_the_day_it_happens_is_not_known_in_advance() -> None:
    # 50 kW until 1 July, 80 kW from then on. A forecast made at midnight of 1 July knows nothing of
    # the step: persistence (last week: 50) is off by exactly 30 for every period of that day.
    def fn(t: datetime) -> float:
        return 80.0 if t.date() >= date(2026, 7, 1) else 50.0

    history = History.from_rows(rows_from(fn, date(2026, 6, 1), 32))
    ev = evaluate(history, date(2026, 7, 1), date(2026, 7, 1), every=48, horizon=48).as_json()
    s = ev["quantities"][NET_LOAD]
    assert s["persistence_week"]["mae"] == pytest.approx(30.0)
    assert s["persistence_week"]["rmse"] == pytest.approx(30.0)
    assert s["similar_day"]["mae"] == pytest.approx(30.0)  # no nowcast across midnight's flat night
    assert s["similar_day"]["n"] == 48


def test_issue_times_follow_the_46_period_day() -> None:
    times = issue_times(date(2026, 3, 29), date(2026, 3, 29), every=1)
    assert len(times) == 46
