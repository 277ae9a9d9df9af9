"""Building one mode of a test controller, and times in the site's local time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from controller.config.site import ControllerConfig
from controller.engine.proposal import Proposal
from modes.base import Mode
from modes.catalog import build_modes

LONDON = ZoneInfo("Europe/London")
CONTROLLER: dict[str, Any] = {
    "site_meter": "site-meter", "battery": "bess", "soe_min_kwh": 50, "soe_max_kwh": 950,
    "battery_charge_limit_kw": 250, "battery_discharge_limit_kw": 250, "site_import_limit_kw": 300,
    "site_export_limit_kw": 350, "charge_efficiency": 0.92,
}


def build(mode: dict[str, Any], **controller: Any) -> Mode[Any]:
    cfg = ControllerConfig.model_validate({**CONTROLLER, **controller, "modes": [mode]})
    return build_modes(cfg.modes, cfg.mode_context())[0]


def local(text: str) -> datetime:
    """A London wall-clock time (first occurrence if repeated) as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(UTC)


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def close(a: Proposal | None, b: Proposal | None, tol: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is b
    for x, y in ((a.target, b.target), (a.min, b.min), (a.max, b.max)):
        if (x is None) != (y is None):
            return False
        if x is not None and y is not None and not (x == y or abs(x - y) <= tol * max(1.0, abs(y))):
            return False
    return True
