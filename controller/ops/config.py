from __future__ import annotations

from pydantic import Field

from controller.config.types import ConfigModel, Secret


class TlsConfig(ConfigModel):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = Field(default=False, description="skip hostname verification (test benches only)")


class MqttConfig(ConfigModel):
    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None
    topic_prefix: str = Field(default="flux", min_length=1)
    client_id: str | None = Field(default=None, description="default: flux-edge-<site>")
    keepalive_s: int = Field(default=30, ge=5)


class MetricsConfig(ConfigModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=1, le=65535)
