"""Simulated PowerPacks and Acuvim IIs: real Modbus TCP servers in front of the physical site model.

`ModbusSite(site, clock)` is the in-process API (tests start it on free ports through the site file's
own host/port entries); `serve(ctx)` is the `flux-edge simulate` provider. Register maps are the
drivers' own (devices/*/registers.py), so both sides of the socket agree by construction.

With FLUX_SIM_PHYSICS_LOG naming a file, every physics step is appended to it as one JSON line
{time, soe_kwh, battery_kw, setpoint_kw, site_kw, load_kw, solar_kw}.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from controller.config import SiteConfig
from controller.core.clock import Clock
from controller.core.logs import get_logger
from devices.acuvim2 import registers as ar
from devices.acuvim2.config import Acuvim2Config
from devices.modbus import decode, encode, encode_string
from devices.powerpack import registers as pr
from devices.powerpack.config import PowerPackConfig
from simulator.config import SimulatorConfig
from simulator.modbus_server import Faults, ModbusSimServer, RegisterBank, SimUnit
from simulator.physics import (
    FREQUENCY_HZ,
    PHASE_VOLTAGE_V,
    STEP_S,
    BatteryModel,
    BatteryParams,
    MeterRole,
    MeterState,
    PhysicsStep,
    SiteModel,
    SiteProfile,
)

if TYPE_CHECKING:
    from simulator.context import SimContext

log = get_logger("simulator.modbus_devices")

PHYSICS_LOG_ENV = "FLUX_SIM_PHYSICS_LOG"
INVERTER_BLOCK_KW = 125.0
SIM_PROTOCOL_VERSION = 3
MODBUS_KINDS = ("powerpack", "acuvim2")


class SimulatedSite:
    """The physical model on the simulator's clock; every register read or write first brings it up to now."""

    def __init__(self, model: SiteModel, clock: Clock, physics_log: str | None = None) -> None:
        self.model = model
        self.clock = clock
        self.physics_log = physics_log

    def advance(self) -> None:
        steps = self.model.advance_to(self.clock.now().timestamp())
        if steps and self.physics_log:
            self._log(steps)

    def _log(self, steps: list[PhysicsStep]) -> None:
        assert self.physics_log is not None
        with open(self.physics_log, "a", encoding="utf-8") as f:
            for s in steps:
                f.write(json.dumps(s.as_json()) + "\n")


