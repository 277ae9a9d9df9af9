"""One day of the site's control modes against the simulated site, in simulated time: no sockets, no sleeps.

The simulator's own site model (`simulator.modbus_devices.ModbusSite`, built from the site file exactly as
`flux-edge simulate` builds it, but never served) stands in for the site. Every `controller.period_s` of
simulated time: the physics advances to the tick, the tick reads the site meter's power and the battery's
SoE as fresh readings, the Modo cache as it would have been (see market.py), decides with the engine's own
`Decider`, and writes heartbeat + setpoint to the battery model the way the PowerPack driver does.
Limits and energy are accounted on every physics step.

Axle's schedule, when given, is known all day (Axle publishes it ahead); without one the axle mode stays
inactive. What this does not model: poll latency and register rounding, the extra ticks on fresh site
readings, operator overrides, `dry_run`/`emulation` (the battery is always driven). Same site file, day
and inputs: same result, bit for bit.

Value (`value_gbp`): the cash at the recorded prices (`imbalance_revenue_gbp`, accounts.py) plus the change in
stored energy at one stated price: `--stored-energy-price`, else the site's `planner.terminal_value_p_per_kwh`
(what the planner and the multi-day backtest value a kWh left in the battery at), else the day's mean
recorded price. A day that ends emptier than it began sold energy it did not buy that day; counted as cash
alone, draining the battery would look like profit.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from controller.backtest.accounts import PRICE_FROM_DAY_MEAN, PRICE_FROM_OPTION, PRICE_FROM_PLANNER, Accounts
from controller.backtest.inputs import InputError, Series
from controller.backtest.market import RecordedMarket
from controller.config.site import SiteConfig
from controller.core.clock import ManualClock
from controller.engine.decision import Decision
from controller.engine.envelope import STALE
from controller.engine.schedule import day_bounds, zone
from controller.engine.site_state import AxleStep, SiteState
from devices.powerpack.config import PowerPackConfig
from simulator.config import SimulatorConfig
from simulator.modbus_devices import ModbusSite
from simulator.physics import HEARTBEAT_VALUES, STEP_S, SiteProfile

# The model starts this long before the day with the battery idle, so the meters have a reading at 00:00.
WARMUP_S = 60.0
NO_MODE = "(none)"


@dataclass(frozen=True)
class RecordedProfile(SiteProfile):
    """The physics' load and solar profiles, each replaced by a recorded series where one is given."""

    load: Series | None = None
    solar: Series | None = None

    def load_kw(self, t: float) -> float:
        return self.load.at(t) if self.load is not None else super().load_kw(t)

    def solar_kw(self, t: float) -> float:
        return self.solar.at(t) if self.solar is not None else super().solar_kw(t)


@dataclass(frozen=True, slots=True)
class TickSample:
    """What one tick saw and did (chart and CSV rows)."""

    time: datetime
    soe_kwh: float
    site_kw: float
    setpoint_kw: float
    battery_kw: float
    price_p_per_kwh: float  # the SP's recorded price
    effective: tuple[str, ...]
    constraints: tuple[str, ...]


