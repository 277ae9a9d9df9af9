"""The site file: one model tree, validated when it enters and trusted everywhere inside."""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from typing import Any

from controller.config.simulator import SimulatorConfig
from controller.core.config import DEFAULT_TIMEZONE, ConfigModel, ProblemList, TimedRate, TimezoneName, did_you_mean
from controller.core.schema import Field
from controller.engine.decision import Decider
from controller.engine.envelope import Limits
from controller.market.config import MarketConfig
from controller.ops.config import MetricsConfig, MqttConfig, OpsConfig
from controller.planner.config import PlannerConfig
from devices.catalog import BATTERY_KINDS, METER_KINDS, DeviceConfig
from modes.base import ModeContext
from modes.catalog import ModeConfig, build_modes, priority_key
from uploader.config import BufferConfig, UploaderConfig

MAX_READING_AGE_BOUND_S = 300.0  # beyond this, stale-data idling is as good as off


class SiteInfo(ConfigModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="short slug: topics, paths, registry")
    name: str = Field(min_length=1)
    timezone: TimezoneName = DEFAULT_TIMEZONE


class ControllerConfig(ConfigModel):
    site_meter: str = Field(description="name of the meter at the grid connection (+ = import)")
    battery: str = Field(description="name of the battery device")
    battery_meter: str | None = Field(default=None, description="name of the battery's own meter, if any")
    period_s: float = Field(default=4.0, gt=0, le=60, description="tick period; also ticks on a fresh site reading")
    max_reading_age_s: float = Field(default=30.0, gt=0, le=MAX_READING_AGE_BOUND_S,
                                     description="older site power or SoE: safe idle")
    charge_efficiency: float = Field(default=0.92, gt=0, le=1)
    soe_min_kwh: float = Field(ge=0, description="no discharge at or below")
    soe_max_kwh: float = Field(gt=0, description="no charge at or above")
    battery_charge_limit_kw: float = Field(ge=0)
    battery_discharge_limit_kw: float = Field(ge=0)
    site_import_limit_kw: float = Field(ge=0)
    site_export_limit_kw: float = Field(ge=0)
    site_limit_margin_kw: float = Field(
        default=0.0, ge=0,
        description="headroom kept inside the site limits for load and solar changes between decisions")
    dry_run: bool = Field(default=False, description="decide and record, never write the battery")
    emulation: bool = Field(
        default=False, description="report site power as if the battery's output had flowed (commissioning)")
    modes: list[ModeConfig] = Field(default_factory=list)
    import_rates: list[TimedRate] = Field(default_factory=list, description="p/kWh added to import prices")
    export_rates: list[TimedRate] = Field(default_factory=list, description="p/kWh taken off export prices")

    def effective_priority(self, index: int) -> tuple[int, int, int]:
        """Sort key of mode `index`: explicit priority, else the spec's order of types; file order breaks ties."""
        return priority_key(self.modes[index], index)

    def limits(self) -> Limits:
        """The safety envelope's limits; a setpoint runs at most one control period."""
        return Limits(self.battery_charge_limit_kw, self.battery_discharge_limit_kw, self.site_import_limit_kw,
                      self.site_export_limit_kw, self.soe_min_kwh, self.soe_max_kwh, self.max_reading_age_s,
                      soe_horizon_s=self.period_s, charge_efficiency=self.charge_efficiency,
                      site_margin_kw=self.site_limit_margin_kw)

    def mode_context(self) -> ModeContext:
        return ModeContext(self.charge_efficiency, self.limits(), tuple(self.import_rates), tuple(self.export_rates))

    def decider(self) -> Decider:
        """This site's modes in priority order with its limits: what the control loop, `decide` and the backtest run."""
        ctx = self.mode_context()
        return Decider(ctx.limits, build_modes(self.modes, ctx))

    def problems(self) -> ProblemList:
        if self.site_limit_margin_kw >= min(self.site_import_limit_kw, self.site_export_limit_kw) > 0:
            yield ("site_limit_margin_kw",), "must be below both site limits"
        if self.soe_min_kwh >= self.soe_max_kwh:
            yield ("soe_min_kwh",), f"must be below soe_max_kwh ({self.soe_max_kwh:g})"
        seen: dict[tuple[str, int | None], int] = {}
        for i, mode in enumerate(self.modes):
            mode_key: tuple[str, int | None] = (mode.type, mode.priority)
            if mode_key in seen:
                j = seen[mode_key]
                for a, pa in enumerate(self.modes[j].periods):
                    for b, pb in enumerate(mode.periods):
                        if pa.overlaps(pb):
                            yield ("modes", i, "periods", b), (
                                f"overlaps modes.{j}.periods.{a} of the same mode type and priority")
            else:
                seen[mode_key] = i


