"""Walk-forward evaluation: forecasts made at regular times over a range of days, each only from what
was known when it was made, scored against what happened.

Scores per quantity and forecaster, pooled over every (forecast, period ahead) pair with an actual:
MAE, RMSE, skill against the same-time-last-week persistence forecaster (1 - MAE / MAE of
persistence on the same pairs) and the share of actuals inside the 80 % interval; also the MAE over
the first N periods ahead (`mae_by_lead[N-1]`), which is where a price forecast earns its keep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from controller.engine.settlement import SP_S, gb_midnight
from controller.forecast.forecasters import FORECASTERS, PERSISTENCE, Forecaster, period_starts
from controller.forecast.series import History


@dataclass
class Score:
    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    covered: int = 0
    by_lead_abs: list[float] = field(default_factory=list)
    by_lead_n: list[int] = field(default_factory=list)

    def add(self, lead: int, error: float, inside: bool) -> None:
        while len(self.by_lead_abs) <= lead:
            self.by_lead_abs.append(0.0)
            self.by_lead_n.append(0)
        self.n += 1
        self.abs_sum += abs(error)
        self.sq_sum += error * error
        self.covered += inside
        self.by_lead_abs[lead] += abs(error)
        self.by_lead_n[lead] += 1

    @property
    def mae(self) -> float:
        return self.abs_sum / self.n if self.n else math.nan

    def mae_first(self, periods: int) -> float:
        """MAE over the first `periods` periods ahead."""
        n = sum(self.by_lead_n[:periods])
        return sum(self.by_lead_abs[:periods]) / n if n else math.nan


@dataclass
class Evaluation:
    days: int
    forecasts: int
    scores: dict[str, dict[str, Score]]  # quantity -> forecaster -> score

    def as_json(self) -> dict[str, Any]:
        """The spec's `forecast evaluate --json` answer (extended with n and MAE over the first periods)."""
        out: dict[str, Any] = {}
        for quantity, by_name in self.scores.items():
            base = by_name.get(PERSISTENCE.name)
            entry = {}
            for name, s in by_name.items():
                if not s.n:
                    continue
                skill = 1 - s.mae / base.mae if base is not None and base.n and base.mae > 0 else None
                entry[name] = {"mae": _r(s.mae), "rmse": _r(math.sqrt(s.sq_sum / s.n)), "skill": _r(skill),
                               "coverage_80": _r(s.covered / s.n), "n": s.n,
                               "mae_first": {str(k): _r(s.mae_first(k)) for k in (1, 4, 48)}}
            if entry:
                out[quantity] = entry
        return {"days": self.days, "forecasts": self.forecasts, "quantities": out}


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 4)


def issue_times(first: date, last: date, every: int) -> list[datetime]:
    """Every `every`-th settlement period start from `first`'s local midnight to `last`'s end."""
    start, end = gb_midnight(first), gb_midnight(last + timedelta(days=1))
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(seconds=SP_S * every)
    return out


def evaluate(history: History, first: date, last: date, *, every: int = 4, horizon: int = 48,
             forecasters: Mapping[str, Sequence[Forecaster]] | None = None) -> Evaluation:
    """Walk forward over [first, last] (local dates): a forecast every `every` periods, `horizon`
    periods ahead, each from the values known before it was made (the forecasters see only those)."""
    table = forecasters or FORECASTERS
    scores: dict[str, dict[str, Score]] = {}
    times = issue_times(first, last, every)
    for quantity, candidates in table.items():
        q = history.get(quantity)
        if q is None:
            continue
        scores[quantity] = by_name = {f.name: Score() for f in candidates}
        for at in times:
            starts = period_starts(at, horizon)
            actual = [q.by_ts.get(ts) for ts in starts]
            if all(a is None for a in actual):
                continue
            for f in candidates:
                out = f.forecast(history, quantity, at, starts)
                if out is None:
                    continue
                score = by_name[f.name]
                for lead, (a, band) in enumerate(zip(actual, out[0], strict=True)):
                    if a is not None:
                        score.add(lead, band.value - a, band.lower <= a <= band.upper)
    return Evaluation((last - first).days + 1, len(times), scores)


def format_table(ev: Evaluation) -> str:
    lines = [f"walk-forward: {ev.days} days, {ev.forecasts} forecasts",
             f"{'QUANTITY':<17}{'FORECASTER':<18}{'MAE':>9}{'RMSE':>9}{'SKILL':>8}{'COV80':>7}{'N':>8}"]
    data = ev.as_json()["quantities"]
    for quantity, by_name in data.items():
        for name, s in by_name.items():
            skill = "-" if s["skill"] is None else f"{s['skill']:.3f}"
            lines.append(f"{quantity:<17}{name:<18}{s['mae']:>9.3f}{s['rmse']:>9.3f}{skill:>8}"
                         f"{s['coverage_80']:>7.3f}{s['n']:>8}")
    return "\n".join(lines)
