"""The child process: a plan through it, and a hung, crashed or babbling child as a PlanFailure (the caller
keeps its previous plan). The daemon side never loads numpy or highspy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.planner.runner import PlanFailure, PlannerProcess
from tests.planner.test_model import inputs

ROOT = Path(__file__).resolve().parents[2]
READY = 'import sys; print(\'{"ok": true, "ready": true}\', flush=True); '


def test_a_plan_through_the_child_process_is_the_in_process_plan() -> None:
    from controller.planner.solver import Solver

    x = inputs((10.0, 30.0), charge_efficiency=0.9)
    with PlannerProcess() as proc:
        got = proc.plan(x, 20.0)
        again = proc.plan(x, 20.0)
        assert proc.starts == 1  # one child, reused
    want = Solver().plan(x)
    assert got.plan.as_json() | {"solve_ms": 0} == want.as_json() | {"solve_ms": 0}
    assert again.plan.plan_id == got.plan.plan_id


@pytest.mark.parametrize(("script", "message"), [
    (READY + "import time; sys.stdin.readline(); time.sleep(60)", "no plan within"),
    (READY + "sys.stdin.readline(); sys.exit(3)", r"exited \(code 3\)"),
    (READY + "sys.stdin.readline(); print('not json', flush=True); sys.stdin.readline()", "garbage"),
    (READY + "sys.stdin.readline(); print('{\"ok\": false, \"error\": \"boom\"}', flush=True); sys.stdin.readline()",
     "boom"),
])
def test_a_failing_child_is_a_plan_failure(script: str, message: str) -> None:
    with PlannerProcess((sys.executable, "-c", script)) as proc:
        with pytest.raises(PlanFailure, match=message):
            proc.plan(inputs((10.0, 30.0)), 1.0)
        assert proc.failures == 1


def test_a_child_that_never_starts_is_a_plan_failure() -> None:
    with PlannerProcess((sys.executable, "-c", "import sys; sys.exit(1)")) as proc, \
            pytest.raises(PlanFailure, match="did not start"):
        proc.plan(inputs((10.0, 30.0)), 1.0)


def test_the_daemon_side_does_not_import_numpy_or_highspy() -> None:
    code = ("import sys; import controller.planner.runner, controller.planner.inputs, controller.wiring, modes.catalog; "
            "bad = [m for m in ('numpy', 'highspy') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
