"""The value model of the site file's `planner:` block: where prices come from, what cycling costs, the
preferred SoE band, the value of energy left at the horizon's end, the horizon and the solve's time limit."""

from __future__ import annotations

from typing import Annotated, Literal

from controller.core.config import ConfigModel, ProblemList
from controller.core.schema import Field

# Prices beyond this magnitude are clipped (and the plan says so): the LP's breach penalties must dominate
# every price, and GB imbalance prices are capped well inside it (6,000 GBP/MWh = 600 p/kWh).
PRICE_CLIP_P_PER_KWH = 1000.0


class ImbalancePriceSource(ConfigModel):
    """The imbalance price as the market client caches it (Modo): the latest actual, then a persistence
    forecast (same time yesterday, else last week) from the recorded history."""

    type: Literal["imbalance"]


class SchedulePriceSource(ConfigModel):
    """A price schedule file: CSV `period_start,price_p_per_kwh` (header row, `#` comments) or JSON
    `[{"period_start": ISO, "price_p_per_kwh": x}, ...]`; periods it does not cover fall back as below."""

    type: Literal["schedule"]
    path: str = Field(min_length=1, description="CSV or JSON file; relative paths are from the working directory")


class HttpPriceSource(ConfigModel):
    """A price feed answering like Octopus Agile's unit-rates endpoint:
    `{"results": [{"valid_from": ISO, "valid_to": ISO, "value_exc_vat": p/kWh, "value_inc_vat": p/kWh}, ...]}`.
    Polled every `poll_interval_s`; an answer that is garbage or none keeps the prices already fetched."""

    type: Literal["http"]
    url: str = Field(min_length=1, pattern=r"^https?://")
    value: Literal["value_exc_vat", "value_inc_vat"] = "value_exc_vat"
    poll_interval_s: float = Field(default=1800.0, ge=10)
    timeout_s: float = Field(default=10.0, gt=0, le=120)


PriceSource = Annotated[ImbalancePriceSource | SchedulePriceSource | HttpPriceSource, Field(discriminator="type")]


class SoeBand(ConfigModel):
    """A preferred SoE range inside the hard bounds: leaving it costs `breach_p_per_kwh_h` per kWh outside
    it per hour, so the plan leaves it only where that pays."""

    low_kwh: float = Field(ge=0)
    high_kwh: float = Field(gt=0)
    breach_p_per_kwh_h: float = Field(ge=0, le=PRICE_CLIP_P_PER_KWH)

    def problems(self) -> ProblemList:
        if self.low_kwh > self.high_kwh:
            yield ("low_kwh",), f"must not be above high_kwh ({self.high_kwh:g})"


class PlannerConfig(ConfigModel):
    price: PriceSource = Field(default_factory=lambda: ImbalancePriceSource(type="imbalance"),
                               description="the price the site's energy settles at, per settlement period")
    default_price_p_per_kwh: float | None = Field(
        default=None, description="assumed where the source has no price (else the last known price)")
    throughput_cost_gbp_per_mwh: float = Field(
        default=0.0, ge=0, description="battery wear: cost per MWh discharged (one full cycle = the usable energy)")
    band: SoeBand | None = Field(default=None, description="preferred SoE band inside soe_min..soe_max")
    terminal_value_p_per_kwh: float | None = Field(
        default=None, description="value of each kWh left in the battery at the horizon's end "
                                  "(default: the mean price over the horizon)")
    horizon_h: float = Field(default=48.0, gt=0, le=168)
    solve_time_limit_s: float = Field(default=2.0, gt=0, le=60, description="wall-clock limit of one re-plan")
    min_history_h: float = Field(
        default=24.0, ge=0, le=336,
        description="the daemon plans only once it has recorded this much imbalance-price history (a schedule "
                    "price source needs none): before that, the rule-based modes decide")
    max_plan_age_s: float = Field(
        default=3600.0, gt=0, description="an older plan is stale: the plan mode goes inactive")

    @property
    def throughput_p_per_kwh(self) -> float:
        return self.throughput_cost_gbp_per_mwh / 10.0  # GBP/MWh -> p/kWh
