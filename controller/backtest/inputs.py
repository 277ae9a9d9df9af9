"""The recorded inputs of a backtest, read strictly: every problem is one line naming the file and line.

Market CSV: `#` comment lines, then a header with `date` (the SP's GB date, YYYY-MM-DD, as Modo's API answers
it), `settlement_period`, `system_price` (£/MWh) and `niv` (MWh, + = system short); every SP of the backtest
day must be there (`simulator/data/backtest_market.csv`). A file without the `date` column (the simulator's
repeating day, `simulator/data/modo_day.csv`, is one) is refused: nothing in it shows which day its prices
are, and the backtest's value is only as true as its prices are the day's.

Load and solar CSVs: `time,kw` (kW >= 0). `time` is a local clock time `HH:MM[:SS]` on the backtest day, in
the site's timezone (`24:00` = the next midnight), or an ISO 8601 time with a UTC offset. Values are
interpolated linearly; the series must span the whole day.

Axle schedule (JSON): Axle's own answer, `{"schedule_steps": [{"start_timestamp", "end_timestamp", "action",
"allow_deviation"}]}`, times ISO 8601 with a UTC offset.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from controller.core.clock import parse_utc
from controller.engine.schedule import day_bounds, local_to_utc
from controller.engine.settlement import SP, current_sp_start, periods_in_day, sp_start
from controller.engine.site_state import AxleStep

MARKET_COLUMNS = ("settlement_period", "system_price", "niv")
DATE_COLUMN = "date"
SERIES_COLUMNS = ("time", "kw")


class InputError(ValueError):
    """A bad input file; str() is the one line to print."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, str]


def _rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], Iterator[Row]]:
    """The header's column names (checked now: it must have every required column), and the non-comment CSV
    rows after it with their 1-based line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise InputError(f"{path}: no header (expected columns {', '.join(required)})")
    header_line, header = numbered[0]
    names = [c.strip().lower() for c in next(csv.reader([header]))]
    missing = [c for c in required if c not in names]
    if missing:
        raise InputError(f"{path}:{header_line}: missing column(s) {', '.join(missing)} (have: {', '.join(names)})")

    def rows() -> Iterator[Row]:
        for n, line in numbered[1:]:
            cells = next(csv.reader([line]))
            if len(cells) != len(names):
                raise InputError(f"{path}:{n}: expected {len(names)} cells, got {len(cells)}")
            yield Row(n, {k: v.strip() for k, v in zip(names, cells, strict=True)})

    return names, rows()


def _float(path: Path, row: Row, column: str) -> float:
    text = row.values[column]
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path}:{row.line}: {column}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{path}:{row.line}: {column}: not finite: {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Settlement:
    """One settlement period's outturn: UTC start, system price £/MWh, NIV MWh (+ = short)."""

    start: datetime
    system_price: float
    niv: float

    @property
    def price_p_per_kwh(self) -> float:
        return self.system_price / 10  # £/MWh -> p/kWh, as the Modo client converts



def periods_between(start: datetime, end: datetime) -> list[datetime]:
    """UTC starts of every SP overlapping [start, end)."""
    out = []
    t = current_sp_start(start)
    while t < end:
        out.append(t)
        t += SP
    return out


