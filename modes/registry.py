"""Mode logic by type, and building a site's modes in priority order."""

from __future__ import annotations

from collections import Counter
from typing import Any

from controller.config.site import ControllerConfig
from modes.axle_logic import Axle
from modes.base import Mode, ModeContext
from modes.charge_to_soe_logic import ChargeToSoe
from modes.discharge_to_soe_logic import DischargeToSoe
from modes.dynamic_peak_approach_logic import DynamicPeakApproach
from modes.dynamic_peak_discharge_logic import DynamicPeakDischarge
from modes.export_avoidance_logic import ExportAvoidance
from modes.import_avoidance_logic import ImportAvoidance
from modes.import_avoidance_when_short_logic import ImportAvoidanceWhenShort
from modes.niv_chase_logic import NivChase

MODE_CLASSES: dict[str, type[Mode[Any]]] = {cls.type: cls for cls in (
    Axle, DischargeToSoe, DynamicPeakDischarge, NivChase, ChargeToSoe, DynamicPeakApproach, ImportAvoidance,
    ExportAvoidance, ImportAvoidanceWhenShort)}


def build_modes(controller: ControllerConfig) -> list[Mode[Any]]:
    """The site's modes, highest priority first. A mode is named by its `name`, else its type (with `#2`,
    `#3`... when a type appears more than once)."""
    ctx = ModeContext.of(controller)
    order = sorted(range(len(controller.modes)), key=controller.effective_priority)
    types = Counter(m.type for m in controller.modes)
    seen: Counter[str] = Counter()
    modes: list[Mode[Any]] = []
    for i in order:
        cfg = controller.modes[i]
        seen[cfg.type] += 1
        name = cfg.name or (cfg.type if types[cfg.type] == 1 or seen[cfg.type] == 1 else f"{cfg.type}#{seen[cfg.type]}")
        modes.append(MODE_CLASSES[cfg.type](cfg, ctx, name))
    return modes
