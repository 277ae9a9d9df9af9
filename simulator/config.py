"""The `simulator:` block of a site file. Its model lives with the site model
(`controller/config/simulator.py`) so that the daemon's import graph holds no `simulator` module."""

from controller.config.simulator import (
    CloudEndpointConfig,
    EndpointConfig,
    FaultConfig,
    SimulatorConfig,
    SiteModelConfig,
)

__all__ = ["CloudEndpointConfig", "EndpointConfig", "FaultConfig", "SimulatorConfig", "SiteModelConfig"]
