from __future__ import annotations

from typing import Literal

from pydantic import Field

from devices.config import DeviceConfigBase


class EmliteConfig(DeviceConfigBase):
    type: Literal["emlite"]
    port: int = Field(default=8080, ge=1, le=65535)
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="connect and read, per request")
    serial: str | None = Field(default=None, description="meter serial, checked against the meter when set")
    twin_element: bool = Field(default=False, description="meter has elements A and B")
    link: str | None = Field(
        default=None, description="name of the shared uplink (4G router); defaults to the host")
