from __future__ import annotations

from typing import Literal

from controller.core.schema import Field
from devices.config import ModbusDeviceConfig


class Acuvim2Config(ModbusDeviceConfig):
    type: Literal["acuvim2"]
    pt1: float = Field(default=1.0, gt=0, description="PT primary (V)")
    pt2: float = Field(default=1.0, gt=0, description="PT secondary (V)")
    ct1: float = Field(default=5.0, gt=0, description="CT primary (A)")
    ct2: float = Field(default=5.0, gt=0, description="CT secondary (A)")
