"""The small interfaces every device driver implements.

A device reads `Reading`s. Optional capabilities are separate protocols (evcc-style): the core asks
"can you take a setpoint?" or "do you keep a profile log?" instead of switching on device kinds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from controller.core.reading import Reading

if TYPE_CHECKING:
    from devices.config import DeviceConfigBase

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HealthState(enum.StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass
class DeviceHealth:
    """Health of one device, updated by every poll. Degraded after one failure, down after `down_after`."""

    down_after: int = 3
    state: HealthState = HealthState.OK
    consecutive_failures: int = 0
    last_error: str | None = None
    last_success: datetime | None = None
    polls_ok: int = 0
    polls_failed: int = 0
    fields_rejected: int = 0
    slots_missed: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    # Poll latency as a Prometheus-style cumulative histogram (upper bounds in seconds).
    latency_buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum_s: float = 0.0

    def observe_latency(self, seconds: float) -> None:
        self.latency_sum_s += seconds
        for i, bound in enumerate(self.latency_buckets):
            if seconds <= bound:
                self.latency_counts[i] += 1
        self.latency_counts[-1] += 1  # +Inf

    def record_success(self, at: datetime) -> None:
        self.consecutive_failures = 0
        self.polls_ok += 1
        self.last_success = at
        self.state = HealthState.OK

    def record_failure(self, error: str) -> None:
        self.consecutive_failures += 1
        self.polls_failed += 1
        self.last_error = error
        self.state = HealthState.DOWN if self.consecutive_failures >= self.down_after else HealthState.DEGRADED


class DeviceError(Exception):
    """A poll or write that did not succeed: timeout, exception response, bad frame, refused connection."""


@runtime_checkable
class Device(Protocol):
    """Anything that can be polled for a reading."""

    health: DeviceHealth

    @property
    def config(self) -> DeviceConfigBase:
        """The device's site-file entry (read-only here, so a driver may hold its kind's own config class)."""

    async def poll(self, slot: datetime) -> Reading:
        """Read the device now and return its reading stamped with `slot`. Raises DeviceError."""

    async def close(self) -> None:
        """Release sockets; the device may be polled again later (it reconnects)."""


@runtime_checkable
class Controllable(Protocol):
    """A device that takes a real-power setpoint (the battery). kW, + = discharge."""

    async def write_setpoint(self, kw: float) -> None:
        """Write the setpoint (with whatever keep-alive the device needs). Raises DeviceError."""


@runtime_checkable
class HasProfileLog(Protocol):
    """A meter that keeps its own history, so slots missed on our side can be read back."""

    async def read_profile(self, start: datetime, end: datetime) -> list[Reading]:
        """Readings the meter holds for [start, end)."""
