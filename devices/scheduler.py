"""Wall-clock aligned polling: one task per device, slots on the device's interval, never stamped late.

Each device is polled at the boundaries of its own interval (a 2 s device at :00, :02, ...; a 60 s
device at hh:mm:00), and each reading carries its slot's start time. A poll still running when its
slot ends is cancelled and the slot counted as missed, so a stalled device never pushes its own
readings late and, running in its own task, never delays another device. A poller started in the
first half of a slot polls that slot at once, so a (re)start does not leave the control loop without
data for up to a whole interval. Every poll feeds the
state store; one reading per telemetry slot (the poll at the slot's start or, if that one failed,
the slot's first poll that answered; or the mean of the slot's polls) is published on the bus for
the outbox.

`components` returns one component per device (`poll:<name>`, keyed by the device's config), so a
reload that changes one device restarts only that device's poller. Drivers are created while it
runs, into the caller's dict of live devices, so the control loop finds the battery there at start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from controller.core.bus import Bus
from controller.core.clock import Clock, align_down, align_up
from controller.core.component import STOP_POLLERS, ComponentSpec
from controller.core.logs import get_logger
from controller.core.reading import FieldValue, Reading
from controller.core.state import StateStore
from controller.core.supervisor import Backoff
from devices.base import Device, DeviceError, HealthState
from devices.catalog import create_device
from devices.config import DeviceConfigBase
from devices.errors import describe
from devices.links import DeviceLinks

log = get_logger("devices.scheduler")

FAILURE_LOG_EVERY = 30  # a device that stays down logs its failure once per this many polls
# A poller that starts with at least this share of its slot left polls that slot at once; later in the
# slot it waits for the next boundary (a poll begun late would be cut off by the slot's end).
START_POLL_MIN_LEFT = 0.5

Alert = Callable[..., None]


class TelemetrySlot:
    """Collects the polls of one telemetry slot and says what to record for it.

    `covers_start`: the poller was running when the slot began. Only then may a later poll stand in for
    a failed or overrun poll at the start: a poller (re)started mid-slot records nothing for that slot,
    so a restart never gives a slot a second row.
    """

    def __init__(self, start: datetime, mode: str, *, covers_start: bool = True) -> None:
        self.start = start
        self.mode = mode
        self.covers_start = covers_start
        self.polls: list[Reading] = []

    def add(self, reading: Reading) -> Reading | None:
        """Take a poll; for "first", return the reading to record: the slot's first successful poll.

        That is the poll at the slot's start or, when that one failed, the next that answered, stamped
        at its own poll time (never moved to the slot's start): one lost poll of a meter polled every
        2 s does not cost the cloud its minute.
        """
        self.polls.append(reading)
        if self.mode == "first" and self.covers_start and len(self.polls) == 1:
            return reading
        return None

    def mean(self) -> Reading | None:
        """Mean of the numeric fields of the slot's polls (last value for the others), stamped at the slot start."""
        if self.mode != "mean" or not self.polls:
            return None
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        fields: dict[str, FieldValue] = {}
        for r in self.polls:
            for name, value in r.fields.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    sums[name] = sums.get(name, 0.0) + float(value)
                    counts[name] = counts.get(name, 0) + 1
                else:
                    fields[name] = value
        for name, total in sums.items():
            fields[name] = total / counts[name]
        last = self.polls[-1]
        return Reading(last.device_id, last.device, last.kind, self.start, fields, received_at=last.received_at)


class DevicePoller:
    """Polls one device on its aligned slots until cancelled."""

    def __init__(self, device: Device, clock: Clock, state: StateStore, bus: Bus, alert: Alert | None = None) -> None:
        self.device = device
        self.clock = clock
        self.state = state
        self.bus = bus
        self.alert = alert
        config = device.config
        self.name = config.name
        self.interval = timedelta(seconds=config.poll_interval_s)
        self.telemetry_interval_s = config.telemetry_interval_s
        self.telemetry_mode = config.telemetry
        self._telemetry: TelemetrySlot | None = None
        self._first_slot: datetime | None = None
        self._was_down = False

    async def run(self) -> None:
        health = self.device.health
        interval_s = self.interval.total_seconds()
        now = self.clock.now()
        slot = align_up(now, interval_s)
        if self._first_slot is None:
            self._first_slot = slot
        try:
            if (slot - now).total_seconds() >= interval_s * START_POLL_MIN_LEFT:
                # Started (or restarted) early in a slot: poll it now rather than leave the control loop on
                # stale data until the next boundary. Telemetry takes it as any other poll of its slot: on a
                # first start that slot began before the poller, so it feeds a "mean" slot only, never a row.
                await self.poll_slot(align_down(now, interval_s))
            while True:
                await self.clock.sleep_until(slot)
                now = self.clock.now()
                if now >= slot + self.interval:
                    # Woke up after the slot was over (the loop was blocked): those slots are lost.
                    behind = int((now - slot) / self.interval)
                    health.slots_missed += behind
                    log.warning("slots_missed", device=self.name, count=behind, since=slot.isoformat())
                    self._close_telemetry_until(slot + behind * self.interval)
                    slot += behind * self.interval
                    continue
                await self.poll_slot(slot)
                slot += self.interval
        finally:
            await self.device.close()

    async def poll_slot(self, slot: datetime) -> Reading | None:
        """Poll for `slot`, abandoning the poll at the slot's end. Returns the reading, if any."""
        health = self.device.health
        started = time.perf_counter()
        reading: Reading | None = None
        error: Exception | None = None
        try:
            async with self.clock.timeout_at(slot + self.interval) as deadline:
                reading = await self.device.poll(slot)
        except Exception as exc:
            error = exc
        if deadline.expired():
            if isinstance(error, TimeoutError):
                error = None  # the deadline's own, not the driver's
            health.slots_missed += 1
            health.record_failure("poll overran its slot")
            log.warning("slot_missed", device=self.name, slot=slot.isoformat(), reason="poll overran its slot")
        if isinstance(error, DeviceError):
            self._failed(str(error))
        elif error is not None:
            # A driver bug must not stop the polling of this device, let alone the others.
            self._failed(f"internal error in the driver: {describe(error)}")
            log.error("poll_crashed", device=self.name, error=repr(error))
        elif reading is not None:
            health.observe_latency(time.perf_counter() - started)
            health.record_success(reading.received_at or self.clock.now())
            self.state.update(reading)
        self._after_poll(slot, reading)
        return reading

    def _failed(self, error: str) -> None:
        health = self.device.health
        health.record_failure(error)
        n = health.consecutive_failures
        if n in (1, health.down_after) or n % FAILURE_LOG_EVERY == 0:
            log.warning("poll_failed", device=self.name, error=error, consecutive=n, state=str(health.state))

    def _after_poll(self, slot: datetime, reading: Reading | None) -> None:
        self._health_transitions()
        start = align_down(slot, self.telemetry_interval_s)
        current = self._telemetry
        if current is None or current.start != start:
            self._close_telemetry_until(start)
            covers = self._first_slot is not None and start >= self._first_slot
            current = self._telemetry = TelemetrySlot(start, self.telemetry_mode, covers_start=covers)
        if reading is not None:
            record = current.add(reading)
            if record is not None:
                self.bus.readings.publish(record)
        if slot + self.interval >= start + timedelta(seconds=self.telemetry_interval_s):
            self._close_telemetry_until(slot + self.interval)

    def _close_telemetry_until(self, t: datetime) -> None:
        """Record the open telemetry slot (mean mode) once polling has moved past its end."""
        current = self._telemetry
        if current is None or current.start + timedelta(seconds=self.telemetry_interval_s) > t:
            return
        self._telemetry = None
        record = current.mean()
        if record is not None:
            self.bus.readings.publish(record)

    def _health_transitions(self) -> None:
        health = self.device.health
        down = health.state == HealthState.DOWN
        if down and not self._was_down:
            log.error("device_down", device=self.name, error=health.last_error)
            if self.alert is not None:
                self.alert("device_down", "Error", f"device {self.name} is not answering",
                           device=self.name, error=health.last_error)
        elif self._was_down and not down:
            log.info("device_recovered", device=self.name)
            if self.alert is not None:
                self.alert("device_recovered", "Info", f"device {self.name} answers again", device=self.name)
        self._was_down = down


def components(configs: Sequence[DeviceConfigBase], *, clock: Clock, state: StateStore, bus: Bus, alert: Alert,
               health: MutableMapping[str, Any], links: DeviceLinks,
               live: MutableMapping[str, Device]) -> list[ComponentSpec]:
    """One poller per device; drivers are (re)created here, synchronously, into `live` (the caller's, by name).

    A device whose config is unchanged keeps its driver; one that is gone leaves `live` and `health`.
    `health` (shared with other components) gets each device's `DeviceHealth` under its name.
    """
    wanted = {d.name for d in configs}
    for name in [n for n in live if n not in wanted]:
        del live[name]
        health.pop(name, None)
    specs: list[ComponentSpec] = []
    for dc in configs:
        device = live.get(dc.name)
        if device is None or device.config != dc:
            # The old poller (its key changed) is stopped by the daemon and closes the old device.
            device = create_device(dc, clock, links)
            live[dc.name] = device
        health[dc.name] = device.health
        poller = DevicePoller(device, clock, state, bus, alert)
        specs.append(ComponentSpec(
            name=f"poll:{dc.name}", key=dc, factory=poller.run, critical=False, stop_order=STOP_POLLERS,
            backoff=Backoff(initial_s=dc.backoff_initial_s, max_s=dc.backoff_max_s)))
    return specs