class SiteConfig(ConfigModel):
    site: SiteInfo
    devices: list[DeviceConfig] = Field(min_length=1)
    controller: ControllerConfig | None = None
    market: MarketConfig = Field(default_factory=MarketConfig)
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    uploader: UploaderConfig = Field(default_factory=UploaderConfig)
    mqtt: MqttConfig | None = None
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    simulator: SimulatorConfig | None = None
    planner: PlannerConfig | None = Field(
        default=None, description="the value model and limits of the planner (a 48 h schedule); off without it")

    def _controller_devices(self, c: ControllerConfig) -> ProblemList:
        """The controller's devices exist, are of the right kind, and its limits fit the battery's nameplate."""
        devices = {d.name: d for d in self.devices}
        for key, kinds in (("site_meter", METER_KINDS), ("battery", BATTERY_KINDS), ("battery_meter", METER_KINDS)):
            name = getattr(c, key)
            if name is None:
                continue
            if name not in devices:
                yield (key,), f"no device named '{name}'" + did_you_mean(name, devices)
            elif devices[name].type not in kinds:
                yield (key,), f"device '{name}' is of type {devices[name].type}, expected one of {sorted(kinds)}"
        battery = devices.get(c.battery)
        if battery is not None and battery.type in BATTERY_KINDS:
            energy = getattr(battery, "nameplate_energy_kwh", None)
            power = getattr(battery, "nameplate_power_kw", None)
            if energy is not None and c.soe_max_kwh > energy:
                yield ("soe_max_kwh",), f"exceeds the battery's nameplate energy ({energy:g} kWh)"
            for key in ("battery_charge_limit_kw", "battery_discharge_limit_kw"):
                if power is not None and getattr(c, key) > power:
                    yield (key,), f"exceeds the battery's nameplate power ({power:g} kW)"

    def _planner_problems(self, p: PlannerConfig) -> ProblemList:
        c = self.controller
        if c is None:
            yield ("planner",), "the planner needs a controller section (its limits are the plan's)"
        elif p.band is not None:
            if p.band.low_kwh < c.soe_min_kwh:
                yield ("planner", "band", "low_kwh"), f"must be inside the hard bounds (soe_min_kwh {c.soe_min_kwh:g})"
            if p.band.high_kwh > c.soe_max_kwh:
                yield ("planner", "band", "high_kwh"), f"must be inside the hard bounds (soe_max_kwh {c.soe_max_kwh:g})"
    def battery_ramp_kw_per_s(self) -> float:
        """The faster of the controller's battery's ramp rates (inf when it names none)."""
        c = self.controller
        if c is None:
            return math.inf
        try:
            battery = self.device(c.battery)
        except KeyError:
            return math.inf
        rates = [getattr(battery, k, None) for k in ("ramp_up_kw_per_s", "ramp_down_kw_per_s")]
        finite = [float(r) for r in rates if isinstance(r, int | float) and math.isfinite(r) and r > 0]
        return max(finite) if finite else math.inf

    def decider(self) -> Decider:
        """The controller's Decider with the battery's ramp rate in its limits (the control loop and `decide`)."""
        assert self.controller is not None
        d = self.controller.decider()
        d.limits = dataclasses.replace(d.limits, battery_ramp_kw_per_s=self.battery_ramp_kw_per_s())
        return d

    def device(self, name: str) -> DeviceConfig:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    def problems(self) -> ProblemList:
        if self.controller is not None:
            for path, message in self._controller_devices(self.controller):
                yield ("controller", *path), message
        for i, d in enumerate(self.devices):
            yield from ((("devices", i, *path), message) for path, message in d.problems_among(self.devices[:i]))
        for attr in ("name", "id"):
            counts = Counter(getattr(d, attr) for d in self.devices)
            first: dict[Any, int] = {}
            for i, d in enumerate(self.devices):
                value = getattr(d, attr)
                if counts[value] > 1:
                    if value in first:
                        yield ("devices", i, attr), f"duplicate device {attr} '{value}' (also devices.{first[value]})"
                    else:
                        first[value] = i
        endpoints: dict[tuple[str, int, int], int] = {}
        for i, d in enumerate(self.devices):
            key = d.endpoint()
            if key is None:
                continue
            if key in endpoints:
                yield ("devices", i, "port"), (
                    f"devices.{endpoints[key]} already uses {d.host}:{d.port} with the same unit/address")
            endpoints.setdefault(key, i)
        sink_names = Counter(s.name for s in self.uploader.sinks)
        for i, s in enumerate(self.uploader.sinks):
            if sink_names[s.name] > 1:
                yield ("uploader", "sinks", i, "name"), f"duplicate sink name '{s.name}'"
        if self.simulator is not None:
            names = {d.name for d in self.devices}
            for i, n in enumerate(self.simulator.devices or []):
                if n not in names:
                    yield ("simulator", "devices", i), f"no device named '{n}'" + did_you_mean(n, names)
            for n in self.simulator.faults:
                if n not in names:
                    yield ("simulator", "faults", n), f"no device named '{n}'" + did_you_mean(n, names)
        if self.planner is not None:
            yield from self._planner_problems(self.planner)
        for m in (self.mqtt,):
            if m is not None and re.search(r"[#+/\s]", m.topic_prefix.strip("/")):
                yield ("mqtt", "topic_prefix"), "must not contain MQTT wildcards, spaces or inner slashes"
