"""Every mode type the site file may name, and the default priority order (highest first)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from modes.axle import AxleModeConfig
from modes.charge_to_soe import ChargeToSoeConfig
from modes.discharge_to_soe import DischargeToSoeConfig
from modes.dynamic_peak_approach import DynamicPeakApproachConfig
from modes.dynamic_peak_discharge import DynamicPeakDischargeConfig
from modes.export_avoidance import ExportAvoidanceConfig
from modes.import_avoidance import ImportAvoidanceConfig
from modes.import_avoidance_when_short import ImportAvoidanceWhenShortConfig
from modes.niv_chase import NivChaseConfig

ModeConfig = Annotated[
    AxleModeConfig
    | DischargeToSoeConfig
    | DynamicPeakDischargeConfig
    | NivChaseConfig
    | ChargeToSoeConfig
    | DynamicPeakApproachConfig
    | ImportAvoidanceConfig
    | ExportAvoidanceConfig
    | ImportAvoidanceWhenShortConfig,
    Field(discriminator="type"),
]

DEFAULT_ORDER: tuple[str, ...] = (
    "axle",
    "discharge_to_soe",
    "dynamic_peak_discharge",
    "niv_chase",
    "charge_to_soe",
    "dynamic_peak_approach",
    "import_avoidance",
    "export_avoidance",
    "import_avoidance_when_short",
)
