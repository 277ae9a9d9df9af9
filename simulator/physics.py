"""The physical site behind the simulated Modbus devices: a battery, a load, solar, and the meters.

Pure and deterministic: state moves only in `advance_to(t)`, in whole steps of `STEP_S` seconds,
and the load and solar profiles are functions of time and seed alone, so the same seed and the same
clock give the same site however often it is read. Units: kW, kWh, seconds; battery power + =
discharge; meter power + = import (the battery meter reads + when the battery discharges, as the
cloud expects: the inverter's import is minus that).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from simulator.config import SiteModelConfig

STEP_S = 1.0
HEARTBEAT_VALUES = (0xAA55, 0x55AA)
DEFAULT_COMMAND_TIMEOUT_S = 10.0
NOISE_SAMPLE_S = 30.0


@dataclass(frozen=True)
class BatteryParams:
    power_kw: float
    energy_kwh: float
    ramp_up_kw_per_s: float
    ramp_down_kw_per_s: float
    charge_efficiency: float = 0.92


@dataclass(frozen=True)
class BatteryStep:
    """What one step did (for logs and property checks)."""

    t: float
    dt: float
    power_kw: float
    target_kw: float
    soe_kwh: float
    alive: bool


class BatteryModel:
    """A PowerPack as its registers see it.

    Follows the setpoint only in direct real-power mode and only while the heartbeat keeps changing
    within the command timeout; otherwise it drops to 0 kW at once. Power moves towards the
    setpoint at the ramp rates (ramp-down while the magnitude shrinks, ramp-up while it grows),
    never beyond nameplate power, and never beyond what the stored energy (or the room left) allows
    in the step. Charging stores `charge_efficiency` of the energy drawn.
    """

    def __init__(self, params: BatteryParams, soe_kwh: float, t: float) -> None:
        self.params = params
        self.soe_kwh = min(max(0.0, soe_kwh), params.energy_kwh)
        self.power_kw = 0.0
        self.t = t
        self.setpoint_kw = 0.0
        self.real_power_mode = 0
        self.always_active = 0
        self.command_timeout_s = DEFAULT_COMMAND_TIMEOUT_S
        self.ramp_up_kw_per_s = params.ramp_up_kw_per_s
        self.ramp_down_kw_per_s = params.ramp_down_kw_per_s
        self.heartbeat: int | None = None
        self.heartbeat_changed_at: float | None = None
        self.heartbeats_seen = 0

    # --- register writes ------------------------------------------------------------------------

    def write_heartbeat(self, value: int, t: float) -> None:
        if value != self.heartbeat:
            self.heartbeat_changed_at = t
            self.heartbeats_seen += 1
        self.heartbeat = value

    def write_setpoint(self, kw: float) -> None:
        self.setpoint_kw = kw

    def write_ramps(self, up_kw_per_s: float | None = None, down_kw_per_s: float | None = None) -> None:
        # A zero or negative rate would freeze the battery; the real one rejects it, we ignore it.
        if up_kw_per_s is not None and up_kw_per_s > 0:
            self.ramp_up_kw_per_s = up_kw_per_s
        if down_kw_per_s is not None and down_kw_per_s > 0:
            self.ramp_down_kw_per_s = down_kw_per_s

    # --- behaviour ------------------------------------------------------------------------------

    def alive(self, t: float) -> bool:
        """Whether commands are being followed at `t`: direct mode and a recent heartbeat change."""
        return (self.real_power_mode == 1 and self.heartbeat_changed_at is not None
                and t - self.heartbeat_changed_at <= self.command_timeout_s)

    def target_kw(self, t: float) -> float:
        if not self.alive(t):
            return 0.0
        p = self.params.power_kw
        return min(max(self.setpoint_kw, -p), p)

    def _ramp(self, target: float, dt: float) -> float:
        p = self.power_kw
        if p != 0.0 and (p * target < 0 or abs(target) < abs(p)):
            down = self.ramp_down_kw_per_s * dt
            floor = 0.0 if p * target < 0 else target
            if abs(p - floor) <= down:
                used = abs(p - floor) / self.ramp_down_kw_per_s
                p = floor
                dt -= used
            else:
                return p - math.copysign(down, p)
        if p == target or dt <= 0:
            return p
        up = self.ramp_up_kw_per_s * dt
        return target if abs(target - p) <= up else p + math.copysign(up, target - p)

    def step(self, dt: float) -> BatteryStep:
        t = self.t + dt
        target = self.target_kw(t)
        power = self._ramp(target, dt) if self.alive(t) else 0.0
        power = min(max(power, -self.params.power_kw), self.params.power_kw)
        hours = dt / 3600.0
        if power > 0:
            power = min(power, self.soe_kwh / hours) if hours > 0 else 0.0
            self.soe_kwh -= power * hours
        elif power < 0:
            room = self.params.energy_kwh - self.soe_kwh
            eff = self.params.charge_efficiency
            power = max(power, -room / (hours * eff)) if hours > 0 else 0.0
            self.soe_kwh += -power * eff * hours
        self.soe_kwh = min(max(0.0, self.soe_kwh), self.params.energy_kwh)
        self.power_kw = power
        self.t = t
        return BatteryStep(t, dt, power, target, self.soe_kwh, self.alive(t))


def noise(seed: int, key: str, t: float) -> float:
    """A smooth standard-normal-ish noise: samples every NOISE_SAMPLE_S, linearly interpolated."""
    k = math.floor(t / NOISE_SAMPLE_S)
    frac = t / NOISE_SAMPLE_S - k
    base = (seed << 20) ^ zlib.crc32(key.encode())

    def sample(i: int) -> float:
        return random.Random(base * 1_000_003 + i).gauss(0.0, 1.0)

    return sample(k) * (1.0 - frac) + sample(k + 1) * frac


@dataclass(frozen=True)
class SiteProfile:
    """Daily load and solar shapes, in the site's local time, with deterministic noise."""

    config: SiteModelConfig
    seed: int
    timezone: str = "Europe/London"

    def _hour(self, t: float) -> float:
        local = datetime.fromtimestamp(t, ZoneInfo(self.timezone))
        return local.hour + local.minute / 60 + local.second / 3600

    def load_kw(self, t: float) -> float:
        h = self._hour(t)
        evening = math.exp(-((h - 18.5) ** 2) / (2 * 1.8**2))
        morning = 0.4 * math.exp(-((h - 7.5) ** 2) / (2 * 1.2**2))
        c = self.config
        jitter = c.noise_kw * noise(self.seed, "load", t)
        return max(0.0, c.base_load_kw + c.peak_load_kw * (evening + morning) + jitter)

    def solar_kw(self, t: float) -> float:
        h = self._hour(t)
        if not 6.0 < h < 20.0:
            return 0.0
        shape = math.sin(math.pi * (h - 6.0) / 14.0) ** 2
        cloud = 1.0 - 0.25 * abs(noise(self.seed, "cloud", t))
        return max(0.0, self.config.solar_peak_kw * shape * max(0.0, cloud))


