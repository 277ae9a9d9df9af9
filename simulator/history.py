"""A synthetic multi-week history in the spec's history CSV shape (no battery: its columns are 0), for the
planner's backtests and tests until the forecasts issue ships its recorded set. Deterministic for a seed;
shaped, not recorded: a community's load (morning and evening peaks, weekends flatter) net of solar under
day-to-day cloud, and an imbalance price with a daily shape, day-to-day level changes, noise that persists
from one half-hour to the next, occasional spikes and negative nights.

    python -m simulator.history --from 2026-04-06 --days 21 > simulator/data/history_3w.csv
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HEADER = ("period_start,site_import_kwh,site_export_kwh,battery_charge_kwh,battery_discharge_kwh,soe_end_kwh,"
          "solar_kwh,imbalance_price_p_per_kwh,imbalance_volume_mwh")


def history_rows(first: date, days: int, seed: int = 1, timezone: str = "Europe/London") -> list[str]:
    rng = random.Random(seed)
    tz = ZoneInfo(timezone)
    rows = []
    noise = 0.0
    for d in range(days):
        day = first + timedelta(days=d)
        weekend = day.weekday() >= 5
        sun = rng.uniform(0.2, 1.0)  # cloud cover of the day
        level = rng.gauss(0.0, 3.0)  # the day's price level
        start = datetime.combine(day, time(0), tzinfo=tz)
        utc_start = start.astimezone(ZoneInfo("UTC"))
        next_start = datetime.combine(day + timedelta(days=1), time(0),
                                                             tzinfo=tz).astimezone(ZoneInfo("UTC"))
        n = int((next_start - utc_start).total_seconds() // 1800)
        for i in range(n):
            t = utc_start + timedelta(minutes=30 * i)
            h = (t.astimezone(tz) - start.replace(tzinfo=tz)).total_seconds() / 3600 % 24 + 0.25
            load = 45 + (110 if not weekend else 80) * math.exp(-((h - 18) ** 2) / 4.5) \
                + (45 if not weekend else 25) * math.exp(-((h - 7.5) ** 2) / 2) + rng.gauss(0, 8)
            solar = 170 * sun * math.sin(math.pi * (h - 5.5) / 15) ** 2 if 5.5 <= h <= 20.5 else 0.0
            solar *= rng.uniform(0.8, 1.0)
            noise = 0.6 * noise + rng.gauss(0, 2.5)
            price = (7 + level + 4 * math.exp(-((h - 8) ** 2) / 2) + 16 * math.exp(-((h - 18) ** 2) / 2)
                     - 6 * sun * math.exp(-((h - 13) ** 2) / 6) - (3 if weekend else 0) + noise)
            if rng.random() < 0.02:
                price += rng.uniform(20, 60)
            volume = 40 * (price - 9) + rng.gauss(0, 60)
            net = max(load, 0.0) - solar
            imp, exp = (net / 2, 0.0) if net > 0 else (0.0, -net / 2)
            rows.append(f"{t.isoformat()},{imp:.3f},{exp:.3f},0,0,,{solar / 2:.3f},{price:.3f},{volume:.1f}")
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description="write a synthetic history CSV on stdout")
    p.add_argument("--from", dest="first", required=True, type=date.fromisoformat)
    p.add_argument("--days", type=int, default=21)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    print("# Synthetic history (simulator/history.py): shaped, not recorded; no battery on site.")
    print(f"# python -m simulator.history --from {args.first} --days {args.days} --seed {args.seed}")
    print(HEADER)
    for row in history_rows(args.first, args.days, args.seed):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
