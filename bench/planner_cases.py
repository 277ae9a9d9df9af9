"""Random but realistic 48 h x 30 min plan inputs for bench_planner.py (no solver imports here: the RSS probe
uses them on the daemon's side)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from controller.planner.model import Commitment, PlanInputs

N_PERIODS = 96


def random_inputs(rng: random.Random) -> PlanInputs:
    start = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=30 * rng.randrange(48 * 14))
    starts = tuple(start + timedelta(minutes=30 * i) for i in range(N_PERIODS))
    prices, loads = [], []
    for s in starts:
        hour = s.hour + s.minute / 60
        peak = 25.0 if 16 <= hour < 19 else 0.0
        prices.append(rng.uniform(-5, 35) + peak)
        loads.append(rng.uniform(-150, 300))
    commitments: list[Commitment | None] = [None] * N_PERIODS
    if rng.random() < 1 / 3:
        at = rng.randrange(N_PERIODS - 4)
        action = rng.choice(["charge_max", "discharge_max", "avoid_import", "avoid_export"])
        for i in range(at, at + 4):
            commitments[i] = Commitment(action, 1.0)
    return PlanInputs(
        made_at=start, starts=starts, period_h=0.5, net_load_kw=tuple(loads), price_p_per_kwh=tuple(prices),
        import_rate_p_per_kwh=tuple(8.0 if 16 <= s.hour < 19 else 1.0 for s in starts),
        export_rate_p_per_kwh=(0.5,) * N_PERIODS, soe_kwh=rng.uniform(0, 1000), charge_kw=250.0,
        discharge_kw=250.0, charge_efficiency=0.92, soe_min_kwh=50.0, soe_max_kwh=950.0, import_kw=300.0,
        export_kw=350.0, throughput_p_per_kwh=2.0, band_low_kwh=100.0, band_high_kwh=900.0, band_p_per_kwh_h=1.0,
        terminal_p_per_kwh=15.0, commitments=tuple(commitments))
