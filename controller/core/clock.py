"""Injectable clocks.

Everything time-dependent asks a `Clock` for the time and sleeps through it, so that tests run on a
manual clock (no real sleeps) and simulations run faster than real time. Network timeouts stay in
real seconds: they bound I/O, not the simulated world.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import os
import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on this clock's time base, never going backwards."""

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of this clock's time."""

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until `now() >= when`."""

    def timeout_at(self, when: datetime) -> AbstractAsyncContextManager[asyncio.Timeout]:
        """Cancel the enclosed block at `when` on this clock and raise TimeoutError, as `asyncio.timeout_at`.

        Rather than racing a sleeper task against the work (`asyncio.wait`): one timer, no extra task
        (a third fewer event-loop steps at HMCE size, bench/bench_loop_steps.py)."""


def utc(dt: datetime) -> datetime:
    """`dt` as an aware UTC datetime (naive input is taken to be UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, when: datetime) -> None:
        await self.sleep((utc(when) - self.now()).total_seconds())

    def timeout_at(self, when: datetime) -> AbstractAsyncContextManager[asyncio.Timeout]:
        return asyncio.timeout((utc(when) - self.now()).total_seconds())


class ScaledClock:
    """Simulated time running `speed` times faster than real time from `start`.

    Two processes given the same start, speed and real-time anchor agree on the simulated time,
    which is how the simulator and the daemon share one accelerated day.
    """

    def __init__(self, start: datetime, speed: float, anchor: float | None = None) -> None:
        if not speed > 0 or not math.isfinite(speed):
            raise ValueError("speed must be a positive finite number")
        self.start = utc(start)
        self.speed = speed
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)

    def monotonic(self) -> float:
        return (time.time() - self.anchor) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, when: datetime) -> None:
        # Re-check after waking: the wall clock may have moved differently from the loop's clock.
        while (remaining := (utc(when) - self.now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining / self.speed)

    def timeout_at(self, when: datetime) -> AbstractAsyncContextManager[asyncio.Timeout]:
        return asyncio.timeout((utc(when) - self.now()).total_seconds() / self.speed)

    def describe(self) -> str:
        return f"start={self.start.isoformat()},speed={self.speed},anchor={self.anchor}"

    @classmethod
    def parse(cls, text: str) -> ScaledClock:
        """Parse `start=ISO,speed=N[,anchor=UNIX]` (the FLUX_CLOCK environment format)."""
        parts = dict(p.split("=", 1) for p in text.split(",") if p)
        anchor = parts.get("anchor")
        return cls(
            datetime.fromisoformat(parts["start"]),
            float(parts.get("speed", "1")),
            float(anchor) if anchor else None,
        )


class ManualClock:
    """A clock that moves only when told to: for tests of timed behaviour without real sleeps.

    `advance()` wakes every sleeper whose deadline has passed, in deadline order, and lets each run
    until it blocks again before moving on.
    """

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self._t0 = self._now
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._t0).total_seconds()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, when: datetime) -> None:
        when = utc(when)
        if when <= self._now:
            await asyncio.sleep(0)
            return
        await self._sleeper(when)

    def _sleeper(self, when: datetime) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._seq), fut))
        return fut

    def timeout_at(self, when: datetime) -> AbstractAsyncContextManager[asyncio.Timeout]:
        return _ManualTimeout(self, utc(when))

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def settle(self) -> None:
        """Let every runnable task run until it blocks."""
        for _ in range(20):
            await asyncio.sleep(0)

    def jump(self, seconds: float) -> None:
        """Move the time on without waking anyone, as a task sees it after the loop was blocked that long:
        the sleepers whose deadlines passed wake, late, on the next `advance`."""
        self._now += timedelta(seconds=seconds)

    async def advance(self, seconds: float) -> None:
        target = self._now + timedelta(seconds=seconds)
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not fut.done():
                fut.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()


async def wait_event(event: asyncio.Event, clock: Clock, seconds: float) -> bool:
    """Wait for `event`, at most `seconds` on `clock`. Whether it is set."""
    if not event.is_set():
        try:
            async with clock.timeout_at(clock.now() + timedelta(seconds=seconds)):
                await event.wait()
        except TimeoutError:
            pass
    return event.is_set()


class _ManualTimeout:
    """`asyncio.timeout` whose deadline is a sleeper of a `ManualClock`: it expires when `advance` reaches it."""

    def __init__(self, clock: ManualClock, when: datetime) -> None:
        self._clock, self._when = clock, when
        self._timeout = asyncio.timeout(None)
        self._sleeper: asyncio.Future[None] | None = None
        self._open = False

    async def __aenter__(self) -> asyncio.Timeout:
        await self._timeout.__aenter__()
        self._open = True
        if self._when <= self._clock.now():
            self._timeout.reschedule(asyncio.get_running_loop().time())
        else:
            self._sleeper = self._clock._sleeper(self._when)
            self._sleeper.add_done_callback(self._expire)
        return self._timeout

    def _expire(self, sleeper: asyncio.Future[None]) -> None:
        if self._open and not sleeper.cancelled():
            self._timeout.reschedule(asyncio.get_running_loop().time())

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._open = False
        if self._sleeper is not None:
            self._sleeper.cancel()
        await self._timeout.__aexit__(exc_type, exc, tb)


def clock_from_env() -> Clock:
    """`FLUX_CLOCK=start=...,speed=...` selects a scaled clock (simulations); otherwise real time."""
    spec = os.environ.get("FLUX_CLOCK", "").strip()
    return ScaledClock.parse(spec) if spec else RealClock()


def parse_utc(value: object) -> datetime:
    """An ISO 8601 time that names its UTC offset, as aware UTC. A ValueError says what is wrong."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 time")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if t.tzinfo is None:
        raise ValueError(f"give a UTC offset (e.g. +01:00 or Z): {value!r}")
    return utc(t)


def align_up(t: datetime, interval_s: float) -> datetime:
    """The first slot boundary at or after `t`, slots aligned to the Unix epoch (so to the wall clock)."""
    ts = utc(t).timestamp()
    slot = math.ceil(round(ts / interval_s, 9)) * interval_s
    return datetime.fromtimestamp(slot, UTC)


def align_down(t: datetime, interval_s: float) -> datetime:
    """The slot boundary at or before `t`."""
    ts = utc(t).timestamp()
    slot = math.floor(round(ts / interval_s, 9)) * interval_s
    return datetime.fromtimestamp(slot, UTC)
