"""Supervision of the daemon's long-running tasks.

A device poller that fails is restarted with exponential backoff and jitter and never takes the
process down. A task marked critical (the control loop, the outbox writer) that fails stops the
whole daemon instead: systemd restarts it, and the battery's heartbeat timeout idles the battery.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from controller.core.clock import Clock
from controller.core.logs import get_logger

log = get_logger("supervisor")

TaskFactory = Callable[[], Awaitable[None]]


class CriticalTaskFailed(Exception):
    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"critical task {name} failed: {error!r}")
        self.name = name
        self.error = error


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.2  # fraction of the delay, either way

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))
        r = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1.0 + r))


@dataclass
class _Supervised:
    name: str
    factory: TaskFactory
    critical: bool
    backoff: Backoff
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    failures_in_row: int = 0
    last_error: str | None = None
    stopping: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    """Runs named tasks, restarts failed ones, and reports a critical failure to `wait_fatal()`."""

    def __init__(self, clock: Clock, *, stable_after_s: float = 60.0) -> None:
        self._clock = clock
        self._tasks: dict[str, _Supervised] = {}
        self._fatal: asyncio.Future[CriticalTaskFailed] | None = None
        self._stable_after_s = stable_after_s

    def _fatal_future(self) -> asyncio.Future[CriticalTaskFailed]:
        if self._fatal is None:
            self._fatal = asyncio.get_running_loop().create_future()
        return self._fatal

    @property
    def names(self) -> list[str]:
        return list(self._tasks)

    def restarts(self, name: str) -> int:
        return self._tasks[name].restarts

    def is_running(self, name: str) -> bool:
        s = self._tasks.get(name)
        return s is not None and s.task is not None and not s.task.done()

    def spawn(self, name: str, factory: TaskFactory, *, critical: bool = False,
              backoff: Backoff | None = None) -> None:
        if name in self._tasks:
            raise ValueError(f"task {name} already supervised")
        sup = _Supervised(name, factory, critical, backoff or Backoff())
        self._tasks[name] = sup
        self._fatal_future()
        sup.task = asyncio.create_task(self._run(sup), name=f"supervised:{name}")

    async def _run(self, sup: _Supervised) -> None:
        try:
            while not sup.stopping:
                started = self._clock.monotonic()
                try:
                    await sup.factory()
                    if sup.stopping:
                        return
                    # A task that returns on its own has nothing more to do.
                    log.info("task_finished", task=sup.name)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    sup.last_error = repr(exc)
                    if sup.critical:
                        log.error("critical_task_failed", task=sup.name, error=repr(exc), exc_info=exc)
                        fut = self._fatal_future()
                        if not fut.done():
                            fut.set_result(CriticalTaskFailed(sup.name, exc))
                        return
                    if self._clock.monotonic() - started >= self._stable_after_s:
                        sup.failures_in_row = 0
                    sup.failures_in_row += 1
                    sup.restarts += 1
                    delay = sup.backoff.delay(sup.failures_in_row)
                    log.warning("task_failed", task=sup.name, error=repr(exc),
                                restart_in_s=round(delay, 3), restarts=sup.restarts)
                    await self._clock.sleep(delay)
        finally:
            sup.done.set()

    async def stop(self, name: str, timeout_s: float = 5.0) -> None:
        sup = self._tasks.pop(name, None)
        if sup is None or sup.task is None:
            return
        sup.stopping = True
        sup.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(sup.done.wait()), timeout_s)

    async def stop_all(self, timeout_s: float = 5.0) -> None:
        names = list(self._tasks)
        await asyncio.gather(*(self.stop(n, timeout_s) for n in names))

    async def wait_fatal(self) -> CriticalTaskFailed:
        return await self._fatal_future()
