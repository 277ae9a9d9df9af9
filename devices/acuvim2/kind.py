"""The `acuvim2` kind: the Acuvim II power meter, the controller's site (or battery) meter."""

from __future__ import annotations

from controller.core.clock import Clock
from devices.acuvim2.config import Acuvim2Config
from devices.acuvim2.driver import Acuvim2
from devices.kind import CloudRoute, DeviceKind, Role, same_names
from devices.links import DeviceLinks

_PHASES = {"a": "l1", "b": "l2", "c": "l3"}

# The field's existing table: its column names (fixed by the dashboards) are our field names.
CLOUD = CloudRoute("mg_meter_readings", same_names(
    "frequency", "voltage_line_average", "current_phase_a", "current_phase_b", "current_phase_c",
    "current_phase_average", "power_phase_a_active", "power_phase_b_active", "power_phase_c_active",
    "power_total_active", "power_total_reactive", "power_total_apparent", "power_factor_total",
    "energy_imported_active", "energy_exported_active",
    "energy_imported_phase_a_active", "energy_imported_phase_b_active", "energy_imported_phase_c_active",
    "energy_exported_phase_a_active", "energy_exported_phase_b_active", "energy_exported_phase_c_active",
    "energy_imported_reactive", "energy_exported_reactive", "energy_imported_apparent", "energy_exported_apparent"))

MEASUREMENTS: dict[str, str] = {
    "frequency": "electricity.frequency",
    "voltage_line_average": "electricity.voltage.average",
    "current_phase_average": "electricity.current.average",
    "power_total_active": "electricity.power.active.consumed.total",
    "power_total_reactive": "electricity.power.reactive.consumed.total",
    "power_total_apparent": "electricity.power.apparent.total",
    "power_factor_total": "electricity.powerfactor.total",
    "energy_imported_active": "electricity.energy.active.consumed.total",
    "energy_exported_active": "electricity.energy.active.produced.total",
    "energy_imported_reactive": "electricity.energy.reactive.consumed.total",
    "energy_exported_reactive": "electricity.energy.reactive.produced.total",
    "energy_imported_apparent": "electricity.energy.apparent.consumed.total",
    "energy_exported_apparent": "electricity.energy.apparent.produced.total",
    **{f"current_phase_{p}": f"electricity.current.{line}" for p, line in _PHASES.items()},
    **{f"power_phase_{p}_active": f"electricity.power.active.consumed.{line}" for p, line in _PHASES.items()},
    **{f"energy_imported_phase_{p}_active": f"electricity.energy.active.consumed.{ln}" for p, ln in _PHASES.items()},
    **{f"energy_exported_phase_{p}_active": f"electricity.energy.active.produced.{ln}" for p, ln in _PHASES.items()},
}


def create(config: Acuvim2Config, clock: Clock, links: DeviceLinks) -> Acuvim2:
    # Each meter has a Modbus connection of its own: nothing shared.
    return Acuvim2(config, clock)


KIND = DeviceKind(Acuvim2Config, create, Role.METER, cloud=CLOUD, measurements=MEASUREMENTS)
