"""HiGHS on the planning LP. Only the child process (`child.py`) and tools (bench, backtest) import this:
highspy pulls in numpy, which the daemon must not carry (about 23 MB RSS together)."""

from __future__ import annotations

import os
import time

import highspy

from controller.planner.model import Lp, Plan, PlanInputs, build_lp, read_plan


class SolveError(RuntimeError):
    """HiGHS did not reach an optimum (time limit, numerical trouble): no plan from this solve."""


def _quiet_highs() -> highspy.Highs:
    # HiGHS prints its banner on fd 1 when constructed, before any option can silence it; fd 1 is the
    # child's answer channel and a command's only output, so it points elsewhere meanwhile.
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    h.setOptionValue("output_flag", False)
    # Measured on 200 random 48 h plans (bench/README.md): presolve off with the dual simplex halves the
    # p99 against the defaults; the LP is small and already tight, presolve finds little to remove.
    h.setOptionValue("presolve", "off")
    h.setOptionValue("simplex_strategy", 1)
    return h


class Solver:
    """One HiGHS instance reused across solves (creating one costs more than a small solve)."""

    def __init__(self) -> None:
        self._h = _quiet_highs()

    def solve_lp(self, lp: Lp, time_limit_s: float) -> list[float]:
        h = self._h
        h.clearModel()
        # HiGHS's time limit counts from the instance's creation, across runs: extend it from now.
        h.setOptionValue("time_limit", h.getRunTime() + float(time_limit_s))
        model = highspy.HighsLp()
        model.num_col_ = lp.num_col
        model.num_row_ = lp.num_row
        model.col_cost_ = lp.cost
        model.col_lower_ = lp.col_lower
        model.col_upper_ = lp.col_upper  # float inf is HiGHS's infinity (kHighsInf)
        model.row_lower_ = lp.row_lower
        model.row_upper_ = lp.row_upper
        model.offset_ = lp.offset
        model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        model.a_matrix_.start_ = lp.start
        model.a_matrix_.index_ = lp.index
        model.a_matrix_.value_ = lp.value
        h.passModel(model)
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolveError(f"HiGHS: {h.modelStatusToString(status)}")
        return list(h.getSolution().col_value)

    def plan(self, inputs: PlanInputs, time_limit_s: float = 2.0) -> Plan:
        """Build, solve and read back one plan; `solve_ms` is build + solve + read."""
        t0 = time.perf_counter()
        lp = build_lp(inputs)
        values = self.solve_lp(lp, time_limit_s)
        return read_plan(inputs, values, (time.perf_counter() - t0) * 1000.0)
