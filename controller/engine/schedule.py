"""Where a recurring local-time `Period` falls in real (UTC) time: DST-correct, crossing midnight.

An occurrence starts on a local date at the period's start time and ends at its end time on the same
date, the next date when the end is not after the start (crossing midnight), or at the next local
midnight for "24:00". Converting each end separately to UTC makes a window on a clock-change day
23 or 25 hours long where it should be.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from controller.core.config import DAY_NAMES, Period


@functools.cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class Window:
    """One occurrence of a period, [start, end) in UTC."""

    start: datetime
    end: datetime

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def hours_left(self, now: datetime) -> float:
        return (self.end - now).total_seconds() / 3600.0


def local_to_utc(day: date, clock: time, tz: zoneinfo.ZoneInfo) -> datetime:
    """A local wall-clock time as UTC. A time skipped by a clock change counts with the offset before
    the change (01:30 on the spring-forward day is 02:30 BST); a repeated one is its first occurrence."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def local_midnight(day: date, tz: zoneinfo.ZoneInfo) -> datetime:
    return local_to_utc(day, time(0), tz)


def day_bounds(day: date, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end of local date `day` (23, 24 or 25 hours)."""
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def occurrence(period: Period, day: date) -> Window | None:
    """The occurrence of `period` that starts on local date `day`, if the period runs on that weekday."""
    if DAY_NAMES[day.weekday()] not in period.days:
        return None
    return _occurrence(period.start, period.end, period.timezone, day)


@functools.lru_cache(maxsize=1024)
def _occurrence(start_t: time, end_t: time, tz_name: str, day: date) -> Window | None:
    # Cached: every tick asks about the same few periods on the same few dates. Bounded near that (a site's
    # periods over the few days a tick or a 48-h plan looks at): each new day adds its periods' keys, and
    # 4096 of them, full after months, held 1.8 MiB (measured) for dates long past.
    tz = zone(tz_name)
    start = local_to_utc(day, start_t, tz)
    if end_t == time.max:
        end = local_midnight(day + timedelta(days=1), tz)
    elif end_t <= start_t:
        end = local_to_utc(day + timedelta(days=1), end_t, tz)
    else:
        end = local_to_utc(day, end_t, tz)
    return Window(start, end) if end > start else None


def occurrences(period: Period, now: datetime, days_back: int = 1, days_ahead: int = 0) -> Iterator[Window]:
    """Occurrences starting on the local dates from `days_back` before today to `days_ahead` after, in order."""
    today = now.astimezone(zone(period.timezone)).date()
    for offset in range(-days_back, days_ahead + 1):
        w = occurrence(period, today + timedelta(days=offset))
        if w is not None:
            yield w


def window_at(periods: Iterable[Period], now: datetime) -> Window | None:
    """The first occurrence of any of `periods` covering `now` (yesterday's may cross midnight into today)."""
    for period in periods:
        for w in occurrences(period, now):
            if w.covers(now):
                return w
    return None
