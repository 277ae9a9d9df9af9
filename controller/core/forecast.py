"""The contract between forecasters and the planner: for each settlement period of the horizon and each
quantity, an expected value and the bounds of an 80 % interval.

Forecasters (`controller.forecast`) produce a `Forecast`; the planner (`controller.planner`) and
`flux-edge forecast` consume it. Quantities are named as in the `forecast --json` contract of the
spec ("Planning contract"): kW means for the period, prices in p/kWh.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NET_LOAD = "net_load_kw"  # site load net of solar, battery removed (+ = the site would import)
LOAD = "load_kw"  # gross load, where solar is known
SOLAR = "solar_kw"  # generation (>= 0), where known
PRICE = "price_p_per_kwh"  # the price the site's energy settles at (imbalance price, actual or forecast)
QUANTITIES = (NET_LOAD, LOAD, SOLAR, PRICE)


@dataclass(frozen=True, slots=True)
class Band:
    """An expected value and its 80 % interval: always finite, lower <= value <= upper."""

    value: float
    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not all(math.isfinite(x) for x in (self.value, self.lower, self.upper)):
            raise ValueError(f"a forecast band must be finite: {self}")
        if not self.lower <= self.value <= self.upper:
            raise ValueError(f"a forecast band must have lower <= value <= upper: {self}")

    @classmethod
    def exact(cls, value: float) -> Band:
        """A known value (an actual, or a published price): no spread."""
        return cls(value, value, value)

    def as_json(self) -> dict[str, float]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True, slots=True)
class PeriodForecast:
    start: datetime  # the settlement period's start (aware; UTC on the wire)
    values: Mapping[str, Band]  # quantity -> band; a quantity nobody could forecast is absent

    def get(self, quantity: str) -> Band | None:
        return self.values.get(quantity)


@dataclass(frozen=True)
class Forecast:
    """What was forecast at `made_at` for the periods ahead, by which forecaster, and what it lacked."""

    made_at: datetime
    periods: tuple[PeriodForecast, ...]
    forecasters: Mapping[str, str] = field(default_factory=dict)  # quantity -> forecaster name
    notes: tuple[str, ...] = ()  # e.g. "net_load_kw: 9 of 28 days of history; interval widened"

    def series(self, quantity: str) -> list[Band | None]:
        return [p.get(quantity) for p in self.periods]

    def as_json(self) -> dict[str, Any]:
        """The `flux-edge forecast --json` answer (spec README, "Planning contract"), extended with
        the forecasters' names and notes."""
        return {
            "at": self.made_at.isoformat(),
            "periods": [{"start": p.start.isoformat(), **{q: b.as_json() for q, b in p.values.items()}}
                        for p in self.periods],
            "forecasters": dict(self.forecasters),
            "notes": list(self.notes),
        }
