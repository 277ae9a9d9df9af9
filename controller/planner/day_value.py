"""The value the battery is expected to bring today: pure, with "now" passed in.

Today is the site's local day (its timezone, DST included: 46, 48 or 50 settlement periods). Each settlement
period overlapping it counts for the share of it inside the day (all of it in Europe/London, where local
midnight is a period boundary). Two parts:

- `earned`: the periods that have ended, from their recorded half-hour (the local history store,
  controller.forecast.history): what the site's energy would have cost without the battery minus what it
  cost with it, less the throughput cost. Without the battery the site would have imported
  import - export + discharge - charge; the period's energy is settled net, as the planner counts it.
  An ended period with no usable record (the daemon was down, no price) is not counted, and counted as such.
- `expected`: the periods not ended yet (the running one included, whole: its record is written when it
  ends), at the current plan's battery power, net load and price for each period, valued the same way.
  With no plan (the rule-based modes decide) there is no number, and the answer says why; remaining
  periods beyond the plan's horizon are not counted, and counted as such.

The value model is the planner's (`controller.planner.model.read_plan`): price + import rate on net import,
price - export rate on net export, the rates as at the period's start, throughput cost per kWh discharged.
The change in stored energy is not valued here (the plan's terminal value is a horizon's end, not
midnight): a day that charges for tomorrow's peak shows what it spent today.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from controller.core.config import TimedRate
from controller.engine.rates import rate_now
from controller.engine.schedule import day_bounds, zone
from controller.engine.settlement import SP, SP_S, current_sp_start
from controller.planner.config import PlannerConfig
from controller.planner.model import Plan, PlanPeriod, settled_cost_p

H = SP_S / 3600.0  # a settlement period, in hours


@dataclass(frozen=True, slots=True)
class ValueModel:
    """The site's value model: the planner block's price source and throughput cost, the controller's rates.
    `prices`: the planner's own price source (a schedule file or feed), None when it is the imbalance price
    (then each period's recorded imbalance price)."""

    import_rates: tuple[TimedRate, ...] = ()
    export_rates: tuple[TimedRate, ...] = ()
    throughput_p_per_kwh: float = 0.0
    prices: Mapping[datetime, float] | None = None
    default_price_p_per_kwh: float | None = None

    @classmethod
    def of(cls, planner: PlannerConfig | None, import_rates: Sequence[TimedRate] = (),
           export_rates: Sequence[TimedRate] = (), prices: Mapping[datetime, float] | None = None) -> ValueModel:
        """`planner` None (no planner block): what its defaults give, the imbalance price and no wear cost
        (the daemon cannot build a default block: its config objects come from the validator)."""
        if planner is None:
            return cls(tuple(import_rates), tuple(export_rates))
        return cls(tuple(import_rates), tuple(export_rates), planner.throughput_p_per_kwh,
                   prices if planner.price.type != "imbalance" else None, planner.default_price_p_per_kwh)

    def price(self, start: datetime, recorded: float | None) -> float | None:
        """The price an ended period settled at: the planner's source's, else the recorded imbalance price,
        else the configured default; None when nothing gives one."""
        known = self.prices.get(start) if self.prices is not None else recorded
        return known if known is not None else self.default_price_p_per_kwh

    def value_p(self, start: datetime, net_load_kwh: float, battery_kwh: float, discharged_kwh: float,
                price: float) -> float:
        """Pence the battery brings in the period: cost without it - cost with it - throughput cost.
        `net_load_kwh`: what the site would import without the battery (+ import); `battery_kwh`: + discharge."""
        imp, exp = rate_now(self.import_rates, start), rate_now(self.export_rates, start)
        without, with_battery = net_load_kwh, net_load_kwh - battery_kwh
        return (settled_cost_p(without, price, imp, exp) - settled_cost_p(with_battery, price, imp, exp)
                - discharged_kwh * self.throughput_p_per_kwh)


@dataclass(frozen=True, slots=True)
class RecordedPeriod:
    """An ended period as the local history recorded it (None = unknown)."""

    start: datetime
    site_import_kwh: float | None
    site_export_kwh: float | None
    charge_kwh: float | None
    discharge_kwh: float | None
    price_p_per_kwh: float | None
    from_setpoint: bool = False  # no battery meter: the battery's energy is the mean setpoint's

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RecordedPeriod:
        """From a `HistoryStore.periods()` row: the battery meter's energy, else the mean setpoint's
        (the battery runs its setpoint; a site without a battery meter records nothing else)."""
        charge, discharge = row.get("battery_charge_kwh"), row.get("battery_discharge_kwh")
        target = row.get("target_kw_mean")
        setpoint = False
        if (charge is None or discharge is None) and isinstance(target, int | float):
            setpoint, kwh = True, float(target) * H
            charge, discharge = max(-kwh, 0.0), max(kwh, 0.0)
        return cls(row["period_start"], row.get("site_import_kwh"), row.get("site_export_kwh"), charge, discharge,
                   row.get("imbalance_price_p_per_kwh"), setpoint)

    def value_p(self, model: ValueModel) -> float | None:
        price = model.price(self.start, self.price_p_per_kwh)
        parts = (self.site_import_kwh, self.site_export_kwh, self.charge_kwh, self.discharge_kwh)
        if price is None or any(p is None for p in parts):
            return None
        imp, exp, charge, discharge = (float(p) for p in parts)  # type: ignore[arg-type]
        battery = discharge - charge
        return model.value_p(self.start, imp - exp + battery, battery, discharge, price)


def planned_value_p(period: PlanPeriod, model: ValueModel) -> float:
    """A plan period over a whole settlement period, at the plan's own price (the rates from `model`)."""
    return model.value_p(period.start, period.net_load_kw * H, period.battery_kw * H, period.discharge_kw * H,
                         period.price_p_per_kwh)


@dataclass(frozen=True)
class DayValue:
    day: date
    day_start: datetime  # UTC, local midnight
    day_end: datetime
    periods: int  # settlement periods overlapping the day
    earned_p: float
    earned_periods: int  # ended periods counted
    unrecorded_periods: int  # ended periods with no usable record: not counted
    setpoint_periods: int  # of the counted, those valued at the mean setpoint (no battery meter)
    expected_p: float | None  # None: no plan
    expected_periods: int  # periods left that the plan covers
    unplanned_periods: int  # periods left that it does not (beyond its horizon, or no plan)
    plan_id: str | None
    no_plan: str | None  # why there is no expected value

    @property
    def total_p(self) -> float | None:
        return None if self.expected_p is None else self.earned_p + self.expected_p

    def as_json(self) -> dict[str, Any]:
        def gbp(p: float | None) -> float | None:
            return None if p is None else round(p / 100.0, 2)

        return {"day": self.day.isoformat(), "day_start": self.day_start.isoformat(),
                "day_end": self.day_end.isoformat(), "periods": self.periods,
                "earned_gbp": gbp(self.earned_p), "earned_periods": self.earned_periods,
                "unrecorded_periods": self.unrecorded_periods, "setpoint_periods": self.setpoint_periods,
                "expected_gbp": gbp(self.expected_p), "expected_periods": self.expected_periods,
                "unplanned_periods": self.unplanned_periods, "plan_id": self.plan_id, "no_plan": self.no_plan,
                "total_gbp": gbp(self.total_p)}


def day_periods(now: datetime, timezone: str) -> tuple[date, datetime, datetime, list[tuple[datetime, float]]]:
    """The local day of `now`: (date, start, end, [(period start, share of the period inside the day)])."""
    tz = zone(timezone)
    day = now.astimezone(tz).date()
    start, end = day_bounds(day, tz)
    out: list[tuple[datetime, float]] = []
    p = current_sp_start(start)
    while p < end:
        inside = (min(p + SP, end) - max(p, start)).total_seconds() / SP_S
        out.append((p, inside))
        p += SP
    return day, start, end, out


def day_value(now: datetime, timezone: str, recorded: Iterable[RecordedPeriod], plan: Plan | None,
              model: ValueModel, *, no_plan: str = "no plan: the rule-based modes decide") -> DayValue:
    """Today's value at `now` (module docstring). `plan`: the current plan, None when there is none
    (`no_plan` says why)."""
    day, start, end, periods = day_periods(now, timezone)
    rows = {r.start: r for r in recorded}
    planned = {} if plan is None else {q.start: q for q in plan.periods}
    earned = 0.0
    earned_n = unrecorded = setpoint = expected_n = unplanned = 0
    expected: float | None = None if plan is None else 0.0
    for p, share in periods:
        if p + SP <= now:
            row = rows.get(p)
            value = None if row is None else row.value_p(model)
            if value is None:
                unrecorded += 1
                continue
            earned += share * value
            earned_n += 1
            setpoint += row is not None and row.from_setpoint
            continue
        q = planned.get(p)
        if q is None or expected is None:
            unplanned += 1
            continue
        expected += share * planned_value_p(q, model)
        expected_n += 1
    return DayValue(day, start, end, len(periods), earned, earned_n, unrecorded, setpoint, expected, expected_n,
                    unplanned, None if plan is None else plan.plan_id, None if plan is not None else no_plan)
