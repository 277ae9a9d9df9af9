"""The one-line reason of a decision, from its record body alone (`decision.record_body`).

"discharging 250 kW: system short, NIV +184 MWh for SP 16:00, peak discharge asking for full power,
capped at the battery's limit". Pure: the same body gives the same line, so the control loop (which
adds it to the record as `explanation`), `flux-edge status`, the web page, MQTT and `flux-edge decide`
all say the same thing. A body from before these keys existed still gets a line, only a shorter one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

IDLE_BELOW_KW = 0.05

# What each mode type does when its target is the power, in words.
MODE_WORDS: dict[str, str] = {
    "axle": "Axle dispatch",
    "dynamic_peak_discharge": "peak discharge",
    "dynamic_peak_approach": "peak approach (charging before the peak)",
    "niv_chase": "NIV chase",
    "charge_to_soe": "charging to its target SoE",
    "discharge_to_soe": "discharging to its target SoE",
    "import_avoidance": "covering the site load (import avoidance)",
    "export_avoidance": "absorbing the site's export (export avoidance)",
    "import_avoidance_when_short": "covering the site load while the system is short",
}
# Modes whose choice rests on the imbalance market: their line says what the market is.
MARKET_MODES = frozenset({"niv_chase", "dynamic_peak_discharge", "dynamic_peak_approach",
                          "import_avoidance_when_short"})
RESIDUAL_MODES = frozenset({"dynamic_peak_discharge"})
CONSTRAINT_WORDS: dict[str, str] = {
    "bess_power": "capped at the battery's limit",
    "site_import": "moved to keep the site's import within its limit",
    "site_export": "moved to keep the site's export within its limit",
    "soe_min": "held back at the minimum SoE",
    "soe_max": "held back at the maximum SoE",
    "invalid_request": "an invalid request ignored",
    "non_finite": "a non-finite result replaced by idle",
}
INPUT_WORDS = {"site_power_kw": "site power", "bess_soe_kwh": "SoE"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def kw(value: float) -> str:
    """250 -> "250", 12.34 -> "12.3"."""
    v = abs(value)
    return f"{v:.0f}" if abs(v - round(v)) < 0.05 else f"{v:.1f}"


def _clock(iso: Any, tz: tzinfo | None) -> str | None:
    if not isinstance(iso, str):
        return None
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if tz is not None and t.tzinfo is not None:
        t = t.astimezone(tz)
    return t.strftime("%H:%M")


def market_words(inputs: Mapping[str, Any], tz: tzinfo | None = None) -> list[str]:
    """["system short, NIV +184 MWh for SP 16:00", "price 45.2 p/kWh"] from the record's inputs."""
    out: list[str] = []
    volume = inputs.get("imbalance_volume")
    if isinstance(volume, Mapping) and (v := _num(volume.get("value"))) is not None:
        side = "short" if v > 0 else "long" if v < 0 else "balanced"
        sp = _clock(volume.get("settlement_period"), tz)
        out.append(f"system {side}, NIV {v:+.0f} MWh" + (f" for SP {sp}" if sp else ""))
    price = inputs.get("imbalance_price")
    if isinstance(price, Mapping) and (p := _num(price.get("value"))) is not None:
        sp = _clock(price.get("settlement_period"), tz)
        out.append(f"price {p:.1f} p/kWh" + (f" for SP {sp}" if sp and not out else ""))
    return out


def _mode_words(name: str, kind: str, body: Mapping[str, Any], tz: tzinfo | None) -> str:
    words = MODE_WORDS.get(kind, f"mode {name}")
    if name != kind and kind in MODE_WORDS:
        words += f" ({name})"
    if kind == "axle":
        step = (body.get("inputs") or {}).get("axle_step")
        if isinstance(step, Mapping):
            until = _clock(step.get("end"), tz)
            words = f"Axle step {step.get('action')}" + (f" until {until}" if until else "")
    proposal = (body.get("proposals") or {}).get(name)
    if isinstance(proposal, Mapping) and proposal.get("target") in ("inf", "-inf"):
        words += " asking for full power"
    elif kind in RESIDUAL_MODES and isinstance(proposal, Mapping):
        # These modes may cover just the site's load (import avoidance inside them): say which it is.
        inputs = body.get("inputs") or {}
        target, site = _num(proposal.get("target")), _num(inputs.get("site_power_kw"))
        if target is not None and site is not None:
            residual = site + (_num(inputs.get("bess_last_target_kw")) or 0.0)
            if abs(target - residual) < 0.5:
                words += " covering the site load"
    return words


