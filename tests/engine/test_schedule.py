"""Periods in real time: start inclusive, end exclusive, named days, midnight crossing, DST change days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.core.config import Period
from controller.engine.schedule import window_at


def per(start: str, end: str, days: object = "all", tz: str = "Europe/London") -> Period:
    return Period.model_validate({"start": start, "end": end, "days": days, "timezone": tz})


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ROWS = [
    # (why, period, now UTC, expected window start UTC or None, hours left)
    ("summer: 16:00 BST is 15:00Z, inclusive", per("16:00", "19:00"), "2026-06-03T15:00", "2026-06-03T15:00", 3.0),
    ("one second before the start", per("16:00", "19:00"), "2026-06-03T14:59:59", None, None),
    ("end is exclusive", per("16:00", "19:00"), "2026-06-03T18:00", None, None),
    ("winter: 16:00 GMT is 16:00Z", per("16:00", "19:00"), "2026-12-02T16:30", "2026-12-02T16:00", 2.5),
    ("weekdays: not on a Saturday", per("16:00", "19:00", "weekdays"), "2026-06-06T15:30", None, None),
    ("weekends: on a Sunday", per("16:00", "19:00", "weekends"), "2026-06-07T15:30", "2026-06-07T15:00", 2.5),
    ("named days: friday", per("16:00", "19:00", ["mon", "friday"]), "2026-06-05T15:30", "2026-06-05T15:00", 2.5),
    ("named days: not thursday", per("16:00", "19:00", ["mon", "friday"]), "2026-06-04T15:30", None, None),
    ("crossing midnight: Friday 23:00 local", per("22:00", "06:00", "weekdays"), "2026-06-05T22:00",
     "2026-06-05T21:00", 7.0),
    ("crossing midnight: Saturday 05:00 belongs to Friday's window", per("22:00", "06:00", "weekdays"),
     "2026-06-06T04:00", "2026-06-05T21:00", 1.0),
    ("crossing midnight: Monday 05:00 belongs to Sunday (not a weekday)", per("22:00", "06:00", "weekdays"),
     "2026-06-08T04:00", None, None),
    ("crossing midnight: Monday 23:00 local", per("22:00", "06:00", "weekdays"), "2026-06-08T22:00",
     "2026-06-08T21:00", 7.0),
    ("24:00 on the spring-forward day lasts 23 h", per("00:00", "24:00"), "2026-03-29T00:00", "2026-03-29T00:00",
     23.0),
    ("24:00 on the fall-back day lasts 25 h", per("00:00", "24:00"), "2026-10-24T23:00", "2026-10-24T23:00", 25.0),
    ("spring forward: 00:30 GMT to 03:00 BST is 1.5 h", per("00:30", "03:00"), "2026-03-29T00:30",
     "2026-03-29T00:30", 1.5),
    ("fall back: 00:00 BST to 03:00 GMT is 4 h", per("00:00", "03:00"), "2026-10-24T23:00", "2026-10-24T23:00", 4.0),
    ("fall back: hours left counted in real time", per("00:00", "03:00"), "2026-10-25T01:30", "2026-10-24T23:00",
     1.5),
    ("crossing midnight into spring forward: 22:00 GMT to 06:00 BST is 7 h", per("22:00", "06:00"),
     "2026-03-28T22:00", "2026-03-28T22:00", 7.0),
    ("crossing midnight into fall back: 22:00 BST to 06:00 GMT is 9 h", per("22:00", "06:00"),
     "2026-10-24T21:00", "2026-10-24T21:00", 9.0),
    ("another timezone: 09:00 in New York is 13:00Z in June", per("09:00", "17:00", tz="America/New_York"),
     "2026-06-03T13:00", "2026-06-03T13:00", 8.0),
    ("24:00 end with a late start", per("23:30", "24:00"), "2026-06-03T22:45", "2026-06-03T22:30", 0.25),
    ("a start skipped by spring forward counts with the old offset: 01:30 GMT = 02:30 BST",
     per("01:30", "03:00"), "2026-03-29T01:30", "2026-03-29T01:30", 0.5),
    ("a start repeated by fall back is its first occurrence (BST)", per("01:30", "03:00"), "2026-10-25T00:30",
     "2026-10-25T00:30", 2.5),
]


@pytest.mark.parametrize(("why", "period", "now", "start", "hours"), ROWS, ids=[r[0] for r in ROWS])
def test_window(why: str, period: Period, now: str, start: str | None, hours: float | None) -> None:
    w = window_at([period], Z(now))
    if start is None:
        assert w is None
        return
    assert w is not None
    assert w.start == Z(start)
    assert w.hours_left(Z(now)) == pytest.approx(hours)
