"""The next scheduled change of which modes may act: a mode's period starting or ending.

Pure: the modes' periods and `now` in, the first boundary after `now` out. Back-to-back occurrences
(a 00:00-24:00 period, or 22:00-24:00 then 00:00-06:00) join into one window, so midnight is no change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.core.config import Period
from controller.engine.schedule import Window, occurrences

LOOKAHEAD_DAYS = 7


@dataclass(frozen=True, slots=True)
class ModeChange:
    time: datetime
    mode: str
    change: str  # "starts" or "ends"


def merged_windows(periods: Iterable[Period], now: datetime, days_ahead: int = LOOKAHEAD_DAYS) -> list[Window]:
    windows = sorted((w for p in periods for w in occurrences(p, now, days_back=1, days_ahead=days_ahead)),
                     key=lambda w: w.start)
    out: list[Window] = []
    for w in windows:
        if out and w.start <= out[-1].end:
            if w.end > out[-1].end:
                out[-1] = Window(out[-1].start, w.end)
        else:
            out.append(w)
    return out


def next_mode_change(modes: Sequence[tuple[str, Sequence[Period]]], now: datetime) -> ModeChange | None:
    """The earliest start or end after `now` of any mode's (merged) windows within a week; ties go to the
    higher-priority mode (first in `modes`)."""
    best: ModeChange | None = None
    for name, periods in modes:
        for w in merged_windows(periods, now):
            if w.end <= now:
                continue
            t, change = (w.start, "starts") if w.start > now else (w.end, "ends")
            if best is None or t < best.time:
                best = ModeChange(t, name, change)
            break  # windows are sorted and disjoint: this mode's first boundary after now is found
    return best
