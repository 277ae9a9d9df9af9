"""The control loop: every `controller.period_s`, and at once when a fresh site-meter reading arrives.

Each tick builds the SiteState from the latest-state store (+ market caches, Axle's schedule, the last
setpoint), decides, writes the battery (unless dry-run), publishes a decision record and logs it.
Bad data never raises out of a tick; a failed write is counted and retried on the next tick. On the
way out (cancellation) the battery is commanded to 0 kW once, if this loop had been writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from controller.config.site import SiteConfig
from controller.core.bus import Bus, DecisionRecord
from controller.core.clock import Clock, wait_event
from controller.core.logs import get_logger
from controller.core.overrides import Overrides
from controller.core.state import Sample, StateStore
from controller.engine.decision import Decision, record_body
from controller.engine.envelope import STALE
from controller.engine.explain import explain
from controller.engine.schedule import zone
from controller.engine.site_state import AxleStep, MarketValue, PlanTargets, SiteState
from devices.base import Controllable

log = get_logger("control")

SITE_POWER_FIELD = "power_total_active"
SOE_FIELD = "soe_kwh"
BATTERY_TARGET_FIELD = "target_power_kw"
# The battery's measured power, + discharge: the PowerPack's register 201 (`battery_target_p`, "the power
# the battery is delivering now", devices.md; read as `target_power_kw`, the cloud's column name) and the
# battery meter's total active power (it reads + when the battery discharges).
BATTERY_POWER_FIELD = "target_power_kw"
BATTERY_METER_FIELD = "power_total_active"
WRITE_TIMEOUT_S = 5.0  # real seconds: bounds I/O, not the simulated world
WRITE_BUDGET_SHARE = 0.5  # a write may take at most this share of the control period (clock time)
# ...and never less than this in real seconds: a socket's round trip does not shrink with a fast clock
# (at 288x half a 4 s period is 7 ms, and abandoning every write that took longer dropped the battery's
# connection hundreds of times a simulated day). At real speed the clock budget is the larger one.
WRITE_BUDGET_MIN_REAL_S = 0.25
ATTEMPTS_KEPT = 256
MEASUREMENTS_KEPT = 64
# How far back, before the earlier of the two readings' poll slots, the worst case looks for where the
# battery was (its measurements and the setpoints in force): a poll interval or two.
HISTORY_S = 2.0
REACTIONS_KEPT = 1000
COMMANDS_KEPT = 64


class Prices(Protocol):
    """The latest imbalance price and volume (the Modo client)."""

    @property
    def price(self) -> MarketValue | None: ...

    @property
    def volume(self) -> MarketValue | None: ...


class Dispatch(Protocol):
    """The current dispatch schedule (the Axle client)."""

    @property
    def schedule(self) -> Sequence[AxleStep]: ...


Alert = Callable[..., None]  # (kind, level, message, **data)


@dataclass(frozen=True)
class LoopIO:
    """What the loop reads and drives besides the state store. Each lookup runs per tick, so a client
    or driver restarted by a reload is found again; None while it does not run."""

    battery: Callable[[], object]  # the battery's driver; used only if it takes setpoints
    prices: Callable[[], Prices | None] = lambda: None
    dispatch: Callable[[], Dispatch | None] = lambda: None
    plan: Callable[[], PlanTargets | None] = lambda: None  # the planner's current plan (the `plan` mode tracks it)


class ControlLoop:
    def __init__(self, site: SiteConfig, *, clock: Clock, state: StateStore, bus: Bus, overrides: Overrides,
                 io: LoopIO, alert: Alert, beat: Callable[[str], None], health: dict[str, Any]) -> None:
        assert site.controller is not None
        self.config = site.controller
        self.tz = zone(site.site.timezone)
        self.clock = clock
        self.state = state
        self.bus = bus
        self.overrides = overrides
        self.io = io
        self.alert = alert
        self.beat = beat
        self.health = health
        self.decider = site.decider()  # the battery's ramp rate in its limits, as `decide` has it
        self.site_meter_id: UUID = site.device(self.config.site_meter).id
        self.battery_id: UUID = site.device(self.config.battery).id
        self.battery_meter_id: UUID | None = (site.device(self.config.battery_meter).id
                                              if self.config.battery_meter is not None else None)
        nameplate = getattr(site.device(self.config.battery), "nameplate_power_kw", None)
        self.nameplate_kw = (float(nameplate) if isinstance(nameplate, int | float) else
                             max(self.config.battery_charge_limit_kw, self.config.battery_discharge_limit_kw))
        # (clock time the write started, kW) of every setpoint tried, written or not: a failed write may
        # still have reached the battery, so each counts towards where the battery could be.
        self.attempts: deque[tuple[datetime, float]] = deque(maxlen=ATTEMPTS_KEPT)
        self.measurements: deque[Sample] = deque(maxlen=MEASUREMENTS_KEPT)  # battery power samples seen
        self.last_written_at: datetime | None = None
        self.command_timeout_s = float(getattr(site.device(self.config.battery), "command_timeout_s", 10))
        self.write_timeouts = 0
        self.commanded_kw: float | None = None  # last setpoint the battery took (or, emulating, would have)
        # (state store's update count when the write completed, kW): which setpoint a reading reflects.
        self.commands: deque[tuple[int, float]] = deque(maxlen=COMMANDS_KEPT)
        self.last_decision: dict[str, Any] | None = None
        self.ticks = 0
        self.writes = 0
        self.write_failures = 0
        self.tick_errors = 0
        self.stale_ticks = 0
        self.wrote = False
        self._stale = False
        self._failing = False
        # Seconds from the site reading's arrival to the setpoint write completing (clock time).
        self.reactions_s: deque[float] = deque(maxlen=REACTIONS_KEPT)

    # --- state ---------------------------------------------------------------------------------------

    def _last_setpoint(self) -> float:
        if self.commanded_kw is not None:
            return self.commanded_kw
        reported = self.state.get(self.battery_id, BATTERY_TARGET_FIELD)
        return reported.value if reported is not None else 0.0

    def _setpoint_behind(self, site: Sample) -> float:
        """The setpoint in force when a site reading arrived: the battery power that reading reflects.

        Not simply the last one sent: two decisions can rest on one reading (a period tick between two
        readings), and adding the newer setpoint back to a reading taken before it would count the
        battery's change twice (seen in the accelerated day: 332 kW against a 300 kW import limit).
        Ordered by arrival in the state store, not by timestamps, which a fast or manual clock can tie.
        """
        for completed_seq, kw in reversed(self.commands):
            if completed_seq < site.seq:
                return kw
        if not self.commands:
            return self._last_setpoint()
        reported = self.state.get(self.battery_id, BATTERY_TARGET_FIELD)
        return reported.value if reported is not None and reported.seq < site.seq else 0.0

    def _battery_measurement(self, site: Sample | None, now: datetime) -> Sample | None:
        """The battery's power reading nearest in time to the site reading (the fresher on a tie)."""
        found = [self.state.get(self.battery_id, BATTERY_POWER_FIELD)]
        if self.battery_meter_id is not None:
            found.append(self.state.get(self.battery_meter_id, BATTERY_METER_FIELD))
        samples = [m for m in found if m is not None and math.isfinite(m.value)]
        if not samples:
            return None
        if site is None:
            return max(samples, key=lambda m: m.time)
        return min(samples, key=lambda m: (abs((m.time - site.time).total_seconds()), -m.time.timestamp()))

    def _battery_span(self, site: Sample | None, measured: Sample | None) -> tuple[float, float]:
        """The worst case: where the battery's power could be when the site reading was taken.

        The battery's power moves (at its ramp rates) from where it was towards the setpoint in force,
        or to 0 when its own heartbeat timeout idles it. So it lies within the span of its measurements
        and the setpoints tried (written or not) from a little before the earlier of the two readings'
        poll slots, and 0 as well when no write has succeeded within its command timeout. Without any
        measurement: anywhere within the nameplate.
        """
        if measured is None:
            return (-self.nameplate_kw, self.nameplate_kw)
        starts = [measured.slot or measured.time]
        if site is not None:
            starts.append(site.slot or site.time)
        since = min(starts) - timedelta(seconds=HISTORY_S)
        values = [measured.value]
        values += [m.value for m in self.measurements if m.time >= since]
        before: float | None = None
        for t, kw in self.attempts:
            if t >= since:
                values.append(kw)
            else:
                before = kw
        if before is not None:
            values.append(before)
        at = site.time if site is not None else measured.time
        if self.last_written_at is None or (at - self.last_written_at).total_seconds() > self.command_timeout_s:
            values.append(0.0)
        return (min(values), max(values))

    @staticmethod
    def _skew_s(site: Sample | None, measured: Sample | None) -> float | None:
        """The most the two readings' moments can be apart: each was taken between its slot and its arrival."""
        if site is None or measured is None or site.slot is None or measured.slot is None:
            return None
        return max(0.0, (max(site.time, measured.time) - min(site.slot, measured.slot)).total_seconds())

    def build_state(self, now: datetime) -> SiteState:
        st = self.state
        site = st.get(self.site_meter_id, SITE_POWER_FIELD)
        soe = st.get(self.battery_id, SOE_FIELD)
        site_kw = None if site is None else site.value
        if site is None or self.config.emulation:
            # Emulating, the site power is made up from the setpoint in force now, which it so reflects.
            last = self._last_setpoint()
            if site_kw is not None:
                site_kw -= last  # as if the battery's output had really flowed
        else:
            last = self._setpoint_behind(site)
        prices = self.io.prices()
        dispatch = self.io.dispatch()
        price = prices.price if prices is not None else None
        volume = prices.volume if prices is not None else None
        schedule = dispatch.schedule if dispatch is not None else ()
        measured = self._battery_measurement(site, now)
        if measured is not None and (not self.measurements or self.measurements[-1].seq != measured.seq):
            self.measurements.append(measured)
        return SiteState(
            battery_power_skew_s=self._skew_s(site, measured),
            battery_power_kw=None if measured is None else measured.value,
            battery_power_age_s=math.inf if measured is None else max(0.0, (now - measured.time).total_seconds()),
            battery_span_kw=self._battery_span(site, measured),
            site_power_kw=site_kw,
            soe_kwh=None if soe is None else soe.value,
            last_setpoint_kw=last,
            site_power_age_s=math.inf if site is None else max(0.0, (now - site.time).total_seconds()),
            soe_age_s=math.inf if soe is None else max(0.0, (now - soe.time).total_seconds()),
            imbalance_price=price if isinstance(price, MarketValue) else None,
            imbalance_volume=volume if isinstance(volume, MarketValue) else None,
            axle_schedule=tuple(s for s in schedule if isinstance(s, AxleStep)),
            plan=self.io.plan(),
        )

    # --- one tick ------------------------------------------------------------------------------------

    def _dry_run(self) -> bool:
        o = self.overrides.dry_run
        return self.config.dry_run if o is None else o

    def _battery(self) -> Controllable | None:
        device = self.io.battery()
        return device if isinstance(device, Controllable) else None

    async def _write_deadline(self, budget_s: float) -> None:
        started = time.monotonic()
        await self.clock.sleep(budget_s)
        await asyncio.sleep(max(0.0, WRITE_BUDGET_MIN_REAL_S - (time.monotonic() - started)))

    async def _write(self, kw: float) -> bool:
        battery = self._battery()
        if battery is None:
            self.write_failures += 1
            log.warning("setpoint_write_failed", error="no battery driver", battery=self.config.battery)
            return False
        self.attempts.append((self.clock.now(), kw))
        budget_s = self.config.period_s * WRITE_BUDGET_SHARE
        write = asyncio.ensure_future(asyncio.wait_for(battery.write_setpoint(kw), WRITE_TIMEOUT_S))
        deadline = asyncio.ensure_future(self._write_deadline(budget_s))
        try:
            await asyncio.wait({write, deadline}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            write.cancel()
            raise
        finally:
            deadline.cancel()
        if not write.done():
            # Past its share of the period: abandoned, so the next tick comes on time (the driver drops
            # the half-used connection; what was not written is written again next tick).
            write.cancel()
            with contextlib.suppress(BaseException):
                await write
            self.write_failures += 1
            self.write_timeouts += 1
            log.warning("setpoint_write_failed", error=f"timed out after {budget_s:g} s of the period",
                        battery=self.config.battery, kw=kw)
            return False
        exc = write.exception()
        if exc is not None:  # a failed write is retried next tick; the battery idles on its own timeout
            self.write_failures += 1
            log.warning("setpoint_write_failed", error=repr(exc), battery=self.config.battery, kw=kw)
            return False
        self.writes += 1
        self.wrote = True
        self.last_written_at = self.clock.now()
        return True

    def _decide(self, now: datetime) -> tuple[SiteState, Decision, dict[str, Any] | None]:
        o = self.overrides
        live = o.active(now)
        manual = o.manual_setpoint_kw if live else None
        only_mode = o.mode if live else None
        override = None
        if manual is not None or only_mode is not None:
            override = {"manual_setpoint_kw": manual, "mode": only_mode, "source": o.source,
                        "until": o.until.isoformat() if o.until else None}
        state = self.build_state(now)
        decision = self.decider.decide(state, now, manual_setpoint_kw=manual, only_mode=only_mode)
        return state, decision, override

    async def tick(self) -> dict[str, Any]:
        now = self.clock.now()
        self.ticks += 1
        try:
            state, decision, override = self._decide(now)
        except Exception as exc:  # a bug or bad data must idle the battery, not kill the loop
            self.tick_errors += 1
            log.error("control_tick_failed", error=repr(exc), exc_info=exc)
            state = SiteState(None, None, self._last_setpoint())
            decision = Decision(now, 0.0, None, (), (), (), ("internal_error",), "internal error: safe idle")
            override = None
        stale = decision.constraints == (STALE,)
        if stale:
            self.stale_ticks += 1
        if stale != self._stale:
            self._stale = stale
            if stale:
                self.alert("control_stale_data", "Warning", "site power or SoE too old: battery idled",
                                   reason=decision.reason)
            else:
                self.alert("control_data_fresh", "Info", "fresh site power and SoE: control resumed")
        dry_run = self._dry_run()
        written = False
        if not dry_run:
            written = await self._write(decision.setpoint_kw)
            if written == self._failing:  # a change: failing -> written, or the first failure in a row
                self._failing = not written
                if self._failing:
                    self.alert("battery_write_failed", "Error", "setpoint write failed; retrying every tick",
                                       battery=self.config.battery)
                else:
                    self.alert("battery_write_recovered", "Info", "setpoint write succeeded again",
                                       battery=self.config.battery)
            if written:
                site = self.state.get(self.site_meter_id, SITE_POWER_FIELD)
                if site is not None:
                    self.reactions_s.append((self.clock.now() - site.time).total_seconds())
        # Emulating, the setpoint counts as delivered whatever the (possibly absent) battery did.
        if written or self.config.emulation:
            self.commanded_kw = decision.setpoint_kw
            self.commands.append((self.state.updates, decision.setpoint_kw))
        body = record_body(decision, state, {"dry_run": dry_run, "written": written,
                                             "emulation": self.config.emulation, "override": override})
        body["explanation"] = explain(body, self.tz)
        self.last_decision = body
        self.health["control"] = self.stats()
        self.bus.decisions.publish(DecisionRecord(now, body))
        log.info("control_decision", target_kw=round(decision.setpoint_kw, 3), active=list(decision.active),
                 effective=list(decision.effective), constraints=list(decision.constraints),
                 reason=decision.reason, dry_run=dry_run, written=written)
        self.beat("control")
        return body

    def stats(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "writes": self.writes, "write_failures": self.write_failures,
                "write_timeouts": self.write_timeouts,
                "tick_errors": self.tick_errors, "stale_ticks": self.stale_ticks,
                "mode_errors": self.decider.mode_errors,
                "axle_unknown_actions": sum(getattr(m, "unknown_actions", 0) for m in self.decider.modes)}

    # --- the task ------------------------------------------------------------------------------------

    async def run(self) -> None:
        fresh = self.state.fresh_event(self.site_meter_id)
        clock = self.clock
        log.info("control_started", period_s=self.config.period_s, modes=[m.name for m in self.decider.modes],
                 dry_run=self._dry_run(), emulation=self.config.emulation)
        try:
            while True:
                fresh.clear()
                await self.tick()
                if fresh.is_set():
                    continue
                await wait_event(fresh, clock, self.config.period_s)
        except asyncio.CancelledError:
            if self.wrote and not self._dry_run():
                ok = await self._write(0.0)
                log.info("control_stopped_idle", written=ok)
            raise

