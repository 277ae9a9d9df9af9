"""Acuvim II power meter over Modbus TCP: every column of the cloud's `mg_meter_readings`.

Raw values are secondary-side: voltages are scaled by PT1/PT2, currents by CT1/CT2, powers by both
(and /1000 for kW). A value that is not a finite number inside the range the meter's ratings allow,
or a negative energy register, is logged, counted and left out of the reading: the field is missing,
never a wrong number passed on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.core.clock import Clock, align_down
from controller.core.logs import get_logger
from controller.core.reading import FieldValue, Reading
from devices.acuvim2 import registers as r
from devices.base import DeviceHealth
from devices.modbus import ModbusConnection, decode

if TYPE_CHECKING:
    from datetime import datetime

    from devices.acuvim2.config import Acuvim2Config

log = get_logger("devices.acuvim2")

# The Acuvim's inputs: up to 400 V line-to-neutral (690 V line-to-line) at the secondary, with
# headroom; currents up to twice the CT's primary rating before the reading is nonsense.
MAX_SECONDARY_LINE_VOLTAGE_V = 1000.0
CURRENT_OVERRANGE = 2.0
FREQUENCY_RANGE_HZ = (40.0, 70.0)
POWER_FACTOR_SLACK = 1e-3


@dataclass(frozen=True)
class Scaling:
    """Secondary-to-primary factors and plausible primary-side bounds for one meter."""

    voltage: float
    current: float
    power_kw: float
    max_voltage_v: float
    max_current_a: float
    max_power_kw: float

    @classmethod
    def of(cls, config: Acuvim2Config) -> Scaling:
        pt = config.pt1 / config.pt2
        ct = config.ct1 / config.ct2
        max_v = MAX_SECONDARY_LINE_VOLTAGE_V * pt
        max_i = CURRENT_OVERRANGE * config.ct1
        # Three phases at the largest line-to-neutral voltage and current the meter can see.
        max_kw = 3 * (max_v / math.sqrt(3)) * max_i / 1000.0
        return cls(pt, ct, pt * ct / 1000.0, max_v, max_i, max_kw)

    def scale(self, quantity: r.Quantity, raw: float) -> float:
        if quantity == "voltage":
            return raw * self.voltage
        if quantity == "current":
            return raw * self.current
        if quantity == "power":
            return raw * self.power_kw
        return raw

    def plausible(self, name: str, quantity: r.Quantity, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if quantity == "frequency":
            return FREQUENCY_RANGE_HZ[0] <= value <= FREQUENCY_RANGE_HZ[1]
        if quantity == "voltage":
            return 0.0 <= value <= self.max_voltage_v
        if quantity == "current":
            return 0.0 <= value <= self.max_current_a
        if quantity == "power_factor":
            return abs(value) <= 1.0 + POWER_FACTOR_SLACK
        limit = self.max_power_kw if name.startswith("power_total") else self.max_power_kw / 3
        if name == "power_total_apparent":
            return 0.0 <= value <= limit
        return abs(value) <= limit


PHASE_SUM_TOLERANCE_KW = 1.0
PHASE_SUM_TOLERANCE_SHARE = 0.02


class Acuvim2:
    kind = "acuvim2"

    def __init__(self, config: Acuvim2Config, clock: Clock, connection: ModbusConnection | None = None) -> None:
        self.config = config
        self.clock = clock
        self.health = DeviceHealth()
        self.conn = connection or ModbusConnection(config, clock)
        self.scaling = Scaling.of(config)
        self._energy_read_for: datetime | None = None  # the telemetry slot whose energy counters were read

    async def poll(self, slot: datetime) -> Reading:
        """The instantaneous block on every poll; the two energy blocks once per telemetry slot.

        Only a slot's recorded reading needs the counters (the controller runs on power), and they are two
        of the poll's three round trips: a meter polled every 2 s for control is read in a third of the
        requests, and a poll is less likely to overrun its slot. The first poll of a slot that answers
        reads them, so the slot's recorded reading (its first poll that answered) carries them."""
        floats = await self.conn.read_holding(r.FLOAT_START, r.FLOAT_COUNT)
        telemetry_slot = align_down(slot, self.config.telemetry_interval_s)
        energy: list[int] = []
        phase_energy: list[int] = []
        if self._energy_read_for != telemetry_slot:
            energy = await self.conn.read_holding(r.ENERGY_START, r.ENERGY_COUNT)
            phase_energy = await self.conn.read_holding(r.PHASE_ENERGY_START, r.PHASE_ENERGY_COUNT)
        received = self.clock.now()
        fields: dict[str, FieldValue] = {}
        for name, (address, quantity) in r.FLOAT_FIELDS.items():
            i = address - r.FLOAT_START
            value = self.scaling.scale(quantity, float(decode(floats[i:i + 2], "float32")))
            if self.scaling.plausible(name, quantity, value):
                fields[name] = value
            else:
                self._reject(name, value)
        self._check_phases(fields)
        if energy:
            self._energy(fields, energy, phase_energy)
            self._energy_read_for = telemetry_slot
        return Reading(self.config.id, self.config.name, self.kind, slot, fields, received_at=received)

    def _energy(self, fields: dict[str, FieldValue], energy: list[int], phase_energy: list[int]) -> None:
        blocks = ((r.ENERGY_START, energy), (r.PHASE_ENERGY_START, phase_energy))
        for name, address in r.ENERGY_FIELDS.items():
            start, regs = next((s, b) for s, b in blocks if s <= address < s + len(b))
            i = address - start
            count = int(decode(regs[i:i + 2], "int32"))
            if count >= 0:
                fields[name] = round(count * r.ENERGY_KWH_PER_COUNT, 1)
            else:
                self._reject(name, count * r.ENERGY_KWH_PER_COUNT)

    def _check_phases(self, fields: dict[str, FieldValue]) -> None:
        """The total active power stands only when the three phases are there and add up to it.

        A corrupted answer (noise on the line, a confused gateway) can hold a total that looks plausible, a
        few kW say, while the site imports hundreds: the controller would charge into the import limit on
        it. Random words almost never add up across four registers, so a disagreement rejects the block's
        active powers.
        """
        names = ("power_phase_a_active", "power_phase_b_active", "power_phase_c_active")
        total = fields.get("power_total_active")
        if total is None:
            return
        phases = [fields.get(n) for n in names]
        if all(isinstance(p, float) for p in phases):
            gap = abs(sum(float(p) for p in phases if p is not None) - float(total))
            if gap <= max(PHASE_SUM_TOLERANCE_KW, PHASE_SUM_TOLERANCE_SHARE * abs(float(total))):
                return
        self.health.fields_rejected += 1
        log.warning("field_rejected", device=self.config.name, field="power_total_active", value=total,
                    reason="the phase powers do not add up to the total")
        for n in ("power_total_active", *names):
            fields.pop(n, None)

    def _reject(self, name: str, value: float) -> None:
        self.health.fields_rejected += 1
        log.warning("field_rejected", device=self.config.name, field=name,
                    value=value if math.isfinite(value) else repr(value), reason="not a plausible number")

    async def close(self) -> None:
        await self.conn.close()
