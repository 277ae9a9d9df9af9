"""The supervisor restarts a failing task with backoff and leaves the others alone."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from controller.core.clock import ManualClock
from controller.core.supervisor import Backoff, Supervisor

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


async def test_failing_task_restarted_with_backoff_others_unaffected() -> None:
    clock = ManualClock(T0)
    sup = Supervisor(clock)
    runs = {"flaky": 0, "steady": 0}
    steady_ticks: list[datetime] = []

    async def flaky() -> None:
        runs["flaky"] += 1
        raise ConnectionError("device went away")

    async def steady() -> None:
        runs["steady"] += 1
        while True:
            steady_ticks.append(clock.now())
            await clock.sleep(1)

    sup.spawn("flaky", flaky, backoff=Backoff(initial_s=2, max_s=8, jitter=0))
    sup.spawn("steady", steady)
    await clock.settle()
    assert runs == {"flaky": 1, "steady": 1}
    await clock.advance(2)  # first restart after 2 s
    assert runs["flaky"] == 2
    await clock.advance(3.9)  # second delay is 4 s: not yet
    assert runs["flaky"] == 2
    await clock.advance(0.1)
    assert runs["flaky"] == 3
    await clock.advance(8 + 8)  # capped at 8 s
    assert runs["flaky"] == 5
    assert sup.restarts("flaky") == 5  # five failures, five restarts scheduled
    assert runs["steady"] == 1 and sup.is_running("steady")
    assert len(steady_ticks) >= 20
    await sup.stop_all()
    assert not sup.is_running("steady")


async def test_critical_task_failure_is_reported_not_restarted() -> None:
    clock = ManualClock(T0)
    sup = Supervisor(clock)
    runs = 0

    async def control() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("control loop bug")

    sup.spawn("control", control, critical=True)
    fatal = await asyncio.wait_for(sup.wait_fatal(), 5)
    assert fatal.name == "control" and isinstance(fatal.error, RuntimeError)
    await clock.advance(600)
    assert runs == 1
    await sup.stop_all()


def test_backoff_grows_caps_and_jitters() -> None:
    b = Backoff(initial_s=1, max_s=30, factor=2, jitter=0.2)
    rng = random.Random(1)
    delays = [b.delay(n, rng) for n in range(1, 10)]
    for n, d in enumerate(delays, start=1):
        base = min(30, 2 ** (n - 1))
        assert 0.8 * base <= d <= 1.2 * base
    assert max(delays) <= 36
