"""Clock.timeout_at and wait_event on the manual clock: deadlines move with the clock, not the loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controller.core.clock import ManualClock, RealClock, wait_event

START = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("deadline_s", "work_s", "expired"), [
    (10, 5, False),   # the work ends first
    (5, 10, True),    # the deadline cuts it off
    (0, 1, True),     # a deadline already passed cuts it off at its first wait
])
async def test_manual_timeout_follows_the_clock(deadline_s: float, work_s: float, expired: bool) -> None:
    clock = ManualClock(START)
    outcome: list[str] = []

    async def work() -> None:
        try:
            async with clock.timeout_at(START + timedelta(seconds=deadline_s)) as deadline:
                await clock.sleep(work_s)
            outcome.append("done")
        except TimeoutError:
            outcome.append("timeout")
        assert deadline.expired() is expired

    task = asyncio.create_task(work())
    await clock.advance(20)
    await task
    assert outcome == ["timeout" if expired else "done"]
    assert clock.sleepers == 0  # the deadline's sleeper does not outlive the block


async def test_cancel_from_outside_is_not_taken_for_the_deadline() -> None:
    clock = ManualClock(START)
    entered = asyncio.Event()

    async def work() -> None:
        async with clock.timeout_at(START + timedelta(seconds=60)):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(("set_after_s", "wait_s", "result", "now_s"), [
    (3, 10, True, 3),     # woken by the event
    (None, 10, False, 10),  # the wait runs out on the clock
    (0, 10, True, 0),     # already set: no wait at all
])
async def test_wait_event(set_after_s: float | None, wait_s: float, result: bool, now_s: float) -> None:
    clock = ManualClock(START)
    event = asyncio.Event()
    if set_after_s == 0:
        event.set()
    ended: list[tuple[bool, datetime]] = []

    async def waiter() -> None:
        ended.append((await wait_event(event, clock, wait_s), clock.now()))

    async def setter() -> None:
        if set_after_s:
            await clock.sleep(set_after_s)
            event.set()

    tasks = [asyncio.create_task(waiter()), asyncio.create_task(setter())]
    while not ended:
        await clock.advance(1)
    await asyncio.gather(*tasks)
    assert ended == [(result, START + timedelta(seconds=now_s))]


async def test_real_clock_timeout_raises_timeout_error() -> None:
    clock = RealClock()
    with pytest.raises(TimeoutError):
        async with clock.timeout_at(clock.now() + timedelta(seconds=0.01)):
            await asyncio.sleep(5)
