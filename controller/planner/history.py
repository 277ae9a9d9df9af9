"""The spec's history CSV (one row per settlement period; `#` lines are comments; empty cell = unknown),
read as what the planner needs: the net load with the battery removed, the imbalance price and the SoE."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controller.core.clock import parse_utc


class HistoryError(ValueError):
    """A history file that cannot be read: the message names the file, line and column."""


@dataclass(frozen=True, slots=True)
class HistoryRow:
    start: datetime  # UTC
    net_load_kw: float | None  # mean kW over the half-hour, battery removed (+ = import)
    price_p_per_kwh: float | None
    volume_mwh: float | None
    soe_end_kwh: float | None


def _cell(row: dict[str, str | None], name: str, where: str) -> float | None:
    text = (row.get(name) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise HistoryError(f"{where}: {name}: not a number: {text!r}") from None
    return value if math.isfinite(value) else None  # NaN / inf: unknown, like an empty cell


def parse_history(lines: Iterable[str], name: str = "history") -> list[HistoryRow]:
    content = [ln for ln in lines if not ln.lstrip().startswith("#")]
    reader = csv.DictReader(content)
    if reader.fieldnames is None or "period_start" not in reader.fieldnames:
        raise HistoryError(f"{name}: the header row must name period_start")
    rows: list[HistoryRow] = []
    for i, row in enumerate(reader, start=2):
        where = f"{name}: data row {i - 1}"
        try:
            start = parse_utc((row.get("period_start") or "").strip())
        except ValueError as exc:
            raise HistoryError(f"{where}: period_start: {exc}") from None
        imp, exp = _cell(row, "site_import_kwh", where), _cell(row, "site_export_kwh", where)
        chg, dis = _cell(row, "battery_charge_kwh", where), _cell(row, "battery_discharge_kwh", where)
        parts = (imp, exp, chg, dis)
        net = None if any(p is None for p in parts) else 2.0 * ((imp or 0) - (exp or 0) + (chg or 0) - (dis or 0))
        rows.append(HistoryRow(start, net, _cell(row, "imbalance_price_p_per_kwh", where),
                               _cell(row, "imbalance_volume_mwh", where), _cell(row, "soe_end_kwh", where)))
    rows.sort(key=lambda r: r.start)
    return rows


def read_history(path: Path) -> list[HistoryRow]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return parse_history(f, str(path))
    except OSError as exc:
        raise HistoryError(f"{path}: {exc.strerror or exc}") from None
