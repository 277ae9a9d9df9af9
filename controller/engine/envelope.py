"""The safety envelope: the last word on every setpoint, whatever the modes or an operator asked for.

Order (modes.md step 6, with our improvements):
0. stale or missing site power / SoE -> 0 kW ("stale_data");
1. the battery's own charge/discharge limits ("bess_power");
2. the site import/export limits, predicting site power after the change as `site + b - new`, where
   `b` is the battery's power behind the site reading, known only as an interval (`battery_interval`):
   the measured battery power when a measurement matches the site reading's time (widened by the
   ramp rate over the time between them), else the worst case the battery could be doing (the span
   the control loop gives: 0, the last measurement and every setpoint tried since; `decide`: 0 or
   the last setpoint). The import limit is held for the top of the interval, the export limit for
   the bottom, moving just far enough to reach the limit (less `site_limit_margin_kw` of headroom),
   never past the battery's own limits; when both cannot hold, the import limit wins
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
    # How fast the battery's power can move (the faster of its ramp rates), and how far apart in time a
    # battery measurement and the site reading may be for the one to stand for the battery behind the other.
    battery_ramp_kw_per_s: float = math.inf
    battery_match_s: float = 1.0


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


MEASURED = "measured"
WORST_CASE = "worst_case"
LAST_SETPOINT = "last_setpoint"


def battery_interval(state: SiteState, limits: Limits) -> tuple[float, float, str]:
    """(low, high, source): where the battery's power was when the site reading was taken (+ discharge)."""
    m, age, site_age = state.battery_power_kw, state.battery_power_age_s, state.site_power_age_s
    if (m is not None and math.isfinite(m) and math.isfinite(age) and 0.0 <= age <= limits.max_reading_age_s
            and math.isfinite(site_age)):
        skew = state.battery_power_skew_s
        dt = abs(age - site_age) if skew is None or not math.isfinite(skew) else max(0.0, skew)
        if dt <= limits.battery_match_s:
            slack = 0.0 if dt == 0.0 else limits.battery_ramp_kw_per_s * dt
            if math.isfinite(slack):
                return m - slack, m + slack, MEASURED
    if state.battery_span_kw is not None:
        a, b = state.battery_span_kw
        if not math.isnan(a) and not math.isnan(b):
            return min(a, b, 0.0), max(a, b, 0.0), WORST_CASE
        return -math.inf, math.inf, WORST_CASE
    last = state.last_setpoint_kw if math.isfinite(state.last_setpoint_kw) else 0.0
    return min(0.0, last), max(0.0, last), LAST_SETPOINT


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
    b_lo, b_hi, _ = battery_interval(state, limits)
    import_kw = max(0.0, limits.import_kw - limits.site_margin_kw)
    export_kw = max(0.0, limits.export_kw - limits.site_margin_kw)
    # Site power with the battery idle lies in [net_lo, net_hi]; the result p must keep
    # net_hi - p <= import_kw and net_lo - p >= -export_kw.
    at_least = state.site_power_kw + b_hi - import_kw
    at_most = state.site_power_kw + b_lo + export_kw
    if p < at_least:
        moved = min(at_least, hi)
        if moved > p:
            p = moved
            constraints.append("site_import")
    elif p > at_most:
        moved = max(at_most, lo, at_least)  # never into the import limit
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
