"""Acuvim II Modbus register map (zero-based protocol addresses, see spec devices.md).

Floats are IEEE-754 float32 on the secondary side (scaled by PT and CT ratios); energies int32 in 0.1 kWh.
"""

from __future__ import annotations

from typing import Literal

Quantity = Literal["frequency", "voltage", "current", "power", "power_factor"]

FLOAT_START = 12288
FLOAT_COUNT = 60  # 12288 .. 12347
# field -> (address, what it measures: decides its scaling and its plausible range)
FLOAT_FIELDS: dict[str, tuple[int, Quantity]] = {
    "frequency": (12288, "frequency"),
    "voltage_line_average": (12304, "voltage"),
    "current_phase_a": (12306, "current"),
    "current_phase_b": (12308, "current"),
    "current_phase_c": (12310, "current"),
    "current_phase_average": (12312, "current"),
    "power_phase_a_active": (12316, "power"),
    "power_phase_b_active": (12318, "power"),
    "power_phase_c_active": (12320, "power"),
    "power_total_active": (12322, "power"),
    "power_total_reactive": (12330, "power"),
    "power_total_apparent": (12338, "power"),
    "power_factor_total": (12346, "power_factor"),
}

ENERGY_START = 16456
ENERGY_COUNT = 8
PHASE_ENERGY_START = 17952
PHASE_ENERGY_COUNT = 12
ENERGY_FIELDS: dict[str, int] = {
    "energy_imported_active": 16456,
    "energy_exported_active": 16458,
    "energy_imported_reactive": 16460,
    "energy_exported_reactive": 16462,
    "energy_imported_phase_a_active": 17952,
    "energy_exported_phase_a_active": 17954,
    "energy_imported_phase_b_active": 17956,
    "energy_exported_phase_b_active": 17958,
    "energy_imported_phase_c_active": 17960,
    "energy_exported_phase_c_active": 17962,
}
ENERGY_KWH_PER_COUNT = 0.1
