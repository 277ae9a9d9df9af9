"""Every device kind the site file may name. Adding a kind: its folder, plus one line in each table."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from devices.acuvim2.config import Acuvim2Config
from devices.emlite.config import EmliteConfig
from devices.heat_mbus.config import HeatMbusConfig
from devices.heat_modbus.config import HeatModbusConfig
from devices.powerpack.config import PowerPackConfig

if TYPE_CHECKING:
    from controller.core.clock import Clock
    from devices.base import Device

DeviceConfig = Annotated[
    PowerPackConfig | Acuvim2Config | EmliteConfig | HeatMbusConfig | HeatModbusConfig,
    Field(discriminator="type"),
]

METER_KINDS = frozenset({"acuvim2"})
BATTERY_KINDS = frozenset({"powerpack"})

# kind -> "module:Class" of its driver, imported when first needed (drivers import the config tree,
# which imports this module). A driver class is called as `Class(config, clock)` or, where it declares
# a `shared` keyword, `Class(config, clock, shared=shared)`.
DRIVERS: dict[str, str] = {
    "powerpack": "devices.powerpack.driver:PowerPack",
    "acuvim2": "devices.acuvim2.driver:Acuvim2",
    "emlite": "devices.emlite.driver:EmliteMeter",
    "heat_mbus": "devices.heat_mbus.driver:HeatMbusMeter",
    "heat_modbus": "devices.heat_modbus.driver:HeatModbusMeter",
}


def create_device(config: DeviceConfig, clock: Clock, shared: dict[str, Any] | None = None) -> Device:
    """The driver for one site-file device entry. `shared` is `runtime.services` (per-link limiters, gateways)."""
    ref = DRIVERS.get(config.type)
    if ref is None:
        raise ValueError(f"no driver for device kind {config.type!r}")
    module, _, attr = ref.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if "shared" in inspect.signature(cls).parameters:
        device: Device = cls(config, clock, shared=shared if shared is not None else {})
    else:
        device = cls(config, clock)
    return device
