"""Heat meters with a Modbus TCP module: the M-Bus simulator's heat model behind each device's own
register map, served by the shared fault-injecting pymodbus server (simulator/modbus_server.py).

Like many real modules, the registers refresh only once a minute: repeated values are expected.
"""

from __future__ import annotations

import asyncio
import zlib
from datetime import datetime

from controller.config import SiteConfig
from controller.core.clock import Clock, align_down
from controller.core.logs import get_logger
from devices.heat_modbus.config import HeatModbusConfig
from devices.heat_modbus.driver import plan_reads
from devices.modbus import encode
from simulator.context import SimContext
from simulator.mbus_gateway import SimulatedHeatMeter
from simulator.modbus_server import Faults, ModbusSimServer, RegisterBank, SimUnit

log = get_logger("simulator.heat_modbus")

REFRESH_S = 60.0


class HeatModbusBank(RegisterBank):
    def __init__(self, config: HeatModbusConfig, meter: SimulatedHeatMeter, clock: Clock) -> None:
        # The module answers any read inside the blocks its map spans (gaps read as zero).
        super().__init__([(span.start, span.count) for span in plan_reads(config.registers.items())])
        self.config = config
        self.meter = meter
        self.clock = clock
        self._refreshed: datetime | None = None

    def values(self, now: datetime) -> dict[str, float]:
        self.meter.advance(now)
        power, flow_c, return_c, flow = self.meter.state(now)
        return {
            "energy_kwh": self.meter.energy_kwh, "volume_m3": self.meter.volume_m3, "power_kw": power,
            "flow_m3h": flow, "flow_temperature_c": flow_c, "return_temperature_c": return_c,
            "temperature_difference_k": flow_c - return_c, "error_flags": 0,
        }

    def refresh(self) -> None:
        minute = align_down(self.clock.now(), REFRESH_S)
        if minute == self._refreshed:
            return
        self._refreshed = minute
        for name, value in self.values(self.clock.now()).items():
            spec = self.config.registers.get(name)  # type: ignore[call-overload]
            if spec is None:
                continue
            raw = value / spec.scale
            # Integer registers hold whole units of the scale: truncate as a meter's counter would.
            number: int | float = raw if spec.data_type.startswith("float") else int(raw)
            self.set(spec.address, encode(number, spec.data_type, spec.word_order))


def simulated_devices(site: SiteConfig, ctx: SimContext) -> list[HeatModbusConfig]:
    return [d for d in site.devices if isinstance(d, HeatModbusConfig) and ctx.simulated(d.name)]


def build_servers(ctx: SimContext) -> dict[tuple[str, int], ModbusSimServer]:
    servers: dict[tuple[str, int], ModbusSimServer] = {}
    for d in simulated_devices(ctx.site, ctx):
        seed = zlib.crc32(f"{ctx.sim.seed}:{d.name}".encode())
        bank = HeatModbusBank(d, SimulatedHeatMeter(d.name, d.unit_id, seed), ctx.clock)
        unit = SimUnit(d.name, bank, Faults(ctx.sim.faults.get(d.name), ctx.rng(f"heat_modbus:{d.name}")))
        server = servers.setdefault((d.host, d.port), ModbusSimServer(d.host, d.port, ctx.clock))
        server.units[d.unit_id] = unit
    return servers


async def serve(ctx: SimContext) -> None:
    servers = build_servers(ctx)
    if not servers:
        return
    started: list[ModbusSimServer] = []
    try:
        for server in servers.values():
            await server.start()
            started.append(server)
        ctx.shared["heat_modbus"] = servers
        ctx.ready("heat_modbus").set()
        await asyncio.Event().wait()
    finally:
        for server in started:
            await server.stop()
