"""England & Wales bank holidays, computed: the forecasters treat them like Sundays.

The statutory rules (Good Friday, Easter Monday, the first and last Mondays of May, the last Monday
of August, Christmas and Boxing Day and New Year's Day with their weekday substitutes) plus the
one-off changes proclaimed since 2020, so no network and no yearly table update is needed for the
usual years; a new one-off holiday has to be added to `_ONE_OFF`.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta

# Proclaimed changes: (added, removed). 2020: early May moved to VE day; 2022: spring holiday moved
# to 2 June plus the Platinum Jubilee and the State Funeral; 2023: the Coronation.
_ONE_OFF_ADDED = frozenset({date(2020, 5, 8), date(2022, 6, 2), date(2022, 6, 3), date(2022, 9, 19),
                            date(2023, 5, 8)})
_ONE_OFF_REMOVED = frozenset({date(2020, 5, 4), date(2022, 5, 30)})


def easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _first_monday(year: int, month: int) -> date:
    d = date(year, month, 1)
    return d + timedelta(days=(7 - d.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    d = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return d - timedelta(days=d.weekday())


@functools.cache
def bank_holidays(year: int) -> frozenset[date]:
    easter = easter_sunday(year)
    days = {easter - timedelta(days=2), easter + timedelta(days=1), _first_monday(year, 5),
            _last_monday(year, 5), _last_monday(year, 8)}
    new_year = date(year, 1, 1)
    days.add(new_year + timedelta(days={5: 2, 6: 1}.get(new_year.weekday(), 0)))
    christmas, boxing = date(year, 12, 25), date(year, 12, 26)
    # Substitutes: a holiday on a weekend moves to the next weekday not already a holiday.
    if christmas.weekday() == 5:  # Sat: Christmas -> Mon 27, Boxing (Sun) -> Tue 28
        days |= {date(year, 12, 27), date(year, 12, 28)}
    elif christmas.weekday() == 6:  # Sun: Boxing Mon 26 stays, Christmas -> Tue 27
        days |= {boxing, date(year, 12, 27)}
    elif christmas.weekday() == 4:  # Fri: Boxing (Sat) -> Mon 28
        days |= {christmas, date(year, 12, 28)}
    else:
        days |= {christmas, boxing}
    days -= _ONE_OFF_REMOVED
    days |= {d for d in _ONE_OFF_ADDED if d.year == year}
    return frozenset(days)


def is_bank_holiday(day: date) -> bool:
    return day in bank_holidays(day.year)


def day_type(day: date) -> int:
    """0..6 = Monday..Sunday, a bank holiday counting as a Sunday (shops shut, people at home)."""
    return 6 if is_bank_holiday(day) else day.weekday()
