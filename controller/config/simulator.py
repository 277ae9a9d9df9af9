"""The site file's `simulator:` block: what `flux-edge simulate` serves (the daemon only validates it)."""

from __future__ import annotations

from controller.core.config import ConfigModel
from controller.core.schema import Field


class FaultConfig(ConfigModel):
    """Fault knobs of one simulated device or endpoint; each probability is per request."""

    latency_s: float = Field(default=0.0, ge=0, description="added to every answer")
    latency_jitter_s: float = Field(default=0.0, ge=0)
    drop_probability: float = Field(default=0.0, ge=0, le=1, description="connection dropped")
    timeout_probability: float = Field(default=0.0, ge=0, le=1, description="no answer")
    exception_probability: float = Field(default=0.0, ge=0, le=1, description="protocol error answer")
    garbage_probability: float = Field(default=0.0, ge=0, le=1, description="nonsense values")
    busy_probability: float = Field(default=0.0, ge=0, le=1, description="connection refused as busy (EMOP)")
    clock_offset_s: float = Field(default=0.0, description="error of the device's own clock (EMOP meters)")


class SiteModelConfig(ConfigModel):
    base_load_kw: float = Field(default=40.0, ge=0)
    peak_load_kw: float = Field(default=120.0, ge=0, description="evening peak on top of the base")
    solar_peak_kw: float = Field(default=80.0, ge=0)
    noise_kw: float = Field(default=3.0, ge=0)
    initial_soe_kwh: float | None = Field(default=None, ge=0, description="default: half the nameplate")
    charge_efficiency: float = Field(default=0.92, gt=0, le=1)


class EndpointConfig(ConfigModel):
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class CloudEndpointConfig(EndpointConfig):
    dsn: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/flux_sim",
        description="PostgreSQL behind the PostgREST stand-in (created and migrated at start)")
    api_key: str = Field(default="sim-anon-key", description="the key the stand-in accepts")


class SimulatorConfig(ConfigModel):
    seed: int = 1
    devices: list[str] | None = Field(default=None, description="names to simulate; default: every device")
    site_model: SiteModelConfig = Field(default_factory=SiteModelConfig)
    faults: dict[str, FaultConfig] = Field(default_factory=dict, description="device name -> fault knobs")
    modo: EndpointConfig | None = None
    axle: EndpointConfig | None = None
    cloud: CloudEndpointConfig | None = None
