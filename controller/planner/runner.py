"""The daemon's side of the planner's child process: start it once, send it inputs, read back a plan within
a wall-clock limit. A child that hangs past the limit is killed (and started again on the next plan); one
that crashes or answers garbage is a failed solve. Either way the caller keeps its previous plan.

Synchronous (pipes + `selectors`): the daemon calls it through `asyncio.to_thread`; the CLI directly.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO

from controller.core.logs import get_logger
from controller.core.process import child_env
from controller.planner.model import Plan, PlanInputs

log = get_logger("planner")
START_TIMEOUT_S = 30.0  # python + numpy + highspy import, on a busy 2-core machine


class PlanFailure(RuntimeError):
    """No plan from this attempt: timeout, crash, or the solver's own failure (the message says which)."""


@dataclass(frozen=True, slots=True)
class Timed:
    plan: Plan
    wall_ms: float  # send to answer, as the caller waited


class PlannerProcess:
    def __init__(self, argv: tuple[str, ...] = (sys.executable, "-m", "controller.planner.child")) -> None:
        self._argv = argv
        self._proc: subprocess.Popen[str] | None = None
        self.starts = 0
        self.failures = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=child_env(), bufsize=1)
        self._proc = proc
        self.starts += 1
        assert proc.stdout is not None
        ready = self._read_line(proc.stdout, START_TIMEOUT_S)
        if not ready or not json.loads(ready).get("ready"):
            self.close()
            raise PlanFailure("the planner process did not start")
        log.info("planner_process_started", pid=proc.pid)
        return proc

    @staticmethod
    def _read_line(stream: IO[str], timeout_s: float) -> str | None:
        """The next line; "" when the child has exited; None when nothing came within `timeout_s`."""
        with selectors.DefaultSelector() as sel:
            sel.register(stream, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                return None
        return stream.readline()

    def start(self) -> None:
        """Start the child now (else the first plan does): its start-up then is not counted in a plan's limit."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()

    def plan(self, inputs: PlanInputs, time_limit_s: float) -> Timed:
        """Plan `inputs` in the child; the whole exchange waits at most `time_limit_s` (plus the child's
        start-up the first time). Raises PlanFailure."""
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        assert proc.stdin is not None and proc.stdout is not None
        t0 = time.perf_counter()
        try:
            # HiGHS gets most of the limit; the rest is for the pipes and the JSON either way.
            proc.stdin.write(json.dumps({"inputs": inputs.as_json(), "time_limit_s": 0.8 * time_limit_s}) + "\n")
            proc.stdin.flush()
        except OSError as exc:
            self._fail()
            raise PlanFailure(f"the planner process died: {exc}") from None
        line = self._read_line(proc.stdout, time_limit_s)
        if line is None:
            self._fail()
            raise PlanFailure(f"no plan within {time_limit_s:g} s: the planner process was stopped")
        if not line:
            try:
                code: int | None = proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                code = None
            self._fail()
            raise PlanFailure(f"the planner process exited (code {code})")
        try:
            answer = json.loads(line)
            if not answer.get("ok"):
                raise PlanFailure(str(answer.get("error")))
            plan = Plan.from_json(answer["plan"])
        except (ValueError, KeyError, TypeError) as exc:
            self._fail()
            raise PlanFailure(f"the planner process answered garbage: {exc}") from None
        except PlanFailure:
            self.failures += 1
            raise
        return Timed(plan, (time.perf_counter() - t0) * 1000.0)

    def _fail(self) -> None:
        self.failures += 1
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> PlannerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