class PowerPackBank(RegisterBank):
    def __init__(self, config: PowerPackConfig, battery: BatteryModel, site: SimulatedSite) -> None:
        super().__init__([(pr.STATUS_START, pr.STATUS_COUNT), (pr.CONFIG_START, pr.CONFIG_COUNT)],
                         writable=[(pr.WRITE_START, pr.WRITE_COUNT)])
        self.battery = battery
        self.site = site
        self.blocks = max(1, math.ceil(config.nameplate_power_kw / INVERTER_BLOCK_KW))
        self.set(pr.PROTOCOL_VERSION, encode(SIM_PROTOCOL_VERSION, "int16"))
        self.set(pr.FIRMWARE_VERSION, encode_string("sim-powerpack-1.0", pr.STRING_REGISTERS))
        self.set(pr.SERIAL_NUMBER, encode_string(f"SIM-{config.name}", pr.STRING_REGISTERS))
        self.set(pr.BATTERY_METERS, encode(1, "int16"))
        self.set(pr.SITE_METERS, encode(1, "int16"))
        watts = round(config.nameplate_power_kw * 1000)
        self.set(pr.MAX_CHARGE_POWER_W, encode(watts, "int32"))
        self.set(pr.MAX_DISCHARGE_POWER_W, encode(watts, "int32"))
        self.set(pr.ENERGY_WH, encode(round(config.nameplate_energy_kwh * 1000), "int32"))
        self.on_write.append(self._apply)
        # The written registers, in order, as the battery saw them (tests read the protocol back here).
        self.write_log: list[tuple[int, list[int]]] = []

    def refresh(self) -> None:
        self.site.advance()
        b = self.battery
        t = self.site.model.t
        self.set(pr.COMMAND_SOURCE, [1 if b.alive(t) else 0])
        self.set(pr.TARGET_POWER_W, encode(round(b.power_kw * 1000), "int32"))
        self.set(pr.NOMINAL_ENERGY_WH, encode(round(b.soe_kwh * 1000), "int32"))
        self.set(pr.AVAILABLE_BLOCKS, [self.blocks])

    def write(self, address: int, values: list[int]) -> bool:
        # Steps up to now under the old commands before the new ones take effect.
        self.site.advance()
        return super().write(address, values)

    def _apply(self, address: int, values: list[int]) -> None:
        self.write_log.append((address, values))
        b = self.battery
        touched = set(range(address, address + len(values)))

        def int32(at: int) -> int:
            return int(decode([self.registers.get(at, 0), self.registers.get(at + 1, 0)], "int32"))

        if pr.REAL_POWER_MODE in touched:
            b.real_power_mode = self.registers[pr.REAL_POWER_MODE]
        if pr.ALWAYS_ACTIVE in touched:
            b.always_active = self.registers[pr.ALWAYS_ACTIVE]
        if touched & {pr.REAL_POWER_W, pr.REAL_POWER_W + 1}:
            b.write_setpoint(int32(pr.REAL_POWER_W) / 1000.0)
        if pr.HEARTBEAT in touched:
            b.write_heartbeat(self.registers[pr.HEARTBEAT], self.site.model.t)
        if pr.COMMAND_TIMEOUT_S in touched:
            b.command_timeout_s = float(self.registers[pr.COMMAND_TIMEOUT_S])
        if touched & {pr.RAMP_UP_W_PER_S, pr.RAMP_UP_W_PER_S + 1}:
            b.write_ramps(up_kw_per_s=int32(pr.RAMP_UP_W_PER_S) / 1000.0)
        if touched & {pr.RAMP_DOWN_W_PER_S, pr.RAMP_DOWN_W_PER_S + 1}:
            b.write_ramps(down_kw_per_s=int32(pr.RAMP_DOWN_W_PER_S) / 1000.0)


class AcuvimBank(RegisterBank):
    """An Acuvim's registers, secondary side, rendered from the meter's primary-side state."""

    def __init__(self, config: Acuvim2Config, meter: MeterState, site: SimulatedSite) -> None:
        super().__init__([(ar.FLOAT_START, ar.FLOAT_COUNT), (ar.ENERGY_START, ar.ENERGY_COUNT),
                          (ar.PHASE_ENERGY_START, ar.PHASE_ENERGY_COUNT)])
        self.meter = meter
        self.site = site
        self.pt = config.pt1 / config.pt2
        self.ct = config.ct1 / config.ct2

    def refresh(self) -> None:
        self.site.advance()
        m = self.meter
        power_raw = 1000.0 / (self.pt * self.ct)  # kW primary -> W secondary
        currents = m.phase_current_a()
        phase_power = m.phase_power_kw()
        values: dict[str, float] = {
            "frequency": FREQUENCY_HZ,
            "voltage_line_average": PHASE_VOLTAGE_V * math.sqrt(3) / self.pt,
            "current_phase_a": currents[0] / self.ct,
            "current_phase_b": currents[1] / self.ct,
            "current_phase_c": currents[2] / self.ct,
            "current_phase_average": sum(currents) / 3 / self.ct,
            "power_phase_a_active": phase_power[0] * power_raw,
            "power_phase_b_active": phase_power[1] * power_raw,
            "power_phase_c_active": phase_power[2] * power_raw,
            "power_total_active": m.power_kw * power_raw,
            "power_total_reactive": m.reactive_kvar * power_raw,
            "power_total_apparent": m.apparent_kva() * power_raw,
            "power_factor_total": m.power_factor(),
        }
        for name, (address, _) in ar.FLOAT_FIELDS.items():
            self.set(address, encode(values[name], "float32"))
        energies = {
            "energy_imported_active": m.imported_kwh,
            "energy_exported_active": m.exported_kwh,
            "energy_imported_reactive": m.reactive_imported_kvarh,
            "energy_exported_reactive": m.reactive_exported_kvarh,
        }
        for i, phase in enumerate("abc"):
            energies[f"energy_imported_phase_{phase}_active"] = m.phase_imported_kwh[i]
            energies[f"energy_exported_phase_{phase}_active"] = m.phase_exported_kwh[i]
        for name, address in ar.ENERGY_FIELDS.items():
            self.set(address, encode(round(energies[name] / ar.ENERGY_KWH_PER_COUNT), "int32"))


