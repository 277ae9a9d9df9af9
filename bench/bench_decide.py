"""Decision time: the whole pure path (nine modes, arbitration, envelope) on the demo site.

    .venv/bin/python bench/bench_decide.py [--n 20000]

Random but realistic states over a week (every mode gets its turn, with and without market data and
Axle steps). Prints p50/p99/max in microseconds; the goal is p99 < 1 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import load_site
from controller.engine.settlement import current_sp_start
from controller.engine.site_state import AxleStep, MarketValue, SiteState

ACTIONS = ("charge_max", "discharge_max", "avoid_import", "avoid_export")


def states(n: int, rng: random.Random) -> list[tuple[datetime, SiteState]]:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    out = []
    for _ in range(n):
        now = start + timedelta(seconds=rng.uniform(0, 7 * 86400))
        sp = current_sp_start(now) - (timedelta(minutes=30) if rng.random() < 0.3 else timedelta(0))
        market = rng.random() < 0.7
        steps = ()
        if rng.random() < 0.3:
            steps = (AxleStep(now - timedelta(minutes=10), now + timedelta(minutes=20), rng.choice(ACTIONS)),)
        out.append((now, SiteState(
            site_power_kw=rng.uniform(-200, 300), soe_kwh=rng.uniform(0, 1000), last_setpoint_kw=rng.uniform(-250, 250),
            site_power_age_s=rng.uniform(0, 35), soe_age_s=rng.uniform(0, 10),
            imbalance_price=MarketValue(rng.uniform(-5, 40), sp) if market else None,
            imbalance_volume=MarketValue(rng.uniform(-400, 400), sp) if market else None,
            axle_schedule=steps)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--site", default="config/sites/demo.yaml")
    args = parser.parse_args()
    # Deciding uses no secret: the demo's ${...} need not be set for the benchmark.
    controller = load_site(args.site, defer_secrets=True).config.controller.decider()  # type: ignore[union-attr]
    cases = states(args.n, random.Random(1))
    for now, st in cases[:500]:  # warm caches (zoneinfo, pydantic attribute access)
        controller.decide(st, now)
    samples = []
    for now, st in cases:
        t0 = time.perf_counter_ns()
        controller.decide(st, now)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"decide: n={len(samples)} p50={p50:.1f}us p99={p99:.1f}us max={samples[-1]:.1f}us "
          f"goal p99<1000us {'OK' if p99 < 1000 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
