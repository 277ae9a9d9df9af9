"""The planner's child process: `python -m controller.planner.child`. One JSON request per line on stdin
(`{"inputs": PlanInputs, "time_limit_s": x}`), one JSON answer per line on stdout (`{"ok": true, "plan":
Plan}` or `{"ok": false, "error": "..."}`). numpy and highspy live here, never in the daemon."""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def answer(line: str, solver: Any) -> dict[str, Any]:
    from controller.planner.model import PlanInputs

    try:
        request = json.loads(line)
        inputs = PlanInputs.from_json(request["inputs"])
        plan = solver.plan(inputs, float(request.get("time_limit_s", 2.0)))
    except Exception as exc:  # every failure is an answer; the parent keeps its last plan
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "plan": plan.as_json()}


def main() -> int:
    # The answers go to the original stdout; anything else printing on fd 1 (HiGHS's banner) goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    from controller.planner.solver import Solver

    solver = Solver()
    out.write(json.dumps({"ok": True, "ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(answer(line, solver)) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
