"""Every device kind the site file may name, and everything derived from them.

Each kind declares itself in its own folder (`devices/<kind>/kind.py` exports `KIND`: its config
class, its driver factory, its role, its cloud table and columns, its MQTT measurement ids).
Adding a new meter kind means: its own folder `devices/<kind>/` (config, driver, kind.py), one line
in `KINDS` below, its simulator under `simulator/`, and its test under `tests/devices/`. The site
model, the pollers, the uploader (given `CLOUD_ROUTING` as data) and the MQTT bridge take what they
need from here.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from controller.core.clock import Clock
from controller.core.schema import Field
from devices.acuvim2.kind import KIND as ACUVIM2
from devices.base import Device
from devices.config import DeviceConfigBase
from devices.emlite.kind import KIND as EMLITE
from devices.heat_mbus.kind import KIND as HEAT_MBUS
from devices.heat_modbus.kind import KIND as HEAT_MODBUS
from devices.kind import CloudRoute, DeviceKind, Role
from devices.links import DeviceLinks
from devices.powerpack.kind import KIND as POWERPACK

# One line per kind. The order is the order of the site file's schema (`flux-edge schema`).
KINDS: tuple[DeviceKind[Any], ...] = (
    POWERPACK,
    ACUVIM2,
    EMLITE,
    HEAT_MBUS,
    HEAT_MODBUS,
)

BY_NAME: dict[str, DeviceKind[Any]] = {k.name: k for k in KINDS}

if TYPE_CHECKING:
    # mypy cannot follow a union built at run time; code narrows with isinstance on the kind's config.
    DeviceConfig = DeviceConfigBase
else:
    DeviceConfig = Annotated[functools.reduce(operator.or_, (k.config for k in KINDS)), Field(discriminator="type")]

METER_KINDS = frozenset(k.name for k in KINDS if k.role is Role.METER)
BATTERY_KINDS = frozenset(k.name for k in KINDS if k.role is Role.BATTERY)

# kind -> (cloud table, reading field -> column): the uploader receives this as data.
CLOUD_ROUTING: dict[str, CloudRoute] = {k.name: k.cloud for k in KINDS if k.cloud is not None}

# kind -> reading field -> MQTT measurement id.
MEASUREMENT_IDS: dict[str, Mapping[str, str]] = {k.name: k.measurements for k in KINDS}


def create_device(config: DeviceConfigBase, clock: Clock, links: DeviceLinks) -> Device:
    """The driver for one site-file device entry; `links` holds what drivers share (the caller keeps it)."""
    kind = BY_NAME.get(config.type)
    if kind is None:
        raise ValueError(f"no driver for device kind {config.type!r}")
    return kind.create(config, clock, links)