def _override_words(override: Mapping[str, Any], tz: tzinfo | None) -> tuple[str, str | None]:
    until = _clock(override.get("until"), tz)
    by = override.get("source")
    tail = (f" by {by}" if by else "") + (f" until {until}" if until else "")
    manual = _num(override.get("manual_setpoint_kw"))
    if manual is not None:
        return f"manual override {manual:g} kW{tail}", None
    mode = override.get("mode")
    return f"mode override: only {mode}{tail}", str(mode) if mode is not None else None


def _stale_words(body: Mapping[str, Any]) -> str:
    inputs = body.get("inputs") or {}
    names: Sequence[Any] = body.get("stale_inputs") or [
        n for n in INPUT_WORDS if inputs.get(n) is None or inputs.get(n.replace("_kw", "_age_s")) is None]
    limit = _num(body.get("max_reading_age_s"))
    parts = []
    for n in names:
        label = INPUT_WORDS.get(str(n), str(n))
        age_key = {"site_power_kw": "site_power_age_s", "bess_soe_kwh": "bess_soe_age_s"}.get(str(n), "")
        value, age = inputs.get(str(n)), _num(inputs.get(age_key))
        if value is None or age is None:
            parts.append(f"{label} missing")
        else:
            parts.append(f"{label} {age:.0f} s old" + (f" (allowed {limit:g} s)" if limit is not None else ""))
    return "stale data: " + (", ".join(parts) if parts else "site power or SoE too old") + ", safe idle"


def explain(body: Mapping[str, Any], tz: tzinfo | None = None) -> str:
    """The reason line of one decision record. `tz`: the site's zone for clock times (default: as recorded)."""
    target = _num(body.get("target_kw")) or 0.0
    if abs(target) < IDLE_BELOW_KW:
        head = "idle at 0 kW"
    else:
        head = f"{'discharging' if target > 0 else 'charging'} {kw(target)} kW"
    constraints = [str(c) for c in body.get("constraints") or []]
    parts: list[str] = []
    if "internal_error" in constraints:
        return f"{head}: internal error, safe idle"
    if "stale_data" in constraints:
        parts.append(_stale_words(body))
        return f"{head}: " + ", ".join(parts)
    override = body.get("override")
    only_mode: str | None = None
    manual = False
    if isinstance(override, Mapping):
        words, only_mode = _override_words(override, tz)
        manual = only_mode is None
        parts.append(words)
    types: Mapping[str, Any] = body.get("mode_types") or {}
    decided = body.get("decided_by")
    if "decided_by" not in body and body.get("requested_kw") is not None:
        decided = next(iter(body.get("effective_modes") or []), None)  # a record from before `decided_by`
    inputs = body.get("inputs") or {}
    if not manual:
        if isinstance(decided, str):
            kind = str(types.get(decided, decided))
            if kind in MARKET_MODES:
                parts += market_words(inputs, tz)
            parts.append(_mode_words(decided, kind, body, tz))
        elif only_mode is not None:
            parts.append(f"{only_mode} has nothing to do now")
        else:
            active = [str(a) for a in body.get("active_modes") or []]
            parts.append("no mode set a power" + (f" ({', '.join(active)} only bound it)" if active else ""))
    parts += [CONSTRAINT_WORDS.get(c, c) for c in constraints]
    if body.get("dry_run"):
        parts.append("dry run: not written")
    return f"{head}: " + ", ".join(parts)
