from __future__ import annotations

from typing import Literal

from controller.core.schema import Field
from devices.config import DeviceConfigBase


class HeatMbusConfig(DeviceConfigBase):
    type: Literal["heat_mbus"]
    timeout_s: float = Field(default=3.0, gt=0, le=120, description="per request through the gateway")
    mbus_address: int = Field(ge=0, le=250, description="primary M-Bus address behind the gateway")
    baud: int = Field(default=2400, description="bus speed behind the gateway (for timing only)")
    down_poll_interval_s: float = Field(
        default=600.0, gt=0,
        description="a meter that keeps failing is polled at most this rarely (it holds the shared bus while it fails)")

    def endpoint(self) -> tuple[str, int, int] | None:
        return (self.host, self.port, self.mbus_address)
