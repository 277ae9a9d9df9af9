"""Energy, revenue and limit accounting over the physics' own steps (not the controller's view of them).

Revenue estimate: sum over steps of discharged energy x price - charged energy x price, at the recorded
system price of the step's SP (p/kWh), reported in £. Charged energy is what the battery drew (AC side).
A limit violation is a physics step that ended with the battery beyond its charge/discharge limits, the
site beyond its import/export limits, or the SoE outside [soe_min, soe_max] by more than `soe_tolerance_kwh`.
The envelope works per tick: it stops discharge once a tick sees the SoE at or below soe_min, so the SoE can
pass a bound by what the battery moves in one tick plus its ramp to 0 (`soe_tolerance`); passing it by more
is a violation. Each kind counts violating steps and keeps its worst excess (the SoE's even within tolerance,
so the overshoot is visible).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from controller.engine.envelope import Limits

# Where the price of the day's change in stored energy came from (summary.json's `stored_energy_price_source`).
PRICE_FROM_OPTION = "stored_energy_price_option"
PRICE_FROM_PLANNER = "planner_terminal_value"
PRICE_FROM_DAY_MEAN = "day_mean_price"

VIOLATION_KINDS = ("soe_below_min", "soe_above_max", "battery_discharge_over_limit",
                   "battery_charge_over_limit", "site_import_over_limit", "site_export_over_limit")


@dataclass
class Violations:
    steps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VIOLATION_KINDS, 0))
    worst: dict[str, float] = field(default_factory=lambda: dict.fromkeys(VIOLATION_KINDS, 0.0))

    def check(self, kind: str, excess: float, tolerance: float = 0.0) -> None:
        if excess > 0:
            self.worst[kind] = max(self.worst[kind], excess)
            if excess > tolerance:
                self.steps[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.steps.values())


@dataclass
class Accounts:
    limits: Limits
    soe_tolerance_kwh: float = 0.0
    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0
    revenue_p: float = 0.0
    site_import_kwh: float = 0.0
    site_export_kwh: float = 0.0
    peak_import_kw: float = 0.0
    peak_export_kw: float = 0.0
    soe_low_kwh: float = math.inf
    soe_high_kwh: float = -math.inf
    seconds: float = 0.0
    steps: int = 0
    violations: Violations = field(default_factory=Violations)

    def add(self, dt_s: float, battery_kw: float, site_kw: float, soe_kwh: float, price_p_per_kwh: float) -> None:
        """One physics step of `dt_s` seconds: powers held over it, the SoE at its end."""
        hours = dt_s / 3600.0
        energy = battery_kw * hours  # + discharged, - charged
        if energy > 0:
            self.discharged_kwh += energy
        else:
            self.charged_kwh -= energy
        self.revenue_p += energy * price_p_per_kwh
        if site_kw > 0:
            self.site_import_kwh += site_kw * hours
        else:
            self.site_export_kwh -= site_kw * hours
        self.peak_import_kw = max(self.peak_import_kw, site_kw)
        self.peak_export_kw = max(self.peak_export_kw, -site_kw)
        self.soe_low_kwh = min(self.soe_low_kwh, soe_kwh)
        self.soe_high_kwh = max(self.soe_high_kwh, soe_kwh)
        self.seconds += dt_s
        self.steps += 1
        lim, v = self.limits, self.violations
        v.check("soe_below_min", lim.soe_min_kwh - soe_kwh, self.soe_tolerance_kwh)
        v.check("soe_above_max", soe_kwh - lim.soe_max_kwh, self.soe_tolerance_kwh)
        v.check("battery_discharge_over_limit", battery_kw - lim.discharge_kw)
        v.check("battery_charge_over_limit", -battery_kw - lim.charge_kw)
        v.check("site_import_over_limit", site_kw - lim.import_kw)
        v.check("site_export_over_limit", -site_kw - lim.export_kw)

    @property
    def revenue_gbp(self) -> float:
        return self.revenue_p / 100.0

    def summary(self, nameplate_energy_kwh: float) -> dict[str, Any]:
        return {
            "charged_kwh": round(self.charged_kwh, 3),
            "discharged_kwh": round(self.discharged_kwh, 3),
            # One full cycle = the nameplate energy discharged once.
            "equivalent_full_cycles": round(self.discharged_kwh / nameplate_energy_kwh, 4),
            "imbalance_revenue_gbp": round(self.revenue_gbp, 2),
            "site_import_kwh": round(self.site_import_kwh, 3),
            "site_export_kwh": round(self.site_export_kwh, 3),
            "peak_import_kw": round(self.peak_import_kw, 3),
            "peak_export_kw": round(self.peak_export_kw, 3),
            "soe_min_seen_kwh": round(self.soe_low_kwh, 3) if self.steps else None,
            "soe_max_seen_kwh": round(self.soe_high_kwh, 3) if self.steps else None,
            "limit_violations": self.violations.total,
            "limit_violation_steps": dict(self.violations.steps),
            "limit_violation_worst": {k: round(x, 6) for k, x in self.violations.worst.items()},
            "soe_tolerance_kwh": round(self.soe_tolerance_kwh, 6),
            "physics_steps": self.steps,
        }