@dataclass
class BacktestResult:
    site: SiteConfig
    day: date
    start: datetime
    end: datetime
    market: RecordedMarket
    accounts: Accounts
    samples: list[TickSample] = field(default_factory=list)
    effective_s: dict[str, float] = field(default_factory=dict)
    active_s: dict[str, float] = field(default_factory=dict)
    constraint_ticks: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    stale_ticks: int = 0
    mode_errors: int = 0
    axle_unknown_actions: int = 0
    mode_names: tuple[str, ...] = ()  # priority order, highest first
    soe_start_kwh: float = 0.0
    soe_end_kwh: float = 0.0
    nameplate_energy_kwh: float = 0.0
    stored_energy_price_p_per_kwh: float = 0.0
    stored_energy_price_source: str = PRICE_FROM_DAY_MEAN
    inputs: dict[str, Any] = field(default_factory=dict)

    def record(self, now: datetime, period_s: float, state: SiteState, decision: Decision, battery_kw: float) -> None:
        """One tick: its time per mode, the constraints that bit, and a sample for the chart."""
        self.ticks += 1
        if STALE in decision.constraints:
            self.stale_ticks += 1
        for name in decision.effective or (NO_MODE,):
            self.effective_s[name] = self.effective_s.get(name, 0.0) + period_s
        for name in decision.active or (NO_MODE,):
            self.active_s[name] = self.active_s.get(name, 0.0) + period_s
        for name in decision.constraints:
            self.constraint_ticks[name] += 1
        settlement = self.market.settlement_at(now.timestamp())
        self.samples.append(TickSample(
            now, math.nan if state.soe_kwh is None else state.soe_kwh,
            math.nan if state.site_power_kw is None else state.site_power_kw, decision.setpoint_kw, battery_kw,
            math.nan if settlement is None else settlement.price_p_per_kwh, decision.effective,
            decision.constraints))

    @property
    def stored_energy_change_kwh(self) -> float:
        return self.soe_end_kwh - self.soe_start_kwh

    @property
    def stored_energy_value_gbp(self) -> float:
        return self.stored_energy_change_kwh * self.stored_energy_price_p_per_kwh / 100.0

    @property
    def value_gbp(self) -> float:
        return self.accounts.revenue_gbp + self.stored_energy_value_gbp

    def summary(self) -> dict[str, Any]:
        c = self.site.controller
        assert c is not None
        prices = [s.price_p_per_kwh for s in self.market.settlements]
        return {
            "site": self.site.site.id,
            "day": self.day.isoformat(),
            "timezone": self.site.site.timezone,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "inputs": self.inputs,
            "tick_period_s": c.period_s,
            "ticks": self.ticks,
            "stale_ticks": self.stale_ticks,
            "mode_errors": self.mode_errors,
            "axle_unknown_actions": self.axle_unknown_actions,
            "soe_start_kwh": round(self.soe_start_kwh, 3),
            "soe_end_kwh": round(self.soe_end_kwh, 3),
            **self.accounts.summary(self.nameplate_energy_kwh),
            "stored_energy_change_kwh": round(self.stored_energy_change_kwh, 3),
            "stored_energy_price_p_per_kwh": round(self.stored_energy_price_p_per_kwh, 3),
            "stored_energy_price_source": self.stored_energy_price_source,
            "stored_energy_value_gbp": round(self.stored_energy_value_gbp, 2),
            "value_gbp": round(self.value_gbp, 2),
            "limits": {"soe_min_kwh": c.soe_min_kwh, "soe_max_kwh": c.soe_max_kwh,
                       "battery_charge_limit_kw": c.battery_charge_limit_kw,
                       "battery_discharge_limit_kw": c.battery_discharge_limit_kw,
                       "site_import_limit_kw": c.site_import_limit_kw,
                       "site_export_limit_kw": c.site_export_limit_kw},
            "market": {"settlement_periods": len(prices),
                       "price_min_p_per_kwh": round(min(prices), 3), "price_max_p_per_kwh": round(max(prices), 3),
                       "price_mean_p_per_kwh": round(sum(prices) / len(prices), 3),
                       "published_after_sp_start_s": self.market.published_after_s},
            # A tick counts its whole period for every mode in its list; NO_MODE when none was effective.
            "effective_mode_s": dict(sorted(self.effective_s.items())),
            "active_mode_s": dict(sorted(self.active_s.items())),
            "constraint_ticks": dict(sorted(self.constraint_ticks.items())),
        }


def soe_tolerance_kwh(charge_limit_kw: float, discharge_limit_kw: float, period_s: float,
                      ramp_down_kw_per_s: float) -> float:
    """How far past an SoE bound the battery can go before a tick sees it and the ramp brings it to 0 kW."""
    kw = max(charge_limit_kw, discharge_limit_kw)
    return kw * (period_s + kw / ramp_down_kw_per_s) / 3600.0


def stored_energy_price(site: SiteConfig, market: RecordedMarket, given: float | None) -> tuple[float, str]:
    """(p/kWh, source) a kWh gained or lost over the day is valued at: the option, the planner's, the day's mean."""
    if given is not None:
        return given, PRICE_FROM_OPTION
    if site.planner is not None and site.planner.terminal_value_p_per_kwh is not None:
        return site.planner.terminal_value_p_per_kwh, PRICE_FROM_PLANNER
    prices = [s.price_p_per_kwh for s in market.settlements]
    return sum(prices) / len(prices), PRICE_FROM_DAY_MEAN


