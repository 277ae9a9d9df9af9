"""One settlement period of site history (the spec's history CSV row) and the history CSV reader.

Columns (spec README, "Planning contract"): `period_start` (ISO 8601 with offset, the half-hour's
start), `site_import_kwh`, `site_export_kwh`, `battery_charge_kwh`, `battery_discharge_kwh` (all
>= 0), `soe_end_kwh`, `solar_kwh` (optional), `imbalance_price_p_per_kwh`, `imbalance_volume_mwh`
(+ = system short). An empty cell is unknown; `#` lines are comments; `.csv.gz` is read as gzip.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller.engine.settlement import SP_S

ENERGY_COLUMNS = ("site_import_kwh", "site_export_kwh", "battery_charge_kwh", "battery_discharge_kwh")
VALUE_COLUMNS = (*ENERGY_COLUMNS, "soe_end_kwh", "solar_kwh", "imbalance_price_p_per_kwh", "imbalance_volume_mwh")
COLUMNS = ("period_start", *VALUE_COLUMNS)
NON_NEGATIVE = frozenset({*ENERGY_COLUMNS, "soe_end_kwh", "solar_kwh"})
# Beyond this a cell is a decoding accident, not a reading (a community site's half-hour is kWh in
# the hundreds, a price p/kWh in the hundreds at its worst).
MAX_ABS = 1e7


@dataclass(frozen=True, slots=True)
class PeriodRow:
    """One settlement period: the spec's history columns (None = unknown), start in UTC."""

    period_start: datetime
    site_import_kwh: float | None = None
    site_export_kwh: float | None = None
    battery_charge_kwh: float | None = None
    battery_discharge_kwh: float | None = None
    soe_end_kwh: float | None = None
    solar_kwh: float | None = None
    imbalance_price_p_per_kwh: float | None = None
    imbalance_volume_mwh: float | None = None

    def net_load_kwh(self) -> float | None:
        """Site net load with the battery removed: import - export - charge + discharge.

        The spec's text says "+ charge - discharge", which adds the battery a second time: the site
        meter sees load - solar + charge - discharge, so removing the battery subtracts the charge and
        adds back the discharge. We follow the physics (and the kernel's definition of NET_LOAD:
        what the site would import without the battery); the spec's sign is reported upstream."""
        parts = (self.site_import_kwh, self.site_export_kwh, self.battery_charge_kwh, self.battery_discharge_kwh)
        if any(p is None for p in parts):
            return None
        imp, exp, chg, dis = (float(p) for p in parts)  # type: ignore[arg-type]
        return imp - exp - chg + dis


class HistoryFileError(ValueError):
    """A bad history file: `str()` is the one-line `FILE:LINE: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line > 0 else f"{path}: {message}")
        self.path, self.line, self.message = path, line, message


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _cell(name: str, text: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: '{text}' is not a number") from None
    if not math.isfinite(value) or abs(value) > MAX_ABS:
        raise ValueError(f"{name}: '{text}' is not a finite number of plausible size")
    if name in NON_NEGATIVE and value < 0:
        raise ValueError(f"{name}: {text} is negative (must be >= 0)")
    return value


def _start(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"period_start: '{text}' is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise ValueError(f"period_start: '{text}' has no UTC offset")
    t = t.astimezone(UTC)
    if t.timestamp() % SP_S:
        raise ValueError(f"period_start: '{text}' is not the start of a half-hour")
    return t


def parse_lines(lines: Iterable[str], path: str) -> Iterator[tuple[int, PeriodRow | HistoryFileError]]:
    """(line number, row or the line's error) for every data line; a header problem raises."""
    header: list[str] | None = None
    seen: set[datetime] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = next(csv.reader([line]))
        if header is None:
            header = [c.strip() for c in cells]
            missing = [c for c in COLUMNS if c not in header and c != "solar_kwh"]
            if missing:
                raise HistoryFileError(path, number, f"header lacks column(s) {', '.join(missing)}")
            continue
        if len(cells) != len(header):
            yield number, HistoryFileError(path, number, f"{len(cells)} cells, the header has {len(header)}")
            continue
        record = dict(zip(header, cells, strict=True))
        try:
            start = _start(record["period_start"])
            values = {c: _cell(c, record[c]) for c in VALUE_COLUMNS if c in record}
        except ValueError as exc:
            yield number, HistoryFileError(path, number, str(exc))
            continue
        if start in seen:
            yield number, HistoryFileError(path, number, f"period_start {start.isoformat()} repeated")
            continue
        seen.add(start)
        yield number, PeriodRow(start, **values)
    if header is None:
        raise HistoryFileError(path, 1, "no header row")


def read_history_csv(path: str | Path) -> list[PeriodRow]:
    """Every row of a history CSV, in time order; the first bad line raises `HistoryFileError`."""
    p = Path(path)
    try:
        with open_text(p) as f:
            rows: list[PeriodRow] = []
            for _, item in parse_lines(f, str(path)):
                if isinstance(item, HistoryFileError):
                    raise item
                rows.append(item)
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise HistoryFileError(str(path), 0, f"cannot read: {exc}") from None
    rows.sort(key=lambda r: r.period_start)
    return rows


def format_row(row: PeriodRow, tz: object | None = None) -> list[str]:
    """The CSV cells of a row (3 decimals; period_start in `tz` if given, else UTC)."""
    start = row.period_start.astimezone(tz) if tz is not None else row.period_start  # type: ignore[arg-type]
    return [start.isoformat(), *("" if v is None else f"{v:.3f}" for v in (getattr(row, c) for c in VALUE_COLUMNS))]
