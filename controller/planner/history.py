"""The spec's history CSV read as what the planner needs: the net load with the battery removed, the imbalance
price and volume and the SoE, per settlement period.

One reader for the file (`controller.forecast.rows`: gzip, comments, `FILE:LINE: message` errors, the
net-load formula); this module only narrows its rows to the planner's view and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controller.forecast.rows import HistoryFileError, PeriodRow, parse_lines, read_history_csv
from controller.forecast.series import History


class HistoryError(ValueError):
    """A history file that cannot be read: the message names the file and line."""


@dataclass(frozen=True, slots=True)
class HistoryRow:
    start: datetime  # UTC
    net_load_kw: float | None  # mean kW over the half-hour, battery removed (+ = import)
    price_p_per_kwh: float | None
    volume_mwh: float | None
    soe_end_kwh: float | None

    @classmethod
    def of(cls, row: PeriodRow) -> HistoryRow:
        net = row.net_load_kwh()
        return cls(row.period_start, None if net is None else 2.0 * net, row.imbalance_price_p_per_kwh,
                   row.imbalance_volume_mwh, row.soe_end_kwh)

    def period(self) -> PeriodRow:
        """Back to a history row (the net load as import or export, no battery), for the forecasters."""
        kwh = None if self.net_load_kw is None else self.net_load_kw / 2.0
        return PeriodRow(self.start, None if kwh is None else max(kwh, 0.0), None if kwh is None else max(-kwh, 0.0),
                         0.0, 0.0, self.soe_end_kwh, None, self.price_p_per_kwh, self.volume_mwh)


def forecast_history(rows: Sequence[HistoryRow]) -> History:
    return History.from_rows(r.period() for r in rows)


def parse_history(lines: Iterable[str], name: str = "history") -> list[HistoryRow]:
    rows: list[HistoryRow] = []
    try:
        for _, item in parse_lines(lines, name):
            if isinstance(item, HistoryFileError):
                raise item
            rows.append(HistoryRow.of(item))
    except HistoryFileError as exc:
        raise HistoryError(str(exc)) from None
    rows.sort(key=lambda r: r.start)
    return rows


def read_history(path: Path) -> list[HistoryRow]:
    try:
        return [HistoryRow.of(r) for r in read_history_csv(path)]
    except HistoryFileError as exc:
        raise HistoryError(str(exc)) from None