PHASE_SHARES = (0.36, 0.33, 0.31)  # a slightly unbalanced site; the shares sum to 1
PHASE_VOLTAGE_V = 230.0
FREQUENCY_HZ = 50.0

MeterRole = Literal["site", "battery", "load"]


@dataclass
class MeterState:
    """An Acuvim's view: instantaneous power and integrating energy registers (primary side)."""

    role: MeterRole
    power_kw: float = 0.0
    reactive_kvar: float = 0.0
    imported_kwh: float = 0.0
    exported_kwh: float = 0.0
    reactive_imported_kvarh: float = 0.0
    reactive_exported_kvarh: float = 0.0
    phase_imported_kwh: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    phase_exported_kwh: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def integrate(self, power_kw: float, reactive_kvar: float, dt: float) -> None:
        hours = dt / 3600.0
        self.power_kw = power_kw
        self.reactive_kvar = reactive_kvar
        if power_kw >= 0:
            self.imported_kwh += power_kw * hours
        else:
            self.exported_kwh += -power_kw * hours
        if reactive_kvar >= 0:
            self.reactive_imported_kvarh += reactive_kvar * hours
        else:
            self.reactive_exported_kvarh += -reactive_kvar * hours
        for i, share in enumerate(PHASE_SHARES):
            p = power_kw * share
            if p >= 0:
                self.phase_imported_kwh[i] += p * hours
            else:
                self.phase_exported_kwh[i] += -p * hours

    def phase_power_kw(self) -> list[float]:
        return [self.power_kw * s for s in PHASE_SHARES]

    def apparent_kva(self) -> float:
        return math.hypot(self.power_kw, self.reactive_kvar)

    def power_factor(self) -> float:
        s = self.apparent_kva()
        return 1.0 if s == 0 else self.power_kw / s

    def phase_current_a(self) -> list[float]:
        s = self.apparent_kva()
        return [s * share * 1000.0 / PHASE_VOLTAGE_V for share in PHASE_SHARES]