def _meter_role(site: SiteConfig, name: str) -> MeterRole:
    c = site.controller
    if c is None or c.site_meter == name:
        return "site"
    if c.battery_meter == name:
        return "battery"
    return "load"


class ModbusSite:
    """Every simulated PowerPack and Acuvim of a site file, served at its own host:port and unit id."""

    def __init__(self, site: SiteConfig, clock: Clock, *, names: set[str] | None = None,
                 rng: Callable[[str], random.Random] | None = None, physics_log: str | None = None) -> None:
        sim = site.simulator or SimulatorConfig()
        self.site = site
        self.clock = clock
        # The physics runs on whole seconds of the clock (see SiteModel.advance_to).
        now = float(math.floor(clock.now().timestamp()))
        devices = [d for d in site.devices if isinstance(d, PowerPackConfig | Acuvim2Config)
                   and (names is None or d.name in names)]
        self.batteries: dict[str, BatteryModel] = {}
        self.meters: dict[str, MeterState] = {}
        banks: dict[str, RegisterBank] = {}
        model = SiteModel(SiteProfile(sim.site_model, sim.seed, site.site.timezone), now)
        self.sim = SimulatedSite(model, clock, physics_log if physics_log is not None
                                 else os.environ.get(PHYSICS_LOG_ENV) or None)
        for d in devices:
            if isinstance(d, PowerPackConfig):
                soe = sim.site_model.initial_soe_kwh
                params = BatteryParams(d.nameplate_power_kw, d.nameplate_energy_kwh, d.ramp_up_kw_per_s,
                                       d.ramp_down_kw_per_s, sim.site_model.charge_efficiency)
                battery = BatteryModel(params, d.nameplate_energy_kwh / 2 if soe is None else soe, now)
                self.batteries[d.name] = battery
                banks[d.name] = PowerPackBank(d, battery, self.sim)
            else:
                meter = MeterState(_meter_role(site, d.name))
                self.meters[d.name] = meter
                banks[d.name] = AcuvimBank(d, meter, self.sim)
        model.batteries = self.batteries
        model.meters = self.meters
        main = site.controller.battery if site.controller is not None else None
        model.main_battery = main if main in self.batteries else next(iter(self.batteries), None)
        self.model = model
        make_rng = rng or (lambda name: random.Random(f"{sim.seed}:{name}"))
        self.units: dict[str, SimUnit] = {}
        self.servers: dict[tuple[str, int], ModbusSimServer] = {}
        for d in devices:
            unit = SimUnit(d.name, banks[d.name], Faults(sim.faults.get(d.name), make_rng(f"faults:{d.name}")))
            self.units[d.name] = unit
            server = self.servers.setdefault((d.host, d.port), ModbusSimServer(d.host, d.port, clock))
            server.units[d.unit_id] = unit

    @property
    def empty(self) -> bool:
        return not self.units

    def bank(self, name: str) -> RegisterBank:
        return self.units[name].bank

    async def start(self) -> None:
        started: list[ModbusSimServer] = []
        try:
            for server in self.servers.values():
                await server.start()
                started.append(server)
        except BaseException:
            for server in started:
                await server.stop()
            raise

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    async def run_physics(self) -> None:
        """Step the model every STEP_S of the clock even when nobody reads (the physics log stays complete)."""
        while True:
            await self.clock.sleep(STEP_S)
            self.sim.advance()

    async def __aenter__(self) -> ModbusSite:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(ctx: SimContext) -> None:
    """`flux-edge simulate` provider: returns at once when the site simulates no Modbus device."""
    names = {d.name for d in ctx.site.devices if d.type in MODBUS_KINDS and ctx.simulated(d.name)}
    if not names:
        return
    site = ModbusSite(ctx.site, ctx.clock, names=names, rng=ctx.rng)
    ctx.shared["site_model"] = site.model
    ctx.shared["modbus_site"] = site
    await site.start()
    ctx.ready("modbus").set()
    log.info("modbus_devices_serving", devices=sorted(names), servers=len(site.servers))
    try:
        await site.run_physics()
    finally:
        await site.stop()
