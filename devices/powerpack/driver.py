"""Tesla PowerPack over Modbus TCP: status polls and the real-power command protocol.

Command protocol (spec devices.md): once per connection the ramp rates and always-active; on every
command the heartbeat (alternating 0xAA55 / 0x55AA) and then the real power as two's-complement
int32, high word first; after the first command on a connection the command timeout and direct
real-power mode. Every write is checked: a failure is counted, logged and raised, and whatever was
not done is done again on the next command.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from controller.core.clock import Clock
from controller.core.logs import get_logger
from controller.core.reading import FieldValue, Reading
from devices.base import DeviceError, DeviceHealth
from devices.modbus import ModbusConnection, decode, decode_string, encode_int32
from devices.powerpack import registers as r

if TYPE_CHECKING:
    from datetime import datetime

    from devices.powerpack.config import PowerPackConfig

log = get_logger("devices.powerpack")

# Readings beyond these multiples of the nameplate are nonsense, not data.
POWER_PLAUSIBLE_FACTOR = 1.5
ENERGY_PLAUSIBLE_FACTOR = 1.2


class PowerPack:
    kind = "powerpack"

    def __init__(self, config: PowerPackConfig, clock: Clock, connection: ModbusConnection | None = None) -> None:
        self.config = config
        self.clock = clock
        self.health = DeviceHealth()
        self.conn = connection or ModbusConnection(config, clock)
        self.device_info: dict[str, Any] = {}
        self._config_read_on = 0  # connection id whose config block has been read and logged
        self._setup_on = 0  # connection id on which ramp rates and always-active were written
        self._armed_on = 0  # connection id on which command timeout and direct mode were written
        self._heartbeats_sent = 0
        self._command_lock = asyncio.Lock()
        self.last_setpoint_kw: float | None = None

    # --- reading --------------------------------------------------------------------------------

    async def poll(self, slot: datetime) -> Reading:
        regs = await self.conn.read_holding(r.STATUS_START, r.STATUS_COUNT)
        received = self.clock.now()
        if self._config_read_on != self.conn.connection_id:
            await self._read_config_block()

        def word(address: int) -> int:
            return regs[address - r.STATUS_START]

        def int32(address: int) -> int:
            i = address - r.STATUS_START
            return int(decode(regs[i:i + 2], "int32"))

        fields: dict[str, FieldValue] = {
            "command_source": word(r.COMMAND_SOURCE),
            "available_blocks": word(r.AVAILABLE_BLOCKS),
        }
        power_kw = int32(r.TARGET_POWER_W) / 1000.0
        soe_kwh = int32(r.NOMINAL_ENERGY_WH) / 1000.0
        max_power = self.config.nameplate_power_kw * POWER_PLAUSIBLE_FACTOR
        if abs(power_kw) <= max_power:
            fields["target_power_kw"] = power_kw
        else:
            self._reject("target_power_kw", power_kw, f"beyond +-{max_power:g} kW")
        if 0.0 <= soe_kwh <= self.config.nameplate_energy_kwh * ENERGY_PLAUSIBLE_FACTOR:
            fields["soe_kwh"] = soe_kwh
        else:
            self._reject("soe_kwh", soe_kwh, "outside 0 .. nameplate energy")
        return Reading(self.config.id, self.config.name, self.kind, slot, fields, received_at=received)

    def _reject(self, name: str, value: float, why: str) -> None:
        self.health.fields_rejected += 1
        log.warning("field_rejected", device=self.config.name, field=name, value=value, reason=why)

    async def _read_config_block(self) -> None:
        """Read and log the battery's own idea of itself, once per connection; a failure is retried next poll."""
        try:
            regs = await self.conn.read_holding(r.CONFIG_START, r.CONFIG_COUNT)
        except DeviceError as exc:
            log.warning("powerpack_config_read_failed", device=self.config.name, error=str(exc))
            return

        def at(address: int, count: int) -> list[int]:
            i = address - r.CONFIG_START
            return regs[i:i + count]

        self.device_info = {
            "protocol_version": decode(at(r.PROTOCOL_VERSION, 1), "int16"),
            "firmware_version": decode_string(at(r.FIRMWARE_VERSION, r.STRING_REGISTERS)),
            "serial_number": decode_string(at(r.SERIAL_NUMBER, r.STRING_REGISTERS)),
            "battery_meters": decode(at(r.BATTERY_METERS, 1), "int16"),
            "site_meters": decode(at(r.SITE_METERS, 1), "int16"),
            "max_charge_power_kw": decode(at(r.MAX_CHARGE_POWER_W, 2), "int32") / 1000.0,
            "max_discharge_power_kw": decode(at(r.MAX_DISCHARGE_POWER_W, 2), "int32") / 1000.0,
            "energy_kwh": decode(at(r.ENERGY_WH, 2), "int32") / 1000.0,
        }
        self._config_read_on = self.conn.connection_id
        log.info("powerpack_config", device=self.config.name, **self.device_info)
        for key in ("max_charge_power_kw", "max_discharge_power_kw"):
            if self.device_info[key] < self.config.nameplate_power_kw:
                log.warning("powerpack_nameplate_mismatch", device=self.config.name, register=key,
                            battery_says=self.device_info[key], site_file_says=self.config.nameplate_power_kw)

    # --- commanding -----------------------------------------------------------------------------

    async def write_setpoint(self, kw: float) -> None:
        """Command `kw` (+ = discharge). Raises DeviceError if any write of the sequence fails."""
        if not math.isfinite(kw):
            raise DeviceError(f"refusing non-finite setpoint {kw!r}")
        limit = self.config.nameplate_power_kw
        if abs(kw) > limit:
            # The safety envelope should never ask for this; the driver is the last line.
            log.error("setpoint_clamped_to_nameplate", device=self.config.name, asked_kw=kw, limit_kw=limit)
            kw = math.copysign(limit, kw)
        async with self._command_lock:
            try:
                connection = await self.conn.connect()
            except DeviceError as exc:
                self._write_failed("connect", None, exc)
                raise
            if self._setup_on != connection:
                up_w = round(self.config.ramp_up_kw_per_s * 1000)
                down_w = round(self.config.ramp_down_kw_per_s * 1000)
                await self._write("ramp_up", r.RAMP_UP_W_PER_S, encode_int32(up_w))
                await self._write("ramp_down", r.RAMP_DOWN_W_PER_S, encode_int32(down_w))
                await self._write("always_active", r.ALWAYS_ACTIVE, [1 if self.config.always_active else 0])
                self._setup_on = connection
            beat = r.HEARTBEAT_VALUES[self._heartbeats_sent % 2]
            await self._write("heartbeat", r.HEARTBEAT, [beat])
            # Advance only once written: a failed beat is resent as the same (still changed) value.
            self._heartbeats_sent += 1
            await self._write("real_power", r.REAL_POWER_W, encode_int32(round(kw * 1000)))
            self.last_setpoint_kw = kw
            if self._armed_on != connection:
                await self._write("command_timeout", r.COMMAND_TIMEOUT_S, [self.config.command_timeout_s])
                await self._write("real_power_mode", r.REAL_POWER_MODE, [r.DIRECT_REAL_POWER])
                self._armed_on = connection

    async def _write(self, what: str, address: int, words: list[int]) -> None:
        try:
            if len(words) == 1:
                await self.conn.write_register(address, words[0])
            else:
                await self.conn.write_registers(address, words)
        except DeviceError as exc:
            self._write_failed(what, address, exc)
            raise
        self.health.extra["writes_ok"] = self.health.extra.get("writes_ok", 0) + 1

    def _write_failed(self, what: str, address: int | None, exc: DeviceError) -> None:
        self.health.extra["write_failures"] = self.health.extra.get("write_failures", 0) + 1
        self.health.last_error = f"write {what}: {exc}"
        log.error("battery_write_failed", device=self.config.name, register=what, address=address, error=str(exc))

    @property
    def heartbeats_sent(self) -> int:
        return self._heartbeats_sent

    async def close(self) -> None:
        await self.conn.close()
