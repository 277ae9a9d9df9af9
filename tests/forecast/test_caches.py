"""The forecasters' module caches hold what a refresh reads and not what the daemon met years ago.

A daemon forecasts every half hour for years: an lru_cache keyed by period start or day fills up with
keys no forecast asks about again, so its bound is memory the daemon keeps. Run here on the shipped set:
a first forecast over the history the daemon reads must fit the caches (else every refresh recomputes),
and a day of refreshes after it must stay within their bounds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from controller.engine.settlement import SP
from controller.forecast import forecasters, series
from controller.forecast.forecasters import HISTORY_DAYS_USED, forecast_site
from controller.forecast.rows import read_history_csv
from controller.forecast.series import History

SHIPPED = Path(__file__).resolve().parents[2] / "simulator/data/demo_history.csv.gz"


def test_a_day_of_refreshes_fits_the_bounded_caches() -> None:
    rows = read_history_csv(SHIPPED)
    end = rows[-1].period_start + SP
    keys, days = series.local_key, forecasters._candidates
    keys.cache_clear()
    days.cache_clear()
    for k in range(0, 48, 8):  # refreshes through a day, each on the history the daemon would read
        now = end - timedelta(days=1) + k * SP
        kept = [r for r in rows if now - timedelta(days=HISTORY_DAYS_USED) <= r.period_start < now]
        forecast_site(History.from_rows(kept), now, horizon=96)
        if k == 0:
            first = (keys.cache_info().currsize, days.cache_info().currsize)
    # The first refresh's keys all fit (no eviction while the working set is being read) ...
    assert first[0] < series.LOCAL_KEYS_CACHED and first[1] < forecasters.CANDIDATE_DAYS_CACHED, first
    # ... and the later ones mostly hit: a refresh half an hour on adds a period or two, not a history.
    assert keys.cache_info().hits > 10 * keys.cache_info().misses
    assert keys.cache_info().maxsize == series.LOCAL_KEYS_CACHED <= 8192
    assert days.cache_info().maxsize == forecasters.CANDIDATE_DAYS_CACHED <= 1024
