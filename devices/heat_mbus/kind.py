"""The `heat_mbus` kind: heat meters on M-Bus behind a shared TCP gateway."""

from __future__ import annotations

from devices.heat import HEAT_CLOUD, HEAT_MEASUREMENTS
from devices.heat_mbus.config import HeatMbusConfig
from devices.heat_mbus.driver import HeatMbusMeter
from devices.kind import DeviceKind, Role

KIND = DeviceKind(HeatMbusConfig, HeatMbusMeter, Role.OTHER, cloud=HEAT_CLOUD, measurements=HEAT_MEASUREMENTS)
