"""A heat meter on M-Bus behind a shared TCP gateway, as a `Device`."""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.core.clock import Clock
from controller.core.logs import get_logger
from controller.core.reading import FieldValue, Reading
from devices.base import DeviceError, DeviceHealth
from devices.heat_mbus.config import HeatMbusConfig
from devices.heat_mbus.records import MbusDecodeError, decode_rsp_ud
from devices.links import DeviceLinks

log = get_logger("devices.heat_mbus")

KIND = "heat_mbus"


class HeatMbusMeter:
    kind = KIND

    def __init__(self, config: HeatMbusConfig, clock: Clock, links: DeviceLinks) -> None:
        self.config = config
        self.clock = clock
        self.health = DeviceHealth()
        self.gateway = links.mbus_gateway(config.host, config.port)
        self._failures = 0
        self._resume_at: datetime | None = None

    def _count(self, name: str) -> None:
        self.health.extra[name] = self.health.extra.get(name, 0) + 1

    async def poll(self, slot: datetime) -> Reading:
        if self._resume_at is not None and self.clock.now() < self._resume_at:
            # A silent meter costs the bus a timeout, a wake-up and a retry: ask it less often.
            self._count("polls_skipped_down")
            raise DeviceError(f"{self.config.name}: meter down, next attempt at {self._resume_at.isoformat()}")
        try:
            fields = await self._read()
        except DeviceError as exc:
            self._failed(str(exc))
            raise
        self._failures = 0
        self._resume_at = None
        return Reading(self.config.id, self.config.name, KIND, slot, fields, received_at=self.clock.now())

    async def _read(self) -> dict[str, FieldValue]:
        raw = await self.gateway.read_meter(self.config.mbus_address, self.config.timeout_s)
        try:
            records = decode_rsp_ud(raw)
        except MbusDecodeError as exc:
            self._count("decode_errors")
            log.warning("mbus_decode_failed", meter=self.config.name, error=str(exc), frame=raw.hex())
            raise DeviceError(f"{self.config.name}: {exc}") from exc
        if records.skipped:
            self.health.extra["records_skipped"] = self.health.extra.get("records_skipped", 0) + records.skipped
        if not records.fields:
            self._count("empty_answers")
            raise DeviceError(f"{self.config.name}: answer without any heat-meter record")
        return dict(records.fields)

    def _failed(self, error: str) -> None:
        self._failures += 1
        self._count("polls_failed")
        if self._failures >= self.health.down_after:
            pause = min(self.config.down_poll_interval_s,
                        self.config.poll_interval_s * 2 ** (self._failures - self.health.down_after))
            self._resume_at = self.clock.now() + timedelta(seconds=pause)
            log.warning("mbus_polling_slowed", meter=self.config.name, failures=self._failures, pause_s=pause,
                        error=error)

    async def close(self) -> None:
        # The gateway's connection is shared: dropping it only costs the others a reconnect.
        self.gateway.close()