def run_backtest(site: SiteConfig, day: date, market: RecordedMarket, *, load: Series | None = None,
                 solar: Series | None = None, axle: tuple[AxleStep, ...] = (), initial_soe_kwh: float | None = None,
                 stored_energy_price_p_per_kwh: float | None = None,
                 inputs: dict[str, Any] | None = None) -> BacktestResult:
    """Run local date `day` (site timezone). Raises InputError when the site cannot be backtested."""
    c = site.controller
    if c is None:
        raise InputError("the site file has no controller section")
    battery_config = site.device(c.battery)
    if not isinstance(battery_config, PowerPackConfig):
        raise InputError(f"battery {c.battery!r} is a {battery_config.type}: the simulator models powerpacks only")
    start, end = day_bounds(day, zone(site.site.timezone))
    sim_config = site.simulator or SimulatorConfig()
    # physics_log="" keeps FLUX_SIM_PHYSICS_LOG (meant for `simulate`) out of the backtest.
    simulated = ModbusSite(site, ManualClock(start - timedelta(seconds=WARMUP_S)), physics_log="")
    model = simulated.model
    if load is not None or solar is not None:
        model.profile = RecordedProfile(sim_config.site_model, sim_config.seed, site.site.timezone, load, solar)
    battery = simulated.batteries[c.battery]
    if initial_soe_kwh is not None:
        battery.soe_kwh = min(max(0.0, initial_soe_kwh), battery.params.energy_kwh)
    site_meter = simulated.meters.get(c.site_meter)
    model.advance_to(start.timestamp())

    controller = c.decider()
    accounts = Accounts(controller.limits, soe_tolerance_kwh(c.battery_charge_limit_kw, c.battery_discharge_limit_kw,
                                                         c.period_s, battery.ramp_down_kw_per_s))
    result = BacktestResult(site, day, start, end, market, accounts, soe_start_kwh=battery.soe_kwh,
                            nameplate_energy_kwh=battery_config.nameplate_energy_kwh, inputs=inputs or {})
    result.mode_names = tuple(m.name for m in controller.modes)
    result.stored_energy_price_p_per_kwh, result.stored_energy_price_source = stored_energy_price(
        site, market, stored_energy_price_p_per_kwh)
    battery.command_timeout_s = float(battery_config.command_timeout_s)
    battery.real_power_mode = 1

    def account_until(t: datetime) -> None:
        for step in model.advance_to(t.timestamp()):
            settlement = market.settlement_at(step.time - STEP_S)
            assert settlement is not None  # read_market checked the day is covered
            accounts.add(STEP_S, step.battery_kw, step.site_kw, battery.soe_kwh if step.soe_kwh is None
                         else step.soe_kwh, settlement.price_p_per_kwh)

    last_setpoint = 0.0
    period = timedelta(seconds=c.period_s)
    n = 0
    now = start
    while now < end:
        account_until(now)
        site_kw = site_meter.power_kw if site_meter is not None else model.site_kw()
        price, volume = market.known_at(now)
        state = SiteState(site_power_kw=site_kw, soe_kwh=battery.soe_kwh, last_setpoint_kw=last_setpoint,
                          imbalance_price=price, imbalance_volume=volume, axle_schedule=axle)
        decision = controller.decide(state, now)
        # As the PowerPack driver writes: a changed heartbeat, then the real power.
        battery.write_heartbeat(HEARTBEAT_VALUES[n % 2], model.t)
        battery.write_setpoint(decision.setpoint_kw)
        last_setpoint = decision.setpoint_kw
        result.record(now, c.period_s, state, decision, battery.power_kw)
        n += 1
        now = start + n * period
    account_until(end)
    result.soe_end_kwh = battery.soe_kwh
    result.mode_errors = controller.mode_errors
    result.axle_unknown_actions = sum(getattr(m, "unknown_actions", 0) for m in controller.modes)
    return result
