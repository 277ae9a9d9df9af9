"""What a device kind declares about itself, in one place: `devices/<kind>/kind.py` exports a `KIND`.

The catalog collects the kinds and derives from them everything that used to be a table per concern:
the site file's union of device entries, which kinds may serve as the site meter or the battery, the
driver for an entry, where readings go in the cloud and what they are called on MQTT.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from controller.core.clock import Clock
from controller.core.schema import literal_values
from devices.base import Device
from devices.config import DeviceConfigBase
from devices.links import DeviceLinks

C = TypeVar("C", bound=DeviceConfigBase)


class Role(enum.StrEnum):
    """What the controller may use a kind for (the controller block's `battery`, `site_meter`, `battery_meter`)."""

    BATTERY = "battery"
    METER = "meter"  # a power meter: site or battery meter
    OTHER = "other"  # recorded and uploaded only (household, heat meters)


class CloudRoute(NamedTuple):
    """Where a kind's readings go: the cloud table (the uploader's schema names it) and reading field -> column."""

    table: str
    columns: Mapping[str, str]


def same_names(*fields: str) -> dict[str, str]:
    """A field -> column mapping for a kind whose reading fields are named as the table's columns."""
    return {f: f for f in fields}


@dataclass(frozen=True, eq=False)
class DeviceKind(Generic[C]):
    """One device kind. `name` is the `type` of its site-file entries, read from the config's Literal."""

    config: type[C]
    create: Callable[[C, Clock, DeviceLinks], Device]  # the driver for one entry
    role: Role
    cloud: CloudRoute | None  # None: readings of this kind stay local
    measurements: Mapping[str, str]  # reading field -> MQTT measurement id (others go as flux.<kind>.<field>)
    profile_log: bool = False  # the device keeps its own history, read back to fill gaps
    name: str = field(init=False)

    def __post_init__(self) -> None:
        names = literal_values(self.config, "type")
        if len(names) != 1 or not isinstance(names[0], str):
            raise TypeError(f"{self.config.__name__}.type must be a Literal of one name, not {names!r}")
        object.__setattr__(self, "name", names[0])
