"""A heat meter with a Modbus TCP module, read through the register map of its site-file entry."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from controller.core.clock import Clock
from controller.core.logs import get_logger
from controller.core.reading import FieldValue, Reading
from devices.base import DeviceError, DeviceHealth
from devices.heat_modbus.config import HeatModbusConfig, RegisterSpec
from devices.modbus import ModbusConnection, decode, register_count

log = get_logger("devices.heat_modbus")

KIND = "heat_modbus"
MAX_REGISTERS_PER_READ = 125  # Modbus limit for one read of holding registers
MAX_GAP = 8  # read across gaps this small rather than spend another round trip
NON_NEGATIVE = frozenset({"energy_kwh", "volume_m3", "flow_m3h", "error_flags"})


@dataclass(frozen=True)
class Span:
    start: int
    count: int
    fields: tuple[tuple[str, RegisterSpec], ...]


def plan_reads(registers: Iterable[tuple[str, RegisterSpec]]) -> list[Span]:
    """Group the map's registers into as few reads as the protocol allows."""
    ordered = sorted(registers, key=lambda kv: kv[1].address)
    spans: list[Span] = []
    for name, spec in ordered:
        end = spec.address + register_count(spec.data_type)
        if spans:
            last = spans[-1]
            last_end = last.start + last.count
            if spec.address - last_end <= MAX_GAP and max(end, last_end) - last.start <= MAX_REGISTERS_PER_READ:
                spans[-1] = Span(last.start, max(end, last_end) - last.start, (*last.fields, (name, spec)))
                continue
        spans.append(Span(spec.address, end - spec.address, ((name, spec),)))
    return spans


class HeatModbusMeter:
    kind = KIND

    def __init__(self, config: HeatModbusConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.health = DeviceHealth()
        self.connection = ModbusConnection(config, clock)
        self.spans = plan_reads(config.registers.items())

    def _reject(self, name: str, value: float, why: str) -> None:
        self.health.fields_rejected += 1
        log.warning("heat_modbus_value_rejected", meter=self.config.name, field=name, value=repr(value), reason=why)

    async def poll(self, slot: datetime) -> Reading:
        fields: dict[str, FieldValue] = {}
        for span in self.spans:
            regs = await self.connection.read_holding(span.start, span.count)
            for name, spec in span.fields:
                at = spec.address - span.start
                raw = decode(regs[at:at + register_count(spec.data_type)], spec.data_type, spec.word_order)
                value = raw * spec.scale
                if not math.isfinite(value):
                    self._reject(name, value, "not finite")
                elif name in NON_NEGATIVE and value < 0:
                    self._reject(name, value, "negative")
                elif name == "error_flags":
                    fields[name] = int(value)
                else:
                    # Float scales (0.01, 0.1) leave binary noise behind: round to well below any meter's resolution.
                    fields[name] = round(value, 6)
        if not fields:
            raise DeviceError(f"{self.config.name}: no usable value in the register map")
        return Reading(self.config.id, self.config.name, KIND, slot, fields, received_at=self.clock.now())

    async def close(self) -> None:
        await self.connection.close()
