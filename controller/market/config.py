from __future__ import annotations

from controller.core.config import ConfigModel, Credential, Secret
from controller.core.schema import Field


class ModoConfig(ConfigModel):
    base_url: str = Field(default="https://api.modoenergy.com", min_length=1)
    poll_interval_s: float = Field(default=60.0, gt=0, description="price and volume are polled alternately")
    timeout_s: float = Field(default=10.0, gt=0)


class AxleConfig(ConfigModel):
    base_url: str = Field(min_length=1)
    asset_id: str = Field(min_length=1)
    username: Credential
    password: Secret
    schedule_poll_interval_s: float = Field(default=10.0, gt=0)
    telemetry_upload_interval_s: float = Field(default=10.0, gt=0)
    token_refresh_s: float = Field(default=20.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    max_telemetry_age_s: float = Field(default=30.0, gt=0, description="older values are not sent")
    max_schedule_age_s: float = Field(
        default=300.0, gt=0, description="a schedule not refreshed for this long counts as no schedule")


class MarketConfig(ConfigModel):
    modo: ModoConfig | None = None
    axle: AxleConfig | None = None
