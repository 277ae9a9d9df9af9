"""GB settlement periods: half hours numbered from 1 at local (Europe/London) midnight.

SP N of a date starts at local midnight + (N-1) x 30 min, counted in real time from that midnight, so
a clock-change day has 46 or 50 periods.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta

from controller.engine.schedule import local_midnight, zone

SP_S = 1800
SP = timedelta(seconds=SP_S)
GB_TIMEZONE = "Europe/London"


@functools.lru_cache(maxsize=64)
def gb_midnight(day: date) -> datetime:
    return local_midnight(day, zone(GB_TIMEZONE))


def sp_start(day: date, number: int) -> datetime:
    """UTC start of settlement period `number` (1-based) of local date `day`."""
    return gb_midnight(day) + (number - 1) * SP


def sp_of(now: datetime) -> tuple[date, int]:
    """The local date and number of the settlement period containing `now`."""
    day = now.astimezone(zone(GB_TIMEZONE)).date()
    seconds = (now - gb_midnight(day)).total_seconds()
    return day, int(seconds // SP_S) + 1


def current_sp_start(now: datetime) -> datetime:
    day, number = sp_of(now)
    return sp_start(day, number)


def periods_in_day(day: date) -> int:
    tz = zone(GB_TIMEZONE)
    length = local_midnight(day + timedelta(days=1), tz) - local_midnight(day, tz)
    return int(length.total_seconds() // SP_S)


def today_gb(now: datetime) -> date:
    return now.astimezone(zone(GB_TIMEZONE)).date()


def as_utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)
