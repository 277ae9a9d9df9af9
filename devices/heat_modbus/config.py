from __future__ import annotations

from typing import Literal

from controller.core.config import ConfigModel
from controller.core.schema import Field
from devices.config import ModbusDeviceConfig


class RegisterSpec(ConfigModel):
    address: int = Field(ge=0, le=65535)
    data_type: Literal["uint16", "int16", "uint32", "int32", "float32", "uint64", "int64", "float64"] = "uint32"
    word_order: Literal["big", "little"] = "big"
    scale: float = Field(default=1.0, description="raw value x scale = value in the field's unit")


class HeatModbusConfig(ModbusDeviceConfig):
    type: Literal["heat_modbus"]
    registers: dict[Literal[
        "energy_kwh", "volume_m3", "power_kw", "flow_m3h",
        "flow_temperature_c", "return_temperature_c", "temperature_difference_k", "error_flags",
    ], RegisterSpec] = Field(min_length=1, description="field name -> register")
