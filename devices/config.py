"""What every device entry of the site file has in common."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from uuid import UUID

from controller.core.config import ConfigModel, ProblemList
from controller.core.schema import Field

SECONDS_PER_DAY = 86400


class DeviceConfigBase(ConfigModel):
    type: str
    name: str = Field(min_length=1, description="unique name on this site, used in logs and topics")
    id: UUID = Field(description="device id in the cloud registry")
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    poll_interval_s: float = Field(default=60.0, gt=0, le=3600, description="wall-clock aligned")
    timeout_s: float = Field(default=2.0, gt=0, le=120, description="per request")
    telemetry_interval_s: float = Field(
        default=60.0, gt=0, le=3600, description="one reading per slot is recorded and uploaded")
    telemetry: Literal["first", "mean"] = Field(
        default="first", description=(
            "record the poll at the slot's start (if it failed, the slot's first poll that answered, at its "
            "own time), or the mean of the slot's polls"))
    backoff_initial_s: float = Field(default=1.0, gt=0, description="reconnect backoff, doubled per failure")
    backoff_max_s: float = Field(default=60.0, gt=0, description="reconnect backoff cap")

    def problems(self) -> ProblemList:
        if SECONDS_PER_DAY % self.poll_interval_s:
            yield ("poll_interval_s",), "must divide a day evenly (e.g. 1, 2, 5, 10, 15, 30, 60) to align to the clock"
        if SECONDS_PER_DAY % self.telemetry_interval_s:
            yield ("telemetry_interval_s",), "must divide a day evenly to align to the clock"
        elif self.telemetry_interval_s % self.poll_interval_s and self.poll_interval_s < self.telemetry_interval_s:
            yield ("telemetry_interval_s",), "must be a multiple of poll_interval_s"
        if self.backoff_max_s < self.backoff_initial_s:
            yield ("backoff_max_s",), "must be at least backoff_initial_s"

    def endpoint(self) -> tuple[str, int, int] | None:
        """The address no other device may share (host, port, unit); None where devices share one by design."""
        return (self.host, self.port, 0)

    def problems_among(self, earlier: Sequence[DeviceConfigBase]) -> ProblemList:
        """Checks against the devices listed before this one (a kind's shared resources); paths relative to it."""
        return iter(())


class ModbusDeviceConfig(DeviceConfigBase):
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=255)

    def endpoint(self) -> tuple[str, int, int] | None:
        return (self.host, self.port, self.unit_id)
