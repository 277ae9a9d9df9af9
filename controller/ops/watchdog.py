"""systemd notification: READY=1, WATCHDOG=1 only while the critical loops make progress, STATUS=, STOPPING=1.

A ping proves more than "the event loop runs": it is sent only while every required heartbeat
(`runtime.heartbeats`, beaten by the control loop per tick and the outbox writer per commit) has
moved within `heartbeat_max_age_s`. A hung control loop therefore stops the pings, systemd kills and
restarts us, and meanwhile the battery's own command timeout idles it.

Progress is judged on the injected clock (a heartbeat counts as fresh when its value changed since
the last look), so the cadence is testable on a ManualClock and consistent under a scaled clock.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import sdnotify

from controller.core.logs import get_logger
from controller.ops.status import take_view

if TYPE_CHECKING:
    from controller.runtime import Runtime

log = get_logger("ops.watchdog")

DEFAULT_PING_INTERVAL_S = 10.0
READY_CHECK_S = 0.5
STATUS_TIMEOUT_S = 2.0
STATUS_EVERY_S = 5.0


class Notifier(Protocol):
    def notify(self, state: str) -> None: ...


def systemd_notifier() -> Notifier:
    """sdnotify's notifier: a no-op without NOTIFY_SOCKET (not under systemd).

    Non-blocking: should the receiver's queue ever be full, a state line is dropped rather than the
    event loop (and with it the control loop) being stalled inside a send.
    """
    notifier = sdnotify.SystemdNotifier()
    if notifier.socket is not None:
        notifier.socket.setblocking(False)
    typed: Notifier = notifier
    return typed


def ping_interval_s(configured: float | None, env: Mapping[str, str]) -> float:
    """Configured, else half of systemd's WatchdogSec (WATCHDOG_USEC), else a default."""
    if configured is not None:
        return configured
    usec = env.get("WATCHDOG_USEC", "")
    if usec.isdigit() and int(usec) > 0:
        return int(usec) / 1e6 / 2
    return DEFAULT_PING_INTERVAL_S


def required_heartbeats(runtime: Runtime) -> list[str]:
    """Heartbeats of the critical components this daemon actually runs."""
    names: list[str] = []
    if runtime.config.controller is not None and runtime.services.control is not None:
        names.append("control")
    if runtime.services.outbox is not None:
        names.append("outbox")
    return names


class Watchdog:
    def __init__(self, runtime: Runtime, notifier: Notifier, env: Mapping[str, str] | None = None) -> None:
        self._runtime = runtime
        self._notifier = notifier
        self._env = os.environ if env is None else env
        self._seen: dict[str, tuple[float | None, float]] = {}  # name -> (heartbeat value, clock time it changed)
        self.pings = 0
        self.withheld = 0
        self._stalled: list[str] = []
        self._status_line: str | None = None
        self._status_at = 0.0

    def _config(self) -> Any:
        return self._runtime.config.ops.watchdog

    def first_round_attempted(self) -> bool:
        health = self._runtime.health
        for d in self._runtime.config.devices:
            h = health.get(d.name)
            if h is None or int(getattr(h, "polls_ok", 0)) + int(getattr(h, "polls_failed", 0)) == 0:
                return False
        return True

    def stale(self) -> list[str]:
        """Required heartbeats that have not moved within the allowed age (empty: healthy)."""
        now = self._runtime.clock.monotonic()
        max_age = float(self._config().heartbeat_max_age_s)
        out: list[str] = []
        for name in required_heartbeats(self._runtime):
            value = self._runtime.heartbeats.get(name)
            prev = self._seen.get(name)
            if prev is None or (value is not None and value != prev[0]):
                # First sight starts the clock, so a component gets the full age to beat its first time.
                self._seen[name] = (value, now)
                continue
            if now - prev[1] > max_age:
                out.append(name)
        return out

    async def _status(self) -> str:
        try:
            # Real seconds: the outbox figures come from SQLite in a thread; a slow answer is skipped.
            view = await asyncio.wait_for(take_view(self._runtime), STATUS_TIMEOUT_S)
        except Exception as exc:  # STATUS= is informative; never let it hold up anything
            log.warning("status_line_failed", error=repr(exc))
            return "status unavailable"
        return view.status_line()

    async def wait_ready(self) -> None:
        clock = self._runtime.clock
        deadline = clock.monotonic() + float(self._config().ready_timeout_s)
        while not self.first_round_attempted() and not self._runtime.ready.is_set():
            if clock.monotonic() >= deadline:
                log.warning("ready_without_first_poll_round", waited_s=float(self._config().ready_timeout_s))
                break
            await clock.sleep(READY_CHECK_S)

    def tick(self) -> bool:
        """One watchdog period: ping if healthy. Returns whether WATCHDOG=1 was sent.

        The ping goes first and alone, so nothing it does not depend on (the STATUS figures) can delay it.
        """
        stale = self.stale()
        if stale:
            self.withheld += 1
            if self._stalled != stale:
                log.error("watchdog_withheld", stale=stale, max_age_s=float(self._config().heartbeat_max_age_s))
            self._stalled = stale
            return False
        if self._stalled:
            log.info("watchdog_resumed")
        self._stalled = []
        self.pings += 1
        self._notifier.notify("WATCHDOG=1")
        return True

    async def report(self) -> None:
        # At most every STATUS_EVERY_S real seconds: on a fast simulated clock the pings come many times
        # a second, and the figures need not.
        now = time.monotonic()
        if self._status_line is None or now - self._status_at >= STATUS_EVERY_S:
            self._status_line, self._status_at = await self._status(), now
        status = self._status_line
        if self._stalled:
            status = f"stalled: {','.join(self._stalled)} not progressing; {status}"
        self._notifier.notify(f"STATUS={status}")

    async def run(self) -> None:
        self._notifier.notify("STATUS=starting: waiting for the first poll round")
        try:
            await self.wait_ready()
            self._notifier.notify(f"READY=1\nSTATUS={await self._status()}")
            log.info("systemd_ready")
            while True:
                self.tick()
                await self.report()
                interval = ping_interval_s(self._config().ping_interval_s, self._env)
                await self._runtime.clock.sleep(interval)
        except asyncio.CancelledError:
            # The component's key never changes, so only shutdown cancels it (and it stops first).
            self._notifier.notify("STOPPING=1\nSTATUS=stopping")
            log.info("systemd_stopping")
            raise