def read_market(path: Path, day: date, tz: ZoneInfo) -> list[Settlement]:
    """The SPs of the backtest day (local `day` in `tz`), in time order. Raises InputError."""
    names, rows = _rows(path, MARKET_COLUMNS)
    if DATE_COLUMN not in names:
        raise InputError(f"{path}: no {DATE_COLUMN} column, so nothing shows its prices are {day}'s: give each row "
                         f"its GB date (YYYY-MM-DD, as Modo answers), like simulator/data/backtest_market.csv")
    by_start: dict[datetime, Settlement] = {}
    labels: dict[datetime, str] = {}
    for row in rows:
        text = row.values["settlement_period"]
        try:
            number = int(text)
        except ValueError:
            raise InputError(f"{path}:{row.line}: settlement_period: not an integer: {text!r}") from None
        try:
            sp_day = date.fromisoformat(row.values[DATE_COLUMN])
        except ValueError:
            raise InputError(f"{path}:{row.line}: date: not a YYYY-MM-DD date: {row.values[DATE_COLUMN]!r}") from None
        # A number past the day's last SP would land on the next day's periods, where it would be taken as theirs.
        if not 1 <= number <= periods_in_day(sp_day):
            raise InputError(f"{path}:{row.line}: settlement_period: {number} is not in 1..{periods_in_day(sp_day)} "
                             f"(the SPs of {sp_day})")
        start = sp_start(sp_day, number)
        if start in by_start:
            raise InputError(f"{path}:{row.line}: settlement period {sp_day} #{number} given twice")
        by_start[start] = Settlement(start, _float(path, row, "system_price"), _float(path, row, "niv"))
        labels[start] = f"{sp_day} SP {number}"
    begin, end = day_bounds(day, tz)
    needed = periods_between(begin, end)
    missing = [t for t in needed if t not in by_start]
    if missing:
        shown = ", ".join(t.isoformat() for t in missing[:3]) + (", ..." if len(missing) > 3 else "")
        span = (f"the file has {labels[min(labels)]} to {labels[max(labels)]}" if labels
                else "the file has no settlement periods")
        raise InputError(f"{path}: does not cover {day}: {len(missing)} of its {len(needed)} settlement periods "
                         f"missing (UTC starts {shown}); {span}")
    return [by_start[t] for t in needed]


def _series_time(path: Path, row: Row, day: date, tz: ZoneInfo) -> float:
    text = row.values["time"]
    if "T" in text or " " in text or "-" in text:
        try:
            return parse_utc(text).timestamp()
        except ValueError as exc:
            raise InputError(f"{path}:{row.line}: time: {exc}") from None
    if text in ("24:00", "24:00:00"):
        return local_to_utc(day + timedelta(days=1), time(0), tz).timestamp()
    try:
        clock = time.fromisoformat(text)
    except ValueError:
        raise InputError(f"{path}:{row.line}: time: expected HH:MM[:SS] or an ISO 8601 time: {text!r}") from None
    return local_to_utc(day, clock, tz).timestamp()


@dataclass(frozen=True)
class Series:
    """A kW series over time (epoch seconds), linearly interpolated."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def at(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.values[0]
        if i == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def read_series(path: Path, day: date, tz: ZoneInfo) -> Series:
    """A `time,kw` series that spans local date `day` in `tz`. Raises InputError."""
    times: list[float] = []
    values: list[float] = []
    _, rows = _rows(path, SERIES_COLUMNS)
    for row in rows:
        t = _series_time(path, row, day, tz)
        if times and t <= times[-1]:
            raise InputError(f"{path}:{row.line}: time: {row.values['time']} is not after the row before")
        kw = _float(path, row, "kw")
        if kw < 0:
            raise InputError(f"{path}:{row.line}: kw: must be >= 0, got {kw:g}")
        times.append(t)
        values.append(kw)
    begin, end = day_bounds(day, tz)
    if not times or times[0] > begin.timestamp() or times[-1] < end.timestamp():
        span = "no rows" if not times else (f"{datetime.fromtimestamp(times[0], tz).isoformat()} to "
                                            f"{datetime.fromtimestamp(times[-1], tz).isoformat()}")
        raise InputError(f"{path}: does not cover {day} ({begin.astimezone(tz).isoformat()} to "
                         f"{end.astimezone(tz).isoformat()}): it spans {span}")
    return Series(tuple(times), tuple(values))


def _axle_time(path: Path, where: str, value: Any) -> datetime:
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise InputError(f"{path}: {where}: {exc}") from None


def read_axle(path: Path) -> tuple[AxleStep, ...]:
    """An Axle battery schedule as the API answers it, steps in start order. Raises InputError."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    raw = body.get("schedule_steps") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        raise InputError(f"{path}: expected {{\"schedule_steps\": [...]}}")
    steps = []
    for i, item in enumerate(raw):
        where = f"schedule_steps.{i}"
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            raise InputError(f"{path}: {where}: expected {{start_timestamp, end_timestamp, action}}")
        start = _axle_time(path, f"{where}.start_timestamp", item.get("start_timestamp"))
        end = _axle_time(path, f"{where}.end_timestamp", item.get("end_timestamp"))
        if end <= start:
            raise InputError(f"{path}: {where}: end_timestamp is not after start_timestamp")
        steps.append(AxleStep(start, end, item["action"], bool(item.get("allow_deviation", False))))
    return tuple(sorted(steps, key=lambda s: s.start))
