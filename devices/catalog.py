"""Every device kind the site file may name. Adding a kind: its folder, plus one line in each table."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from devices.acuvim2.config import Acuvim2Config
from devices.emlite.config import EmliteConfig
from devices.heat_mbus.config import HeatMbusConfig
from devices.heat_modbus.config import HeatModbusConfig
from devices.powerpack.config import PowerPackConfig

DeviceConfig = Annotated[
    PowerPackConfig | Acuvim2Config | EmliteConfig | HeatMbusConfig | HeatModbusConfig,
    Field(discriminator="type"),
]

METER_KINDS = frozenset({"acuvim2"})
BATTERY_KINDS = frozenset({"powerpack"})
