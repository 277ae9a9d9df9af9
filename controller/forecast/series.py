"""The history as the forecasters see it: per quantity, one cleaned value per settlement period,
indexed by local date and local time of day so that similar days line up across clock changes.

Cleaning (a forecast must say what it lacked, never fail on it): non-finite values and cells of
implausible size are dropped, as are energies that cannot be negative; a meter replaced (a counter
jump) shows up as one absurd half-hour, dropped by a robust outlier test (far outside the median
+- many MADs of the quantity's recent values). Every drop is counted in `dropped`.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from controller.core.forecast import LOAD, NET_LOAD, PRICE, SOLAR
from controller.engine.schedule import zone
from controller.engine.settlement import GB_TIMEZONE, SP_S
from controller.forecast.rows import MAX_ABS, PeriodRow

# How far outside median +- MAD a kW value may be before it is a counter jump, not a load.
OUTLIER_MADS = 25.0
SlotKey = tuple[date, int]  # (local date, local minute of day)


# Bounded to the working set (the 56 days of periods the forecasters read, HISTORY_DAYS_USED, plus a
# horizon): every period start a daemon meets stays in an lru_cache until it is full, and at 65536 that
# was 17 MiB reached after 3.7 years of periods (measured), for keys no forecast asks about again.
LOCAL_KEYS_CACHED = 4096


@functools.lru_cache(maxsize=LOCAL_KEYS_CACHED)
def local_key(ts: int) -> SlotKey:
    """Local (Europe/London) date and minute of day of a period start (epoch seconds). The two
    periods of a repeated hour (fall-back day) share a key; the skipped hour has none."""
    local = datetime.fromtimestamp(ts, UTC).astimezone(zone(GB_TIMEZONE))
    return local.date(), local.hour * 60 + local.minute


@dataclass
class Quantity:
    """One quantity's values: by period start (epoch s) and by local minute of day and local date
    (the repeated hour of a fall-back day averaged, its later start kept for the known-before test)."""

    name: str
    by_ts: dict[int, float] = field(default_factory=dict)
    by_minute: dict[int, dict[date, tuple[int, float]]] = field(default_factory=dict)  # minute -> date -> ...
    sorted_ts: list[int] = field(default_factory=list)

    def index(self) -> None:
        self.sorted_ts = sorted(self.by_ts)
        self.by_minute.clear()
        for ts in self.sorted_ts:
            day, minute = local_key(ts)
            v = self.by_ts[ts]
            slot = self.by_minute.setdefault(minute, {})
            if day in slot:
                prev_ts, prev = slot[day]
                slot[day] = (max(ts, prev_ts), (prev + v) / 2)
            else:
                slot[day] = (ts, v)


@dataclass
class History:
    """Cleaned per-quantity series built from history rows. Append-only in use: a forecaster may
    memoise per-period results on it (`memo`), so build a new one when old rows change."""

    quantities: dict[str, Quantity]
    dropped: dict[str, int]
    memo: dict[tuple[str, str, int], tuple[float, float, float] | None] = field(default_factory=dict)

    def get(self, name: str) -> Quantity | None:
        q = self.quantities.get(name)
        return q if q is not None and q.by_ts else None

    @classmethod
    def from_rows(cls, rows: Iterable[PeriodRow]) -> History:
        raw: dict[str, dict[int, float]] = {NET_LOAD: {}, LOAD: {}, SOLAR: {}, PRICE: {}}
        dropped = dict.fromkeys(raw, 0)

        def ok(v: float | None, non_negative: bool) -> bool:
            return v is not None and math.isfinite(v) and abs(v) <= MAX_ABS and (v >= 0 or not non_negative)

        for r in rows:
            ts = int(r.period_start.timestamp())
            if ts % SP_S:
                continue
            energies = (r.site_import_kwh, r.site_export_kwh, r.battery_charge_kwh, r.battery_discharge_kwh)
            net: float | None = None
            if all(ok(e, True) for e in energies):
                net = r.net_load_kwh()
            elif any(e is not None for e in energies):
                dropped[NET_LOAD] += 1
            if net is not None:
                raw[NET_LOAD][ts] = 2 * net
            if r.solar_kwh is not None:
                if ok(r.solar_kwh, True):
                    raw[SOLAR][ts] = 2 * r.solar_kwh
                    if net is not None:
                        raw[LOAD][ts] = 2 * (net + r.solar_kwh)
                else:
                    dropped[SOLAR] += 1
            price = r.imbalance_price_p_per_kwh
            if price is not None:
                if ok(price, False):
                    raw[PRICE][ts] = price
                else:
                    dropped[PRICE] += 1
        quantities: dict[str, Quantity] = {}
        for name, values in raw.items():
            if name != PRICE:  # price spikes are real; energy spikes of this size are counter jumps
                dropped[name] += _drop_outliers(values)
            q = Quantity(name, values)
            q.index()
            quantities[name] = q
        return cls(quantities, dropped)


def _drop_outliers(values: dict[int, float]) -> int:
    if len(values) < 10:
        return 0
    data = sorted(values.values())
    med = statistics.median(data)
    mad = statistics.median(abs(v - med) for v in data)
    # The spread floor keeps a series that is mostly zero (solar at night) from calling its days outliers.
    spread = data[int(0.95 * (len(data) - 1))] - data[int(0.05 * (len(data) - 1))]
    scale = max(mad, 0.1 * spread, 1.0)
    bad = [ts for ts, v in values.items() if abs(v - med) > OUTLIER_MADS * scale]
    for ts in bad:
        del values[ts]
    return len(bad)
