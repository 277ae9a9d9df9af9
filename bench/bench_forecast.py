"""Forecasts on the shipped history set: walk-forward skill, interval coverage, price MAE by lead,
fit-and-forecast time, and the local history's size on disk.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_forecast.py [--history simulator/data/demo_history.csv.gz]
        [--weeks 8] [--every 4] [--site config/sites/hmce.yaml]

Walk-forward over the set's last `--weeks` weeks: a 48-period forecast every `--every` periods, each
from what was known when it was made. Goals: site net load MAE skill >= 0.25 against same-time-last-
week persistence; 80 % interval coverage within 75-85 %; fit (build the history from the rows a box
reads, 8 weeks) and forecast 48 periods of every quantity < 200 ms (ratio printed against the
persistence forecaster's fit-and-forecast, measured in the same run). Price: the blend's MAE over
the next 1, 4 and 48 periods against the same-period-of-recent-days (7-day mean) baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import load_site
from controller.core.forecast import NET_LOAD, PRICE
from controller.core.logs import configure_logging
from controller.engine.settlement import today_gb
from controller.forecast.evaluate import evaluate
from controller.forecast.forecasters import FORECASTERS, HISTORY_DAYS_USED, PERSISTENCE, forecast_site
from controller.forecast.history import ControllerPeriod, HistoryStore
from controller.forecast.rows import PeriodRow, read_history_csv
from controller.forecast.series import History


def timing(rows: list[PeriodRow], n: int) -> tuple[list[float], list[float]]:
    """ms per fit+forecast (all quantities, daemon forecasters, the 8 weeks of history the daemon reads)
    and per persistence-only fit+forecast,
    interleaved, at `n` times spread over the last week; each from a fresh History (no memo)."""
    end = rows[-1].period_start
    ours, base = [], []
    persistence = {q: PERSISTENCE for q in FORECASTERS}
    for i in range(n):
        at = end - timedelta(minutes=30 * (7 * 48 * i // n)) - timedelta(minutes=10)
        kept = [r for r in rows if at - timedelta(days=HISTORY_DAYS_USED) <= r.period_start < at]
        for sink, choice in ((ours, None), (base, persistence)):
            t0 = time.perf_counter()
            forecast_site(History.from_rows(kept), at, 48, choice)
            sink.append((time.perf_counter() - t0) * 1000)
    return ours, base


def store_size(rows: list[PeriodRow], site: str, weeks: int) -> tuple[int, int, dict[str, object]]:
    """Bytes on disk of the local history after `weeks` weeks written one period per transaction, as
    the daemon does (every column filled, modes named), then after 12 weeks (the bound at work)."""
    config = load_site(site).config
    devices = len(config.devices)
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore.open(tmp, synchronous="normal")  # size does not depend on fsync
        did = ControllerPeriod(120.5, -80.25, -80.0, "niv_chase,dynamic_peak_approach,export_avoidance")
        last = rows[-1].period_start
        twelve = [r for r in rows if r.period_start > last - timedelta(weeks=12)]
        cut = twelve[0].period_start + timedelta(weeks=weeks)
        for r in twelve:
            if r.period_start == cut:
                size_at = store.stats()["bytes"]
            store.put([(r, did)])
        stats = store.stats()
        store.close()
    return devices, int(size_at), stats


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--history", default="simulator/data/demo_history.csv.gz")
    p.add_argument("--weeks", type=int, default=8)
    p.add_argument("--every", type=int, default=4)
    p.add_argument("--timing-runs", type=int, default=20)
    p.add_argument("--site", default="config/sites/hmce.yaml", help="the site whose size the store is measured at")
    args = p.parse_args()
    configure_logging("console", "warning", stream=sys.stderr)
    rows = read_history_csv(args.history)
    last = today_gb(rows[-1].period_start)
    first = last - timedelta(days=7 * args.weeks - 1)
    t0 = time.perf_counter()
    ev = evaluate(History.from_rows(rows), first, last, every=args.every).as_json()
    took = time.perf_counter() - t0
    print(f"walk-forward {first} .. {last}: {ev['forecasts']} forecasts of 48 periods, {took:.1f} s")
    q = ev["quantities"]
    for quantity, by_name in q.items():
        for name, s in by_name.items():
            skill = "-" if s["skill"] is None else f"{s['skill']:.3f}"
            print(f"  {quantity:<16} {name:<17} mae={s['mae']:.3f} rmse={s['rmse']:.3f} skill={skill} "
                  f"coverage_80={s['coverage_80']:.3f}")
    net = q[NET_LOAD]["similar_day"]
    ok_skill = net["skill"] is not None and net["skill"] >= 0.25
    ok_cov = 0.75 <= net["coverage_80"] <= 0.85
    print(f"net load: skill {net['skill']:.3f} (goal >= 0.25) {'OK' if ok_skill else 'MISSED'}; "
          f"coverage {net['coverage_80']:.3f} (goal 0.75-0.85) {'OK' if ok_cov else 'MISSED'}")
    blend, base = q[PRICE]["price_blend"], q[PRICE]["same_period_7d"]
    for k in ("1", "4", "48"):
        a, b = blend["mae_first"][k], base["mae_first"][k]
        print(f"price MAE next {k:>2} periods: price_blend {a:.3f} p/kWh, same_period_7d {b:.3f} p/kWh, "
              f"ratio {a / b:.2f}")
    print(f"price coverage_80: price_blend {blend['coverage_80']:.3f}")
    ours, persist = timing(rows, args.timing_runs)
    med, med_p = statistics.median(ours), statistics.median(persist)
    print(f"fit+forecast 48 periods ({HISTORY_DAYS_USED // 7} weeks of history, all quantities): "
          f"median {med:.1f} ms, max {max(ours):.1f} ms "
          f"(goal < 200 ms) {'OK' if max(ours) < 200 else 'MISSED'}; persistence-only median {med_p:.1f} ms, "
          f"ratio {med / med_p:.2f}")
    devices, size, stats = store_size(rows, args.site, 8)
    print(f"local history at {Path(args.site).stem} ({devices} devices; one row per period, site aggregates): "
          f"{size} bytes after 8 weeks; after 12 weeks {stats['bytes']} bytes, {stats['periods']} periods kept, "
          f"{stats['dropped']} dropped")
    print(f"(at {datetime.now(UTC).isoformat(timespec='seconds')})")
    return 0 if ok_skill and ok_cov else 1


if __name__ == "__main__":
    sys.exit(main())
