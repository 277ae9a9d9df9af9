"""The Emlite prepayment meter as a `Device` with a profile log (`HasProfileLog`).

Per poll: element A registers (and B on twin meters), instantaneous power and the prepay balance;
voltage and signal quality a few times an hour and the clock hourly, each meter at its own phase
so a site's meters do not all ask at once. A read that fails is missing from the reading, never
zero; a poll whose first read cannot reach the meter stops there, so a dead meter holds its link
slot for one attempt pair only. After `health.down_after` failed polls in a row the meter is polled
ever less often (up to `down_poll_interval_s`); the scheduler raises one alert on the way down.
Health state and latency are the scheduler's to record; the driver adds protocol counters to
`health.extra`.
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta

from controller.core.clock import Clock, align_up
from controller.core.logs import get_logger
from controller.core.reading import FieldValue, Reading
from devices.base import DeviceError, DeviceHealth
from devices.emlite.client import BusyError, EmopClient, UnreachableError
from devices.emlite.codec import (
    STATUS_VALID,
    ElementRegisters,
    EmopError,
    ObjectId,
    ObjectValue,
    Profile1Record,
    Profile2Record,
    ProfileRecord,
    SignalQuality,
)
from devices.emlite.config import EmliteConfig
from devices.links import DeviceLinks

log = get_logger("devices.emlite")

KIND = "emlite"
HALF_HOUR_S = 1800.0
BALANCE_UNITS_PER_GBP = 100_000


def _register_fields(element: str, regs: ElementRegisters) -> dict[str, FieldValue]:
    return {
        f"import_{element}_kwh": regs.import_wh / 1000,
        f"export_{element}_kwh": regs.export_wh / 1000,
        f"reactive_import_{element}_kvarh": regs.reactive_import_varh / 1000,
        f"reactive_export_{element}_kvarh": regs.reactive_export_varh / 1000,
    }


class EmliteMeter:
    kind = KIND

    def __init__(self, config: EmliteConfig, clock: Clock, links: DeviceLinks) -> None:
        self.config = config
        self.clock = clock
        self.health = DeviceHealth()
        self._rng = random.Random(zlib.crc32(config.name.encode()))
        self.client = EmopClient(
            config.host, config.port, clock=clock,
            link=links.emop_link(config.link or config.host, config.link_max_connections),
            meter=config.name, timeout_s=config.timeout_s, min_gap_s=config.min_connection_gap_s,
            busy_backoff_s=config.busy_backoff_s, client_address=config.client_address,
            counters=self.health.extra, rng=self._rng,
        )
        # Each meter reads its occasional objects at its own phase within the interval.
        spread = zlib.crc32(config.name.encode())
        self._extras_phase_s = (spread % max(1, int(config.extras_interval_s // config.poll_interval_s))) \
            * config.poll_interval_s
        self._clock_phase_s = ((spread >> 12) % max(1, int(config.clock_check_interval_s // config.poll_interval_s))) \
            * config.poll_interval_s
        self._failures = 0
        self._resume_at: datetime | None = None
        self._paused = False
        self._serial_ok = config.serial is None
        self._last_import: dict[str, float] = {}

    @property
    def failures_in_a_row(self) -> int:
        """Failed polls since the last good one, as this driver counts them for its pacing."""
        return self._failures

    # -- scheduling ------------------------------------------------------------------------------------

    def _due(self, slot: datetime, interval_s: float, phase_s: float) -> bool:
        into = (slot.timestamp() - phase_s) % interval_s
        return into < self.config.poll_interval_s

    def _count(self, name: str) -> None:
        self.health.extra[name] = self.health.extra.get(name, 0) + 1

    def _poll_failed(self, error: str) -> None:
        self._failures += 1
        if self._failures >= self.health.down_after:
            # Poll ever less often while the meter stays silent: doubling from the poll interval.
            pause = min(self.config.down_poll_interval_s,
                        self.config.poll_interval_s * 2 ** (self._failures - self.health.down_after))
            self._resume_at = self.clock.now() + timedelta(seconds=pause)
            if not self._paused:
                # Once per outage: the scheduler raises the device_down alert on the health transition.
                self._paused = True
                log.warning("emlite_polling_slowed", meter=self.config.name, failures=self._failures, error=error,
                            pause_s=pause)

    def _poll_succeeded(self) -> None:
        if self._paused:
            log.info("emlite_polling_resumed", meter=self.config.name, failures=self._failures)
        self._failures = 0
        self._resume_at = None
        self._paused = False

    # -- the poll --------------------------------------------------------------------------------------

    async def poll(self, slot: datetime) -> Reading:
        if self._resume_at is not None and self.clock.now() < self._resume_at:
            self._count("polls_skipped_down")
            raise DeviceError(f"meter down, next attempt at {self._resume_at.isoformat()}")
        try:
            return await self._poll(slot)
        except asyncio.CancelledError:
            # Abandoned at the end of its slot while talking to the meter: the meter did not answer in
            # time, which counts as failing. Queued behind a saturated link, it was not the meter's fault.
            if not self.client.waiting_for_link:
                self._poll_failed("poll abandoned at the end of its slot")
            raise

    async def _poll(self, slot: datetime) -> Reading:
        fields: dict[str, FieldValue] = {}
        errors: list[str] = []
        if self.config.start_jitter_s > 0:
            await self.clock.sleep(self._rng.uniform(0, self.config.start_jitter_s))
        try:
            if not self._serial_ok:
                await self._check_serial()
            reads: list[tuple[int, Callable[[ObjectValue], dict[str, FieldValue]]]] = [
                (ObjectId.ELEMENT_A_REGISTERS, self._element("a")),
            ]
            if self.config.twin_element:
                reads.append((ObjectId.ELEMENT_B_REGISTERS, self._element("b")))
            reads += [(ObjectId.POWER_TOTAL, self._power), (ObjectId.PREPAY_BALANCE, self._balance)]
            if self._due(slot, self.config.extras_interval_s, self._extras_phase_s):
                reads += [(ObjectId.VOLTAGE, self._voltage), (ObjectId.SIGNAL_QUALITY, self._signal)]
            for object_id, to_fields in reads:
                try:
                    fields.update(to_fields(await self.client.read_value(object_id)))
                except (UnreachableError, BusyError):
                    raise  # the meter cannot be reached: the rest of this poll would wait in vain
                except EmopError as exc:
                    errors.append(f"{object_id:06X}: {exc}")
            if self._due(slot, self.config.clock_check_interval_s, self._clock_phase_s):
                try:
                    fields["clock_drift_s"] = await self._clock_drift()
                except (UnreachableError, BusyError):
                    raise
                except EmopError as exc:
                    errors.append(f"clock: {exc}")
        except EmopError as exc:
            errors.append(str(exc))
            if not fields:
                self._poll_failed(str(exc))
                raise DeviceError(f"{self.config.name}: {exc}") from exc
        if not fields:
            self._poll_failed("; ".join(errors))
            raise DeviceError(f"{self.config.name}: {'; '.join(errors)}")
        if errors:
            self._count("reads_failed")
            log.warning("emlite_partial_reading", meter=self.config.name, errors=errors)
        self._poll_succeeded()
        return Reading(self.config.id, self.config.name, KIND, slot, fields, received_at=self.clock.now())

    def _element(self, element: str) -> Callable[[ObjectValue], dict[str, FieldValue]]:
        def to_fields(value: ObjectValue) -> dict[str, FieldValue]:
            assert isinstance(value, ElementRegisters)
            last = self._last_import.get(element)
            if last is not None and value.import_wh < last:
                # Reset, meter swap or wrap at 2^32: whoever derives energy starts a new baseline here.
                self._count("register_went_down")
                log.warning("emlite_register_went_down", meter=self.config.name, element=element,
                            previous_wh=last, now_wh=value.import_wh)
            self._last_import[element] = value.import_wh
            return _register_fields(element, value)
        return to_fields

    @staticmethod
    def _power(value: ObjectValue) -> dict[str, FieldValue]:
        assert isinstance(value, int)
        return {"power_kw": value / 1000}

    @staticmethod
    def _balance(value: ObjectValue) -> dict[str, FieldValue]:
        assert isinstance(value, int)
        return {"balance_gbp": value / BALANCE_UNITS_PER_GBP}

    def _voltage(self, value: ObjectValue) -> dict[str, FieldValue]:
        assert isinstance(value, int)
        return {"voltage_v": round(value * self.config.voltage_scale, 3)}

    @staticmethod
    def _signal(value: ObjectValue) -> dict[str, FieldValue]:
        assert isinstance(value, SignalQuality)
        return {"signal_csq": value.csq}

    async def _clock_drift(self) -> float:
        """Meter clock minus ours, seconds (+ = meter ahead). Recorded only: a billing meter's clock is never set."""
        before = self.clock.now()
        value = await self.client.read_value(ObjectId.CLOCK)
        after = self.clock.now()
        assert isinstance(value, datetime)
        # The meter's clock has whole seconds; take our time halfway through the exchange.
        drift = round((value - (before + (after - before) / 2)).total_seconds(), 1)
        if abs(drift) > self.config.clock_drift_alert_s:
            self._count("clock_far_off")
            log.warning("emlite_clock_far_off", meter=self.config.name, drift_s=drift)
        return drift

    async def _check_serial(self) -> None:
        value = await self.client.read_value(ObjectId.SERIAL)
        if value != self.config.serial:
            self._count("serial_mismatch")
            log.error("emlite_serial_mismatch", meter=self.config.name, expected=self.config.serial, got=value)
            raise EmopError(f"serial {value!r} is not the configured {self.config.serial!r}")
        self._serial_ok = True

    # -- profile log (backfill) ------------------------------------------------------------------------

    async def read_profile(self, start: datetime, end: datetime) -> list[Reading]:
        """Half-hourly readings the meter holds for [start, end), from profile logs 1 and 2."""
        first = align_up(start, HALF_HOUR_S)
        log1 = await self._profile_records(1, first, end)
        if not log1:
            return []
        # Log 2 only completes the half hours log 1 has: no need to ask beyond them.
        log2 = await self._profile_records(2, first, log1[-1].timestamp + timedelta(seconds=HALF_HOUR_S))
        by_time: dict[datetime, dict[str, FieldValue]] = {}
        for r in log1:
            assert isinstance(r, Profile1Record)
            f = by_time.setdefault(r.timestamp, {})
            f["import_a_kwh"] = r.import_a_wh / 1000
            if self.config.twin_element:
                f["import_b_kwh"] = r.import_b_wh / 1000
        for r in log2:
            assert isinstance(r, Profile2Record)
            if r.timestamp not in by_time:
                continue  # log 1 carries the import registers; a half hour without them is not a reading
            f = by_time[r.timestamp]
            f["export_a_kwh"] = r.export_a_wh / 1000
            f["reactive_import_a_kvarh"] = r.reactive_import_a_varh / 1000
            f["reactive_export_a_kvarh"] = r.reactive_export_a_varh / 1000
            f["voltage_v"] = round(r.voltage * self.config.voltage_scale, 3)
            if r.element_b is not None:
                f["export_b_kwh"] = r.element_b[0] / 1000
                f["reactive_import_b_kvarh"] = r.element_b[1] / 1000
                f["reactive_export_b_kvarh"] = r.element_b[2] / 1000
        now = self.clock.now()
        return [Reading(self.config.id, self.config.name, KIND, t, by_time[t], received_at=now)
                for t in sorted(by_time)]

    async def _profile_records(self, log_number: int, first: datetime, end: datetime) -> list[ProfileRecord]:
        out: list[ProfileRecord] = []
        t = first
        while t < end:
            answer = await self.client.read_profile(log_number, t)
            records = list(answer.records)
            # A first record later than asked means the meter has nothing more: not a hole to skip.
            if not records or records[0].timestamp > t:
                break
            for r in records:
                if not r.status & STATUS_VALID:
                    self._count("profile_records_invalid")
                    log.info("emlite_profile_record_invalid", meter=self.config.name, log=log_number,
                             time=r.timestamp.isoformat(), status=r.status)
                elif t <= r.timestamp < end and (not out or r.timestamp > out[-1].timestamp):
                    out.append(r)
            last = records[-1].timestamp
            if last < t:
                break
            t = last + timedelta(seconds=HALF_HOUR_S)
        return out

    async def close(self) -> None:
        """Nothing held between polls: every EMOP exchange opens and closes its own connection."""