@dataclass(frozen=True)
class PhysicsStep:
    """One step of the whole site, as logged to FLUX_SIM_PHYSICS_LOG."""

    time: float
    soe_kwh: float | None
    battery_kw: float
    setpoint_kw: float | None
    site_kw: float
    load_kw: float
    solar_kw: float

    def as_json(self) -> dict[str, float | str | None]:
        return {"time": datetime.fromtimestamp(self.time, UTC).isoformat(),
                "soe_kwh": self.soe_kwh, "battery_kw": self.battery_kw, "setpoint_kw": self.setpoint_kw,
                "site_kw": self.site_kw, "load_kw": self.load_kw, "solar_kw": self.solar_kw}


REACTIVE_SHARE = 0.2  # the load draws this much reactive power per kW


class SiteModel:
    """Batteries, load, solar and meters stepped together on the simulator's clock."""

    def __init__(self, profile: SiteProfile, t: float, batteries: dict[str, BatteryModel] | None = None,
                 meters: dict[str, MeterState] | None = None, main_battery: str | None = None) -> None:
        self.profile = profile
        self.t = t
        self.batteries = batteries or {}
        self.meters = meters or {}
        self.main_battery = main_battery or next(iter(self.batteries), None)
        self.load_kw = profile.load_kw(t)
        self.solar_kw = profile.solar_kw(t)

    def battery_kw(self) -> float:
        return sum(b.power_kw for b in self.batteries.values())

    def site_kw(self) -> float:
        return self.load_kw - self.solar_kw - self.battery_kw()

    def advance_to(self, t: float) -> list[PhysicsStep]:
        """Take every whole STEP_S step that ends at or before `t`.

        Fixed steps make the site a function of the seed and the commands alone, not of how often
        (or when) anybody reads it; registers lag real time by under one step, as a meter's do.
        """
        steps: list[PhysicsStep] = []
        while self.t + STEP_S <= t + 1e-9:
            steps.append(self._step(STEP_S))
        return steps

    def _step(self, dt: float) -> PhysicsStep:
        t = self.t + dt
        for b in self.batteries.values():
            b.step(dt)
        self.load_kw = self.profile.load_kw(t)
        self.solar_kw = self.profile.solar_kw(t)
        battery_kw = self.battery_kw()
        site_kw = self.site_kw()
        load_q = self.load_kw * REACTIVE_SHARE
        for m in self.meters.values():
            if m.role == "site":
                m.integrate(site_kw, load_q, dt)
            elif m.role == "battery":
                m.integrate(battery_kw, 0.0, dt)
            else:
                m.integrate(self.load_kw, load_q, dt)
        self.t = t
        main = self.batteries.get(self.main_battery) if self.main_battery else None
        return PhysicsStep(t, main.soe_kwh if main else None, battery_kw, main.setpoint_kw if main else None,
                           site_kw, self.load_kw, self.solar_kw)
