"""The `powerpack` kind: the Tesla PowerPack, the battery the controller commands."""

from __future__ import annotations

from controller.core.clock import Clock
from devices.kind import CloudRoute, DeviceKind, Role
from devices.links import DeviceLinks
from devices.powerpack.config import PowerPackConfig
from devices.powerpack.driver import PowerPack

# The field's existing battery table, with its own column names.
CLOUD = CloudRoute("mg_bess_readings", {"soe_kwh": "soe", "target_power_kw": "target_power"})

MEASUREMENTS: dict[str, str] = {
    "soe_kwh": "battery.energy.stored",
    "target_power_kw": "battery.power.active.setpoint",
    "available_blocks": "battery.blocks.available",
}


def create(config: PowerPackConfig, clock: Clock, links: DeviceLinks) -> PowerPack:
    # The battery has a Modbus connection of its own: nothing shared.
    return PowerPack(config, clock)


KIND = DeviceKind(PowerPackConfig, create, Role.BATTERY, cloud=CLOUD, measurements=MEASUREMENTS)
