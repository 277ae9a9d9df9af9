"""Fewer wake-ups: the daemon lets its timers fire up to `TIMER_SLACK_S` late, so that they share wake-ups.

Measured on the 2-core VM: waking an idle process costs about 80 us of CPU in the kernel alone
(`time.sleep(0.01)` in a loop) and about 200 us through asyncio; the daemon at HMCE size wakes about
40 times a second, most of them for a timer (a poll slot, an EMOP connection gap, a control tick) that
fires on its own a few milliseconds before or after some I/O. With timer slack the kernel may expire a
timer anywhere in [due, due + slack], at a moment the CPU wakes anyway; asyncio then runs every
callback due by then in one step. 50 ms of slack took the HMCE daemon from 41 to 33 wake-ups a
second and its CPU to x0.81 (bench/README.md, ninth session).

50 ms is small against every interval the daemon keeps: 2 s between polls, the Modbus and EMOP
timeouts (2 s, 10 s), the 4 s control period, the watchdog's 30 s. Readings are stamped with their
slot's start whatever the wake-up, and a control decision on a fresh meter reading is woken by I/O,
which slack never delays. On a scaled clock (simulations, `FLUX_CLOCK`) a second is a few
milliseconds, so there is no slack there.

Linux only (`/proc/self/timerslack_ns`, since 4.6: the main thread's own slack, inherited by the
threads it starts later); elsewhere, or where the file cannot be written, timers keep their default.
"""

from __future__ import annotations

from controller.core.clock import Clock, RealClock
from controller.core.logs import get_logger

log = get_logger("wakeups")

TIMER_SLACK_S = 0.05
SLACK_FILE = "/proc/self/timerslack_ns"


def allow_timer_slack(clock: Clock, slack_s: float = TIMER_SLACK_S) -> bool:
    """Give this thread's timers `slack_s` of slack on the real clock (call before threads start).

    True if the kernel took it.
    """
    if not isinstance(clock, RealClock):
        return False
    try:
        with open(SLACK_FILE, "w") as f:
            f.write(str(round(slack_s * 1e9)))
    except OSError as exc:
        log.info("timer_slack_unavailable", error=str(exc))
        return False
    log.info("timer_slack_set", slack_ms=round(slack_s * 1000))
    return True
