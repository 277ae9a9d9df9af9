"""A forecast, the site's limits and rates, the SoE now and Axle's schedule -> the LP's inputs.

Whatever is missing is assumed, and the assumption is written into the inputs (and so into the plan's
notes): a price nobody gave -> the configured default, else the last known price, else 0; a net load
nobody forecast -> the last known, else 0; prices beyond +-PRICE_CLIP are clipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from controller.core.config import TimedRate
from controller.core.forecast import NET_LOAD, PRICE, Forecast
from controller.engine.envelope import Limits
from controller.engine.rates import rate_now
from controller.engine.settlement import SP, SP_S, current_sp_start
from controller.engine.site_state import AxleStep
from controller.planner.config import PRICE_CLIP_P_PER_KWH, PlannerConfig
from controller.planner.model import AXLE_ACTIONS, Commitment, PlanInputs


def horizon_starts(now: datetime, horizon_h: float) -> tuple[datetime, ...]:
    """The starts of the settlement periods from the one covering `now`, `horizon_h` hours of them."""
    first = current_sp_start(now)
    return tuple(first + i * SP for i in range(max(1, round(horizon_h * 3600 / SP_S))))


def _fill(values: list[float | None], name: str, default: float | None, starts: Sequence[datetime],
          notes: list[str]) -> list[float]:
    missing = [i for i, v in enumerate(values) if v is None]
    out: list[float] = []
    last: float | None = None
    for v in values:
        if v is None:
            out.append(default if default is not None else (last if last is not None else 0.0))
        else:
            last = v
            out.append(v)
    if missing:
        how = f"{default:g}" if default is not None else "the last known value (0 with none)"
        notes.append(f"{name}: {len(missing)} of {len(values)} periods missing from {starts[missing[0]].isoformat()}: "
                     f"assumed {how}")
    return out


def commitments(steps: Sequence[AxleStep], starts: Sequence[datetime]) -> tuple[Commitment | None, ...]:
    """Per period, the first Axle step overlapping it (as the axle mode takes the first covering step),
    with the share of the period it covers."""
    out: list[Commitment | None] = []
    for start in starts:
        end = start + SP
        found: Commitment | None = None
        for s in steps:
            overlap = (min(end, s.end) - max(start, s.start)).total_seconds()
            if overlap > 0 and s.action in AXLE_ACTIONS:
                found = Commitment(s.action, overlap / SP_S)
                break
        out.append(found)
    return tuple(out)


def build_inputs(config: PlannerConfig, limits: Limits, now: datetime, soe_kwh: float, forecast: Forecast,
                 *, import_rates: Sequence[TimedRate] = (), export_rates: Sequence[TimedRate] = (),
                 axle: Sequence[AxleStep] = (), prices: Mapping[datetime, float] | None = None,
                 notes: Sequence[str] = ()) -> PlanInputs:
    """The LP's inputs for a plan made at `now`. `prices` (a schedule file's) override the forecast's."""
    starts = horizon_starts(now, config.horizon_h)
    by_start = {p.start: p for p in forecast.periods}
    assumed = [*notes, *forecast.notes]
    raw_prices: list[float | None] = []
    raw_loads: list[float | None] = []
    for s in starts:
        p = by_start.get(s)
        band = p.get(PRICE) if p is not None else None
        price = prices.get(s) if prices is not None else None
        raw_prices.append(price if price is not None else (band.value if band is not None else None))
        load = p.get(NET_LOAD) if p is not None else None
        raw_loads.append(load.value if load is not None else None)
    price_list = _fill(raw_prices, PRICE, config.default_price_p_per_kwh, starts, assumed)
    clipped = [min(max(v, -PRICE_CLIP_P_PER_KWH), PRICE_CLIP_P_PER_KWH) for v in price_list]
    if clipped != price_list:
        assumed.append(f"{PRICE}: prices beyond +-{PRICE_CLIP_P_PER_KWH:g} p/kWh clipped")
    loads = _fill(raw_loads, NET_LOAD, None, starts, assumed)
    if not math.isfinite(soe_kwh):
        raise ValueError("the SoE now must be finite")
    terminal = config.terminal_value_p_per_kwh
    if terminal is None:
        terminal = sum(clipped) / len(clipped)
    pref = config.band
    first_h = (starts[0] + SP - now).total_seconds() / 3600.0
    return PlanInputs(
        made_at=now, starts=starts, period_h=SP_S / 3600.0, net_load_kw=tuple(loads),
        price_p_per_kwh=tuple(clipped),
        import_rate_p_per_kwh=tuple(rate_now(import_rates, s) for s in starts),
        export_rate_p_per_kwh=tuple(rate_now(export_rates, s) for s in starts),
        soe_kwh=soe_kwh, charge_kw=limits.charge_kw, discharge_kw=limits.discharge_kw,
        charge_efficiency=limits.charge_efficiency, soe_min_kwh=limits.soe_min_kwh, soe_max_kwh=limits.soe_max_kwh,
        # The envelope keeps its margin inside the site limits; a plan that used it would be clamped.
        import_kw=max(limits.import_kw - limits.site_margin_kw, 0.0),
        export_kw=max(limits.export_kw - limits.site_margin_kw, 0.0),
        throughput_p_per_kwh=config.throughput_p_per_kwh,
        band_low_kwh=None if pref is None else pref.low_kwh, band_high_kwh=None if pref is None else pref.high_kwh,
        band_p_per_kwh_h=0.0 if pref is None else pref.breach_p_per_kwh_h,
        terminal_p_per_kwh=terminal, commitments=commitments(axle, starts), assumptions=tuple(assumed),
        first_period_h=first_h if first_h < SP_S / 3600.0 - 1e-9 else None,
    )
