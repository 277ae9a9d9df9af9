"""Arbitration as modes.md step 4: one row per behaviour."""

from __future__ import annotations

import math

import pytest

from controller.engine.arbitration import arbitrate
from controller.engine.proposal import Proposal as P

INF = math.inf

ROWS = [
    # (why, proposals highest first, power, lo, hi, active, effective)
    ("nothing proposed", [], None, None, None, [], []),
    ("empty proposal is not active", [("a", P())], None, None, None, [], []),
    ("single target wins", [("a", P(target=50))], 50, None, None, ["a"], ["a"]),
    ("high-priority target inside a lower mode's bounds wins",
     [("a", P(target=20)), ("b", P(min=0))], 20, 0, None, ["a", "b"], ["a", "b"]),
    ("a bare high-priority target is replaced by a lower one (only bounds protect it)",
     [("a", P(target=20)), ("b", P(target=-100, max=-100))], -100, None, -100, ["a", "b"], ["a", "b"]),
    ("a target with bounds protects itself",
     [("a", P(target=20, min=20, max=20)), ("b", P(target=-100, max=-100))], 20, 20, 20, ["a", "b"], ["a"]),
    ("higher bound stops a lower target (its max still narrows hi while power is unset)",
     [("a", P(min=0)), ("b", P(target=-80, max=-80))], None, 0, -80, ["a", "b"], ["a", "b"]),
    ("lower target inside higher bounds replaces nothing-yet power",
     [("a", P(min=0)), ("b", P(target=30))], 30, 0, None, ["a", "b"], ["a", "b"]),
    ("lower target replaces a higher one when inside the bounds (the spec's rule)",
     [("a", P(target=10)), ("b", P(target=40))], 40, None, None, ["a", "b"], ["a", "b"]),
    ("charge allowing more: a later stronger charge replaces the target",
     [("a", P(target=-50, max=-50)), ("b", P(target=-120, max=-120))], -120, None, -120, ["a", "b"], ["a", "b"]),
    ("charge allowing more: a later weaker charge is refused",
     [("a", P(target=-50, max=-50)), ("b", P(target=-20, max=-20))], -50, None, -50, ["a", "b"], ["a"]),
    ("min above power is refused",
     [("a", P(target=10)), ("b", P(min=30))], 10, None, None, ["a", "b"], ["a"]),
    ("max below power is refused",
     [("a", P(target=10)), ("b", P(max=-5))], 10, None, None, ["a", "b"], ["a"]),
    ("min not higher than lo is ignored",
     [("a", P(min=10)), ("b", P(min=5))], None, 10, None, ["a", "b"], ["a"]),
    ("max not lower than hi is ignored",
     [("a", P(max=10)), ("b", P(max=15))], None, None, 10, ["a", "b"], ["a"]),
    ("target exactly on the bound is inside",
     [("a", P(min=25)), ("b", P(target=25))], 25, 25, None, ["a", "b"], ["a", "b"]),
    ("infinite discharge passes open bounds",
     [("a", P(target=INF, min=INF, max=INF)), ("b", P(target=0))], INF, INF, INF, ["a", "b"], ["a"]),
    ("import avoidance while exporting only raises lo",
     [("a", P(min=-30)), ("b", P(target=-100, max=-100))], None, -30, -100, ["a", "b"], ["a", "b"]),
    ("bounds narrow then a target in between wins",
     [("a", P(min=-10)), ("b", P(max=40)), ("c", P(target=15))], 15, -10, 40, ["a", "b", "c"], ["a", "b", "c"]),
]


@pytest.mark.parametrize(("why", "proposals", "power", "lo", "hi", "active", "effective"), ROWS,
                         ids=[r[0] for r in ROWS])
def test_arbitration(why: str, proposals: list[tuple[str, P]], power: float | None, lo: float | None,
                     hi: float | None, active: list[str], effective: list[str]) -> None:
    result = arbitrate(proposals)
    assert (result.power, result.lo, result.hi) == (power, lo, hi)
    assert list(result.active) == active
    assert list(result.effective) == effective
