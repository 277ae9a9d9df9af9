from __future__ import annotations

from typing import Literal

from controller.core.schema import Field
from devices.config import ModbusDeviceConfig


class PowerPackConfig(ModbusDeviceConfig):
    type: Literal["powerpack"]
    poll_interval_s: float = Field(default=2.0, gt=0, le=3600, description="fast: the controller uses it")
    nameplate_power_kw: float = Field(gt=0, description="inverter power, either direction")
    nameplate_energy_kwh: float = Field(gt=0)
    ramp_up_kw_per_s: float = Field(default=100.0, gt=0)
    ramp_down_kw_per_s: float = Field(default=100.0, gt=0)
    always_active: bool = Field(default=True, description="never let the battery enter power-saving")
    command_timeout_s: int = Field(
        default=10, ge=2, le=600, description="the battery idles by itself without a heartbeat this long")
