"""A heat meter on M-Bus behind a shared TCP gateway, as a `Device`."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.clock import Clock
from controller.logs import get_logger
from devices.base import DeviceError, DeviceHealth, Reading
from devices.heat_mbus.gateway import gateway_for
from devices.heat_mbus.records import MbusDecodeError, decode_rsp_ud

if TYPE_CHECKING:
    # Annotations only: the config modules import the whole site tree, which imports the catalog.
    from devices.heat_mbus.config import HeatMbusConfig

log = get_logger("devices.heat_mbus")

KIND = "heat_mbus"


class HeatMbusMeter:
    kind = KIND

    def __init__(self, config: HeatMbusConfig, clock: Clock, shared: MutableMapping[str, Any]) -> None:
        self.config = config
        self.clock = clock
        self.health = DeviceHealth()
        self.gateway = gateway_for(shared, config.host, config.port)

    def _count(self, name: str) -> None:
        self.health.extra[name] = self.health.extra.get(name, 0) + 1

    async def poll(self, slot: datetime) -> Reading:
        raw = await self.gateway.read_meter(self.config.mbus_address, self.config.timeout_s)
        try:
            records = decode_rsp_ud(raw)
        except MbusDecodeError as exc:
            self._count("decode_errors")
            log.warning("mbus_decode_failed", meter=self.config.name, error=str(exc), frame=raw.hex())
            raise DeviceError(f"{self.config.name}: {exc}") from exc
        if not records.fields:
            self._count("empty_answers")
            raise DeviceError(f"{self.config.name}: answer without any heat-meter record")
        return Reading(self.config.id, self.config.name, KIND, slot, dict(records.fields),
                       received_at=self.clock.now())

    async def close(self) -> None:
        # The gateway's connection is shared: dropping it only costs the others a reconnect.
        self.gateway.close()
