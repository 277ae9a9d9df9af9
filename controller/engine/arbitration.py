"""Priority arbitration exactly as modes.md step 4.

Walking from the highest priority down, with `power`, `lo`, `hi` initially unset:
- a target replaces `power` if it lies within the current [lo, hi];
- a min raises `lo` if it is above `lo` and not above `power` (when set);
- a max lowers `hi` if it is below `hi` and not below `power` (when set).
A proposal that changed anything is effective; every non-empty one is active.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.engine.proposal import Proposal


@dataclass(frozen=True, slots=True)
class Arbitration:
    power: float | None
    lo: float | None
    hi: float | None
    active: tuple[str, ...]
    effective: tuple[str, ...]
    decided_by: str | None  # the mode whose target is the power


def arbitrate(proposals: Sequence[tuple[str, Proposal | None]]) -> Arbitration:
    """`proposals` are (mode name, proposal) pairs, highest priority first."""
    power: float | None = None
    lo: float | None = None
    hi: float | None = None
    decided_by: str | None = None
    active: list[str] = []
    effective: list[str] = []
    for name, p in proposals:
        if p is None or p.empty:
            continue
        active.append(name)
        changed = False
        if p.target is not None and (lo is None or p.target >= lo) and (hi is None or p.target <= hi):
            power = p.target
            decided_by = name
            changed = True
        if p.min is not None and (lo is None or p.min > lo) and (power is None or p.min <= power):
            lo = p.min
            changed = True
        if p.max is not None and (hi is None or p.max < hi) and (power is None or p.max >= power):
            hi = p.max
            changed = True
        if changed:
            effective.append(name)
    return Arbitration(power, lo, hi, tuple(active), tuple(effective), decided_by)
