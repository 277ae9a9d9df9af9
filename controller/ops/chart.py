"""`GET /today`: the local page's chart of today, as JSON. Read-only, same auth as `/status`.

Today is the site's local day (its timezone, DST included: 46, 48 or 50 settlement periods). Three parts,
each empty when its source is not running:

- `history`: the periods of today so far from the local history store (controller.forecast.history):
  site power (kW mean, + import), battery power (kW mean, + discharge), SoE at the period's end, price;
- `forecast`: the latest forecast's periods ahead (net load value/lower/upper, price);
- `plan`: the planner's current plan's periods ahead (battery_kw, soe_end_kwh, the site power it expects).

"Ahead" runs from the current period to the end of the day, and at least `MIN_AHEAD` beyond now (late in
the evening the chart still shows the next hours).
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from controller.core.forecast import NET_LOAD, PRICE
from controller.core.logs import get_logger
from controller.engine.schedule import day_bounds, zone
from controller.engine.settlement import SP, SP_S

if TYPE_CHECKING:
    from controller.runtime import Runtime

log = get_logger("ops.chart")

MIN_AHEAD = timedelta(hours=4)
_H = SP_S / 3600.0  # a period in hours: kWh in a period / _H = mean kW


def _num(v: Any, digits: int = 3) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return round(float(v), digits)


def _mean_kw(positive: Any, negative: Any) -> float | None:
    a, b = _num(positive), _num(negative)
    return None if a is None or b is None else round((a - b) / _H, 3)


def history_entry(row: dict[str, Any]) -> dict[str, Any]:
    """One stored period for the chart: the measured means where the controller recorded them, else the
    period's energy over its length."""
    site = _num(row.get("site_power_mean_kw"))
    if site is None:
        site = _mean_kw(row.get("site_import_kwh"), row.get("site_export_kwh"))
    battery = _num(row.get("battery_power_mean_kw"))
    if battery is None:
        battery = _mean_kw(row.get("battery_discharge_kwh"), row.get("battery_charge_kwh"))
    source = "measured" if battery is not None else None
    if battery is None and (target := _num(row.get("target_kw_mean"))) is not None:
        battery, source = target, "target"  # no battery meter: what the controller asked for
    start: datetime = row["period_start"]
    return {"start": start.isoformat(), "site_kw": site, "battery_kw": battery, "battery_source": source,
            "soe_end_kwh": _num(row.get("soe_end_kwh")), "price_p_per_kwh": _num(row.get("imbalance_price_p_per_kwh"))}


def day_window(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The site's local day containing `now`, [midnight, next midnight) in UTC."""
    tz = zone(timezone)
    return day_bounds(now.astimezone(tz).date(), tz)


async def today_view(runtime: Runtime) -> dict[str, Any]:
    config = runtime.config
    now = runtime.clock.now()
    start, end = day_window(now, config.site.timezone)
    until = max(end, now + MIN_AHEAD)
    out: dict[str, Any] = {"site_id": config.site.id, "time": now.isoformat(), "timezone": config.site.timezone,
                           "day_start": start.isoformat(), "day_end": end.isoformat(), "until": until.isoformat(),
                           "period_s": SP_S, "soe_capacity_kwh": None, "history": [], "forecast": None,
                           "plan": None}
    ctl = config.controller
    if ctl is not None:
        out["soe_capacity_kwh"] = _num(getattr(config.device(ctl.battery), "nameplate_energy_kwh", None))
    service = runtime.services.forecast
    if service is not None:
        try:  # SQLite: off the loop
            rows = await asyncio.to_thread(service.store.periods, start, end)
            out["history"] = [history_entry(r) for r in rows]
        except Exception as exc:  # the store may be closing with a reload; answer without it
            log.warning("today_history_failed", error=repr(exc))
        fc = service.latest
        if fc is not None:
            ahead = []
            for p in fc.periods:
                if p.start + SP <= now or p.start >= until:
                    continue
                band, price = p.get(NET_LOAD), p.get(PRICE)
                ahead.append({"start": p.start.isoformat(),
                              "net_load_kw": None if band is None else {k: _num(v) for k, v in band.as_json().items()},
                              "price_p_per_kwh": None if price is None else _num(price.value)})
            out["forecast"] = {"made_at": fc.made_at.isoformat(), "periods": ahead}
    planner = runtime.services.planner
    if planner is not None and planner.plan is not None:
        plan = planner.plan
        out["plan"] = {"plan_id": plan.plan_id, "status": planner.status, "created_at": plan.created_at.isoformat(),
                       "expected_value_gbp": _num(plan.expected_value_gbp, 2),
                       "periods": [{"start": q.start.isoformat(), "battery_kw": _num(q.battery_kw),
                                    "soe_end_kwh": _num(q.soe_end_kwh), "site_kw": _num(q.site_kw),
                                    "price_p_per_kwh": _num(q.price_p_per_kwh)}
                                   for q in plan.periods if q.start + SP > now and q.start < until]}
    return out
