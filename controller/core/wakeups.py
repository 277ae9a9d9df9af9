"""Fewer wake-ups: the daemon lets its timers fire up to `TIMER_SLACK_S` late, so that they share wake-ups.

Measured on the 2-core VM: waking an idle process costs about 80 us of CPU in the kernel alone
(`time.sleep(0.01)` in a loop) and about 200 us through asyncio, and the HMCE daemon woke about 40 times a
second, many of them for a timer (a poll slot, an Emlite meter's 2 s connection gap or start jitter, the
writer's commit gap). With slack the kernel may expire a timer anywhere in
[due, due + slack], when the CPU wakes anyway, and asyncio then runs every callback due by then in one
step. 50 ms took the HMCE daemon from 41 to 33 wake-ups a second and its CPU to x0.81-x0.88
(bench/README.md, ninth session).

Slack delays timers only, never I/O: a fresh site-meter reading still wakes the control loop at once
(reading-to-setpoint p99 unchanged). A poll may start up to 50 ms into its slot, against the 2 s polls of
the bundled sites; its reading is stamped with the slot's start all the same, and the slot's deadline is a
timer too, so the poll keeps its whole slot. On a scaled clock (simulations, `FLUX_CLOCK`) a second is a
few milliseconds of real time, so there is no slack there.

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
