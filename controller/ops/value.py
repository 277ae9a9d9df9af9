"""Today's value for `status` and the local page: the site's local day's recorded periods (the local history
store, through the forecast component) and the plan in force, valued by `controller.planner.day_value`.

A site without a `planner:` block is valued at the planner's defaults (the imbalance price, no throughput
cost), as the backtest values it; its expected part is then "no planner", never a number.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.core.logs import get_logger
from controller.planner.day_value import RecordedPeriod, ValueModel, day_periods, day_value
from controller.planner.model import Plan

if TYPE_CHECKING:
    from controller.config import SiteConfig
    from controller.planner.service import PlannerService
    from controller.runtime import Runtime

log = get_logger("ops.value")

FALLBACK = "the rule-based modes decide"


def plan_in_force(config: SiteConfig, service: PlannerService | None, now: datetime) -> tuple[Plan | None, str]:
    """(the plan the `plan` mode follows now, else None and why not)."""
    c, p = config.controller, config.planner
    if p is None:
        return None, f"no planner in the site file: {FALLBACK}"
    if c is None or not any(m.type == "plan" for m in c.modes):
        return None, f"no plan mode in the site file: {FALLBACK}"
    plan = service.plan if service is not None else None
    if plan is None:
        error = service.last_error if service is not None else None
        return None, f"no plan yet: {FALLBACK}" + (f" ({error})" if error else "")
    age = (now - plan.created_at).total_seconds()
    if age > p.max_plan_age_s:
        return None, f"the plan is stale ({age / 60:.0f} min old): {FALLBACK}"
    return plan, ""


async def value_today(runtime: Runtime, now: datetime) -> dict[str, Any] | None:
    """`status`'s `value_today` (controller.planner.day_value.DayValue.as_json()); None without a controller."""
    config = runtime.config
    c = config.controller
    if c is None:
        return None
    service = runtime.services.planner
    prices = service.prices if service is not None else None
    model = ValueModel.of(config.planner, c.import_rates, c.export_rates, prices)
    _, _, end, periods = day_periods(now, config.site.timezone)
    rows: list[dict[str, Any]] = []
    forecast = runtime.services.forecast
    if forecast is not None:
        try:  # SQLite: off the loop
            rows = await asyncio.to_thread(forecast.store.periods, periods[0][0], end)
        except Exception as exc:  # the store may be closing with a reload: the periods count as unrecorded
            log.warning("value_today_history_failed", error=repr(exc))
    plan, why = plan_in_force(config, service, now)
    return day_value(now, config.site.timezone, [RecordedPeriod.of(r) for r in rows], plan, model,
                     no_plan=why).as_json()
