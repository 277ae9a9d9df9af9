"""Settlement periods from local midnight in real time: 48, 46 and 50 period days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from controller.engine.settlement import current_sp_start, periods_in_day, sp_of, sp_start


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ROWS = [
    # (why, day, N, UTC start)
    ("summer SP1 is 23:00Z the day before", date(2026, 6, 3), 1, "2026-06-02T23:00"),
    ("summer SP33 is 16:00 BST", date(2026, 6, 3), 33, "2026-06-03T15:00"),
    ("winter SP1 is midnight", date(2026, 12, 2), 1, "2026-12-02T00:00"),
    ("spring-forward day: SP3 starts 01:00Z (02:00 BST)", date(2026, 3, 29), 3, "2026-03-29T01:00"),
    ("spring-forward day: SP46 is the last", date(2026, 3, 29), 46, "2026-03-29T22:30"),
    ("fall-back day: SP1 is 23:00Z the day before", date(2026, 10, 25), 1, "2026-10-24T23:00"),
    ("fall-back day: SP50 is the last", date(2026, 10, 25), 50, "2026-10-25T23:30"),
]


@pytest.mark.parametrize(("why", "day", "number", "start"), ROWS, ids=[r[0] for r in ROWS])
def test_sp_start_and_back(why: str, day: date, number: int, start: str) -> None:
    assert sp_start(day, number) == Z(start)
    assert sp_of(Z(start)) == (day, number)
    assert current_sp_start(Z(start).replace(minute=Z(start).minute + 29)) == Z(start)


@pytest.mark.parametrize(("day", "count"), [(date(2026, 6, 3), 48), (date(2026, 3, 29), 46),
                                            (date(2026, 10, 25), 50)])
def test_periods_in_day(day: date, count: int) -> None:
    assert periods_in_day(day) == count
    assert sp_of(sp_start(day, count))[1] == count
    assert sp_of(sp_start(day, count + 1)) == (date.fromordinal(day.toordinal() + 1), 1)


def test_fall_back_repeated_hour_is_two_periods() -> None:
    # 01:30 local happens twice on the fall-back day: BST (00:30Z) is SP4, GMT (01:30Z) is SP6.
    assert sp_of(Z("2026-10-25T00:30")) == (date(2026, 10, 25), 4)
    assert sp_of(Z("2026-10-25T01:30")) == (date(2026, 10, 25), 6)
