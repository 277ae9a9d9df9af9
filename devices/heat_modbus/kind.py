"""The `heat_modbus` kind: heat meters with a Modbus TCP module, read through a register map."""

from __future__ import annotations

from controller.core.clock import Clock
from devices.heat import HEAT_CLOUD, HEAT_MEASUREMENTS
from devices.heat_modbus.config import HeatModbusConfig
from devices.heat_modbus.driver import HeatModbusMeter
from devices.kind import DeviceKind, Role
from devices.links import DeviceLinks


def create(config: HeatModbusConfig, clock: Clock, links: DeviceLinks) -> HeatModbusMeter:
    # Each meter has a Modbus connection of its own: nothing shared.
    return HeatModbusMeter(config, clock)


KIND = DeviceKind(HeatModbusConfig, create, Role.OTHER, cloud=HEAT_CLOUD, measurements=HEAT_MEASUREMENTS)
