"""What one control decision looks at: site power, SoE, the last setpoint, market data and Axle's schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class MarketValue:
    """A market figure tagged with the UTC start of the settlement period it is for."""

    value: float
    settlement_period: datetime


@dataclass(frozen=True, slots=True)
class AxleStep:
    start: datetime
    end: datetime
    action: str
    allow_deviation: bool = False

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True, slots=True)
class PlanTargets:
    """What the `plan` mode tracks of the current plan: per period, the SoE planned for its end."""

    plan_id: str
    created_at: datetime
    period_s: float
    targets: tuple[tuple[datetime, float], ...]  # (period start UTC, planned SoE at its end, kWh), in order

    def target_at(self, now: datetime) -> tuple[datetime, float] | None:
        """(end of the planned period covering `now`, its planned end SoE), or None outside the plan."""
        span = timedelta(seconds=self.period_s)
        for start, soe in self.targets:
            if start <= now < start + span:
                return start + span, soe
        return None


@dataclass(frozen=True, slots=True)
class SiteState:
    """Inputs of one decision. Powers in kW (site + import, battery + discharge), energy in kWh.

    A missing site power or SoE is stale data; ages are seconds since the value was read.
    """

    site_power_kw: float | None
    soe_kwh: float | None
    last_setpoint_kw: float = 0.0
    site_power_age_s: float = 0.0
    soe_age_s: float = 0.0
    imbalance_price: MarketValue | None = None  # p/kWh
    imbalance_volume: MarketValue | None = None  # MWh, + = system short
    axle_schedule: tuple[AxleStep, ...] = ()
    plan: PlanTargets | None = None  # the planner's current plan, if any (the `plan` mode tracks it)

    @property
    def residual_load_kw(self) -> float:
        """The site's load net of solar as the battery sees it: what the site would import with the battery idle."""
        return (self.site_power_kw or 0.0) + self.last_setpoint_kw
