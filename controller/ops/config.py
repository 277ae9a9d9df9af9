from __future__ import annotations

import ipaddress

from controller.core.config import ConfigModel, ProblemList, Secret
from controller.core.schema import Field, field_validator


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
    qos: int = Field(default=1, ge=0, le=2, description="QoS of what we publish and subscribe to")
    queue_bytes: int = Field(
        default=1024 * 1024, ge=4096,
        description="memory the queued telemetry may take while the broker is away, in bytes (oldest dropped); "
                    "the outbox, not this queue, is the durable path")
    queue_size: int = Field(
        default=10_000, ge=10, description="and at most this many telemetry messages (oldest dropped)")
    reconnect_initial_s: float = Field(default=1.0, gt=0, description="first reconnect delay, doubled per failure")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="reconnect delay cap")
    max_override_s: float = Field(default=4 * 3600.0, gt=0, description="longest manual override a command may set")
    decision_interval_s: float = Field(
        default=10.0, ge=0, description="at most one message on the `decision` topic this often (the newest)")


class MetricsConfig(ConfigModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=1, le=65535)


class WatchdogConfig(ConfigModel):
    heartbeat_max_age_s: float = Field(
        default=30.0, gt=0, description="the control loop and outbox writer must have beaten this recently")
    ping_interval_s: float | None = Field(
        default=None, gt=0, description="WATCHDOG=1 cadence; default half of systemd's WatchdogSec, else 10 s")
    ready_timeout_s: float = Field(
        default=30.0, gt=0, description="READY=1 at the latest this long after start, polled or not")


def _loopback(host: str) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError("the admin endpoint listens on a loopback address only (e.g. 127.0.0.1)")
    return host


class AdminConfig(ConfigModel):
    enabled: bool = True
    host: str = Field(default="127.0.0.1", description="loopback only: `flux-edge status` and `config apply`")
    port: int = Field(default=9109, ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _check_host(cls, v: str) -> str:
        return _loopback(v)


class WebConfig(ConfigModel):
    """The web page on another address than loopback (it is always on the admin endpoint's loopback one)."""

    host: str | None = Field(
        default=None, description="also serve the read-only page here, e.g. the site's VPN address; needs token")
    port: int = Field(default=9110, ge=1, le=65535)
    token: Secret | None = Field(default=None, description="bearer token for `/status` on `host` (`${ENV}`)")

    def problems(self) -> ProblemList:
        if self.host is not None and self.token is None:
            try:
                loopback = ipaddress.ip_address(self.host).is_loopback
            except ValueError:
                loopback = self.host == "localhost"
            if not loopback:
                yield ("token",), "a page bound to a non-loopback address needs a token"


class RemoteConfigConfig(ConfigModel):
    verify_timeout_s: float = Field(
        default=60.0, gt=0, description="a new config must poll the site meter and battery this soon, else rollback")
    last_good_suffix: str = Field(default=".last-good", min_length=1, description="suffix of the kept previous file")


class OpsConfig(ConfigModel):
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    remote_config: RemoteConfigConfig = Field(default_factory=RemoteConfigConfig)
    web: WebConfig = Field(default_factory=WebConfig)
