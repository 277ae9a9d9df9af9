"""A mode's wish for this tick: an optional target and optional bounds for lower-priority modes (kW, + discharge)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

INF = math.inf


@dataclass(frozen=True, slots=True)
class Proposal:
    """±inf means "as hard as allowed"; the envelope limits it later."""

    target: float | None = None
    min: float | None = None
    max: float | None = None

    @property
    def empty(self) -> bool:
        return self.target is None and self.min is None and self.max is None

    def as_json(self) -> dict[str, Any]:
        return {"target": json_number(self.target), "min": json_number(self.min), "max": json_number(self.max)}


def json_number(x: float | None) -> float | str | None:
    """JSON has no infinities: they travel as the strings "inf" and "-inf"."""
    if x is None or math.isfinite(x):
        return x
    return "inf" if x > 0 else "-inf"


def charge_allowing_more(power_kw: float) -> Proposal:
    """Charge at `power_kw` (> 0) and let lower-priority modes charge harder."""
    return Proposal(target=-power_kw, max=-power_kw)


def discharge_allowing_more(power_kw: float) -> Proposal:
    """Discharge at `power_kw` (> 0) and let lower-priority modes discharge harder."""
    return Proposal(target=power_kw, min=power_kw)


def import_avoidance(residual_load_kw: float, *, allow_more_discharge: bool = True) -> Proposal:
    """Cover the site's net load so that it does not import (modes.md helper)."""
    x = residual_load_kw
    if x < 0:
        return Proposal(min=x)  # the site exports anyway: only stop others charging into an import
    return Proposal(target=x, min=x, max=None if allow_more_discharge else x)


def export_avoidance(residual_load_kw: float, *, allow_more_charge: bool = True) -> Proposal:
    """Absorb the site's net export so that it does not export (mirror image of import avoidance)."""
    x = residual_load_kw
    if x > 0:
        return Proposal(max=x)
    return Proposal(target=x, max=x, min=None if allow_more_charge else x)
