"""The safety envelope: the last word on every setpoint, whatever the modes or an operator asked for.

Order (modes.md step 6, with our improvements):
0. stale or missing site power / SoE -> 0 kW ("stale_data");
1. the battery's own charge/discharge limits ("bess_power");
2. the site import/export limits, predicting site power after the change as
   `site - (new - last)` and moving just far enough to reach the limit (less the configured
   `site_limit_margin_kw` of headroom), but never past the battery's own limits
   ("site_import" / "site_export");
3. SoE bounds: no discharge at or below soe_min, no charge at or above soe_max ("soe_min" / "soe_max"),
   and near a bound no more power than the energy left before it can deliver until the next decision
   (the SoE reading's age plus one control period), so a tick can never carry the battery across.
   Being last, this step can only move the setpoint towards 0, never flip its sign.
The result is always finite and within the battery's limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.engine.site_state import SiteState

STALE = "stale_data"


@dataclass(frozen=True, slots=True)
class Limits:
    """A site's safety limits; the application builds them from the site file (`ControllerConfig.limits`)."""

    charge_kw: float
    discharge_kw: float
    import_kw: float
    export_kw: float
    soe_min_kwh: float
    soe_max_kwh: float
    max_reading_age_s: float
    # Seconds until the next decision at the latest (the control period): how long a setpoint may run.
    soe_horizon_s: float = 0.0
    charge_efficiency: float = 1.0
    # Headroom kept inside the site limits, for load and solar changes between two decisions.
    site_margin_kw: float = 0.0


@dataclass(frozen=True, slots=True)
class Enveloped:
    setpoint_kw: float
    constraints: tuple[str, ...]
    stale_inputs: tuple[str, ...] = ()


def stale_inputs(state: SiteState, limits: Limits) -> tuple[str, ...]:
    out = []
    for name, value, age in (("site_power_kw", state.site_power_kw, state.site_power_age_s),
                             ("bess_soe_kwh", state.soe_kwh, state.soe_age_s)):
        if value is None or not math.isfinite(value) or not math.isfinite(age) or age > limits.max_reading_age_s:
            out.append(name)
    return tuple(out)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def apply_envelope(requested_kw: float, state: SiteState, limits: Limits) -> Enveloped:
    stale = stale_inputs(state, limits)
    if stale:
        return Enveloped(0.0, (STALE,), stale)
    assert state.site_power_kw is not None and state.soe_kwh is not None
    constraints: list[str] = []
    lo, hi = -limits.charge_kw, limits.discharge_kw
    p = requested_kw
    if math.isnan(p):
        p = 0.0
        constraints.append("invalid_request")
    clamped = _clamp(p, lo, hi)
    if clamped != p:
        constraints.append("bess_power")
    p = clamped
    last = state.last_setpoint_kw if math.isfinite(state.last_setpoint_kw) else 0.0
    net = state.site_power_kw + last  # site power with the battery idle
    predicted = net - p
    import_kw = max(0.0, limits.import_kw - limits.site_margin_kw)
    export_kw = max(0.0, limits.export_kw - limits.site_margin_kw)
    if predicted > import_kw:
        moved = min(net - import_kw, hi)
        if moved > p:
            p = moved
            constraints.append("site_import")
    elif predicted < -export_kw:
        moved = max(net + export_kw, lo)
        if moved < p:
            p = moved
            constraints.append("site_export")
    horizon_h = (limits.soe_horizon_s + max(0.0, state.soe_age_s)) / 3600.0
    if p > 0:
        room_kwh = state.soe_kwh - limits.soe_min_kwh
        cap = 0.0 if room_kwh <= 0 else (room_kwh / horizon_h if horizon_h > 0 else p)
        if p > cap:
            p = cap
            constraints.append("soe_min")
    elif p < 0:
        room_kwh = limits.soe_max_kwh - state.soe_kwh
        stored_per_h = horizon_h * limits.charge_efficiency
        cap = 0.0 if room_kwh <= 0 else (room_kwh / stored_per_h if stored_per_h > 0 else -p)
        if -p > cap:
            p = -cap
            constraints.append("soe_max")
    if not math.isfinite(p):  # unreachable with finite limits; kept as the last line of defence
        return Enveloped(0.0, (*constraints, "non_finite"))
    return Enveloped(p + 0.0, tuple(constraints))
