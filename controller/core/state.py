"""Latest-state store: the newest value and time of every field of every device.

The controller reads it instead of polling devices itself (the coordinator pattern), and a
waiter can be woken as soon as a fresh reading of a given device arrives.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from controller.core.reading import Reading


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    time: datetime  # when the value was read (the answer's arrival, UTC)
    seq: int = 0  # the store's update count when it arrived: orders it against other events exactly
    # When the request for it went out at the earliest (the reading's poll slot): the device took its
    # snapshot somewhere in [slot, time]. None: unknown.
    slot: datetime | None = None


class StateStore:
    def __init__(self) -> None:
        self._values: dict[tuple[UUID, str], Sample] = {}
        self._fresh: dict[UUID, asyncio.Event] = {}
        self.updates = 0  # readings taken in so far; a Sample's `seq`

    def update(self, reading: Reading) -> None:
        at = reading.received_at or reading.time
        self.updates += 1
        for name, value in reading.fields.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            key = (reading.device_id, name)
            prev = self._values.get(key)
            if prev is None or prev.time <= at:
                self._values[key] = Sample(float(value), at, self.updates,
                                           reading.time if reading.time <= at else None)
        ev = self._fresh.get(reading.device_id)
        if ev is not None:
            ev.set()

    def get(self, device_id: UUID, field: str) -> Sample | None:
        return self._values.get((device_id, field))

    def age_s(self, device_id: UUID, field: str, now: datetime) -> float | None:
        s = self.get(device_id, field)
        return None if s is None else max(0.0, (now - s.time).total_seconds())

    def fresh_event(self, device_id: UUID) -> asyncio.Event:
        """An event set whenever a reading of `device_id` arrives; the waiter clears it."""
        ev = self._fresh.get(device_id)
        if ev is None:
            ev = self._fresh[device_id] = asyncio.Event()
        return ev

    def snapshot(self) -> dict[tuple[UUID, str], Sample]:
        return dict(self._values)
