"""England & Wales bank holidays against the published lists (gov.uk) for 2024-2026 and the one-offs."""

from __future__ import annotations

from datetime import date

import pytest

from controller.forecast.holidays import bank_holidays, day_type, easter_sunday

PUBLISHED = {
    2024: ["2024-01-01", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-08-26", "2024-12-25",
           "2024-12-26"],
    2025: ["2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25", "2025-12-25",
           "2025-12-26"],
    2026: ["2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25",
           "2026-12-28"],  # Boxing Day on a Saturday: substitute Monday 28th
    2022: ["2022-01-03", "2022-04-15", "2022-04-18", "2022-05-02", "2022-06-02", "2022-06-03", "2022-08-29",
           "2022-09-19", "2022-12-26", "2022-12-27"],  # jubilee, state funeral, Christmas on a Sunday
}


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_published_lists(year: int) -> None:
    assert sorted(bank_holidays(year)) == [date.fromisoformat(d) for d in PUBLISHED[year]]


@pytest.mark.parametrize(("year", "easter"), [(2024, "2024-03-31"), (2025, "2025-04-20"), (2026, "2026-04-05"),
                                              (2038, "2038-04-25"), (2285, "2285-03-22")])
def test_easter(year: int, easter: str) -> None:
    assert easter_sunday(year) == date.fromisoformat(easter)


def test_a_bank_holiday_is_a_sunday_to_the_forecasters() -> None:
    assert day_type(date(2026, 5, 25)) == 6
    assert day_type(date(2026, 5, 26)) == 1
