from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from controller.core.config import ConfigModel, Secret


class BufferConfig(ConfigModel):
    path: str = Field(default="var/{site}", description="outbox directory; {site} is the site id")
    max_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024, description="outbox size bound")
    retention_days: float = Field(default=14.0, ge=0, description="keep uploaded rows this long for gap recovery")
    synchronous: Literal["full", "normal"] = Field(default="full", description="SQLite synchronous mode")


class SinkBase(ConfigModel):
    type: str
    name: str = Field(min_length=1)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    interval_s: float = Field(default=10.0, gt=0, description="upload cadence while there is nothing pending")
    gather_s: float = Field(
        default=3.0, ge=0, description="once new rows arrive, wait this long so they go up together: one request "
                                       "per table and one cursor commit for several outbox commits (0: at once)")
    timeout_s: float = Field(default=30.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    outage_alert_after_s: float = Field(
        default=3600.0, gt=0, description="when the oldest row still pending for this sink is older than this "
                                          "(a cloud outage, a refused login, a sink slower than the site), an "
                                          "`upload_backlog` Error alert names the sink, the backlog's age and its "
                                          "rows, once per episode; an Info alert follows when it is younger again "
                                          "(the age is the flux_edge_outbox_oldest_pending_age_seconds gauge)")


class PostgrestSinkConfig(SinkBase):
    type: Literal["postgrest"]
    url: str = Field(min_length=1, description="base URL; /rest/v1/<table> is appended")
    schema_name: str = Field(default="flux", alias="schema")
    api_key: Secret | None = Field(default=None, description="sent as the apikey header")
    bearer_token: Secret | None = Field(default=None, description="sent as Authorization: Bearer; default api_key")


class PostgresSinkConfig(SinkBase):
    type: Literal["postgres"]
    dsn: Secret
    schema_name: str = Field(default="flux", alias="schema")
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)


SinkConfig = Annotated[PostgrestSinkConfig | PostgresSinkConfig, Field(discriminator="type")]


class UploaderConfig(ConfigModel):
    sinks: list[SinkConfig] = Field(default_factory=list)
    coverage_check_interval_s: float = Field(default=3600.0, gt=0)
    coverage_window_days: float = Field(default=7.0, gt=0)
