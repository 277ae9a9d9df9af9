"""Timer slack (controller/core/wakeups.py): 50 ms on the real clock, none on a scaled one; threads started
afterwards inherit it. Each case runs in its own interpreter, as the daemon does: the slack is the
process's own, and the test process keeps its default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/timerslack_ns").exists(), reason="Linux timer slack")

CHILD = """
import ctypes, json, sys, threading
from controller.core.clock import RealClock, ScaledClock
from controller.core.wakeups import allow_timer_slack
def slack():  # the calling thread's own (PR_GET_TIMERSLACK): /proc has only the main thread's
    return ctypes.CDLL(None).prctl(30, 0, 0, 0, 0)
before = slack()
clock = RealClock() if sys.argv[1] == "real" else ScaledClock.parse("start=2026-06-01T00:00:00Z,speed=288")
took = allow_timer_slack(clock)
seen = {}
worker = threading.Thread(target=lambda: seen.update(thread=slack()))
worker.start(); worker.join()
print(json.dumps({"before": before, "took": took, "main": slack(), "thread": seen["thread"]}))
"""


def slack_in_child(clock: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, clock], cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, int] = json.loads(out.stdout.splitlines()[-1])  # after the unconfigured logger's line
    return result


def test_the_real_clock_gets_50_ms_of_slack_and_threads_inherit_it() -> None:
    result = slack_in_child("real")
    assert result["took"] is True
    assert result["main"] == result["thread"] == 50_000_000
    assert result["before"] < 50_000_000


def test_a_scaled_clock_keeps_the_default() -> None:
    # At 288x, 50 ms of real time would be 14 simulated seconds: a whole poll slot late.
    result = slack_in_child("scaled")
    assert result["took"] is False
    assert result["main"] == result["thread"] == result["before"]
