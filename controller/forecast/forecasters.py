"""The forecasters: pure functions of the history and the time the forecast is made at.

One engine, several named configurations (`FORECASTERS`):
- `similar_day` (site net load, load, solar): for each period ahead, the recency-weighted mean of
  the same local time on earlier days, same day type weighted most (a bank holiday counts as a
  Sunday), then the same class (weekday / weekend), other days hardly at all; then a nowcast: the
  latest known period's error, carried into the next periods with the coefficient the recent
  history shows for that lead (errors persist for a few hours: weather, occupancy).
- `price_blend` (imbalance price): the same, tuned for prices: the latest known price's departure
  from the same-period shape of recent days, decaying towards that shape over the horizon.
- `same_period_7d`: the mean of the same period over the previous 7 days (the price baseline a
  peer planner, EMHASS, is fed).
- `persistence_week`: the same time last week (two weeks back where last week is missing): the
  baseline every other must beat.
Intervals come from the recent history's own errors (the 10th and 90th percentiles of the errors
scaled by the similar days' spread at each period, per lead after the nowcast), so an 80 % interval
covers about 80 % where the recent past is like the future, and is wide where there is little past.
Too little history widens it and adds a note; no history at all leaves the quantity out.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from controller.core.forecast import LOAD, NET_LOAD, PRICE, SOLAR, Band, Forecast, PeriodForecast
from controller.engine.settlement import SP_S, current_sp_start
from controller.forecast.holidays import day_type
from controller.forecast.series import History, Quantity, local_key

# Two-sided 80 % Student t quantiles (0.9) by degrees of freedom, for intervals without enough
# recent errors to calibrate on.
_T90 = ((1, 3.078), (2, 1.886), (3, 1.638), (4, 1.533), (5, 1.476), (6, 1.440), (8, 1.397),
        (10, 1.372), (15, 1.341), (20, 1.325), (30, 1.310))
Z90 = 1.2816
MIN_CALIBRATION = 96  # recent errors needed to calibrate an interval (two days)
UNCALIBRATED_WIDENING = 1.5


def t90(dof: float) -> float:
    for d, t in _T90:
        if dof <= d:
            return t
    return Z90


@dataclass(frozen=True)
class Params:
    lookback_days: int = 28
    half_life_days: float = 10.0  # recency: a day this much older weighs half
    same_type_weight: float = 1.0  # same weekday (bank holidays as Sundays)
    same_class_weight: float = 0.6  # both weekdays or both weekend days
    other_class_weight: float = 0.02  # used only where no day of the same class is known
    lags: tuple[int, ...] | None = None  # only these day lags, the first one known wins (persistence)
    class_tiers: bool = True  # False: every day in one pool, weighted by the weights above
    nowcast: bool = True
    nowcast_max_age_s: int = 3 * 3600  # the latest value must be this recent to nowcast from
    # Three weeks: tuned on the shipped set's 8 weeks *before* the benchmark's (bench/README.md).
    calibration_periods: int = 21 * 48
    non_negative: bool = False  # solar


@dataclass(frozen=True)
class Forecaster:
    name: str
    params: Params

    def forecast(self, history: History, quantity: str, at: datetime, starts: Sequence[int],
                 live: float | None = None) -> tuple[list[Band], list[str]] | None:
        """Bands for the periods starting at `starts` (epoch s) from what was known at `at`; None
        when nothing at all is known of the quantity before `at`. `live`: the value published for
        the period `at` falls in while it runs (a market's live imbalance price): that period's
        value is it, and the nowcast starts from it instead of the latest ended period."""
        q = history.get(quantity)
        known = int(at.timestamp())
        if q is None:
            return None
        last = bisect.bisect_right(q.sorted_ts, known - SP_S)  # values known at `at`: [0, last)
        if last == 0:
            return None
        notes: list[str] = []
        p = self.params
        window = q.sorted_ts[bisect.bisect_left(q.sorted_ts, known - p.lookback_days * 86400):last]
        days = len({local_key(ts)[0] for ts in window})
        if days < p.lookback_days:
            notes.append(f"{quantity}: {days} of {p.lookback_days} days of history")
        recent = [q.by_ts[ts] for ts in q.sorted_ts[max(0, last - 48):last]]
        floor = 1e-3 + 0.02 * sum(abs(v) for v in recent) / len(recent)
        cal = self._calibration(history, q, last, floor, len(starts) + 2)
        if cal is None:
            notes.append(f"{quantity}: under {MIN_CALIBRATION} recent errors to calibrate on; interval widened")
        anchor_ts = q.sorted_ts[last - 1]
        anchor = self._residual(history, q, anchor_ts, floor) if p.nowcast else None
        age_s = known - (anchor_ts + SP_S)
        if anchor is not None and age_s > p.nowcast_max_age_s:
            notes.append(f"{quantity}: latest value {age_s / 3600:.1f} h old; no nowcast")
            anchor = None
        current = int(current_sp_start(at).timestamp())
        if live is not None and not math.isfinite(live):
            live = None
        if live is not None and current > anchor_ts:
            base_now = self._base(history, q, current, current)
            anchor_ts = current
            anchor = None if base_now is None or not p.nowcast else (
                live - base_now[0], self._floored(base_now[1], floor))
        bands: list[Band] = []
        fallback = 0
        for ts in starts:
            if live is not None and ts == current:
                bands.append(Band.exact(live))
                continue
            base = self._base(history, q, ts, known)
            if base is None:
                fallback += 1
                base = _level(recent, floor)
            value, s, neff = base
            s = self._floored(s, floor)
            lead = (ts - anchor_ts) // SP_S
            if cal is not None:
                beta, lo, hi = cal.at(lead if anchor is not None else 0)
                if anchor is not None:
                    value += beta * anchor[0]
                lower, upper = value + lo * s, value + hi * s
            else:
                half = t90(neff - 1) * s * math.sqrt(1 + 1 / neff) * UNCALIBRATED_WIDENING
                lower, upper = value - half, value + half
            bands.append(_band(value, lower, upper, p.non_negative))
        if fallback:
            notes.append(f"{quantity}: {fallback} period(s) without a similar day; recent level used")
        return bands, notes

    # --- the similar-day mean ---------------------------------------------------------------------

    def _floored(self, s: float, floor: float) -> float:
        # Persistence has no spread of its own (s = 1): its interval is its raw errors' percentiles.
        return s if self.params.lags is not None else max(s, floor)

    def _base(self, history: History, q: Quantity, ts: int, known: int) -> tuple[float, float, float] | None:
        """(mean, spread, effective number of days) of the similar days' values at ts's local time."""
        # Within 22 h of `known` every candidate day (>= one local day back) is known whenever it
        # exists, so the answer depends on ts alone and is memoised.
        cacheable = ts - known <= 22 * 3600
        key = (self.name, q.name, ts)
        if cacheable and key in history.memo:
            return history.memo[key]
        out = self._base_uncached(q, ts, known if not cacheable else ts)
        if cacheable:
            history.memo[key] = out
        return out

    def _base_uncached(self, q: Quantity, ts: int, known: int) -> tuple[float, float, float] | None:
        d, minute = local_key(ts)
        sw = sw2 = swv = swvv = 0.0
        slot = q.by_minute.get(minute)
        if slot is None:
            return None
        # Candidates start at least a local day (23 h on a clock-change day) before ts: known
        # whenever `known` is within 22 h of ts, so the test can be skipped there.
        check = ts - known > 22 * 3600
        for tier in _candidates(d, self.params):
            for c, w in tier:
                item = slot.get(c)
                if item is None or (check and item[0] + SP_S > known):
                    continue
                v = item[1]
                if self.params.lags is not None:
                    return v, 1.0, 1.0  # persistence: the interval comes from its raw errors
                sw += w
                sw2 += w * w
                swv += w * v
                swvv += w * v * v
            if sw > 0:
                break  # days of the other class only where none of the same class is known
        if sw <= 0:
            return None
        mean = swv / sw
        neff = sw * sw / sw2
        var = max(swvv / sw - mean * mean, 0.0) * (neff / (neff - 1) if neff > 1.05 else 1.0)
        # The spread of a new day around the mean: the days' own spread plus the mean's uncertainty.
        return mean, math.sqrt(var * (1 + 1 / neff)), neff

    def _residual(self, history: History, q: Quantity, ts: int, floor: float) -> tuple[float, float] | None:
        """(error, spread) of the similar-day mean for a known period."""
        base = self._base(history, q, ts, ts)
        if base is None:
            return None
        return q.by_ts[ts] - base[0], self._floored(base[1], floor)

    # --- intervals and the nowcast, from recent errors --------------------------------------------

    def _calibration(self, history: History, q: Quantity, last: int, floor: float, leads: int) -> _Calibration | None:
        window = q.sorted_ts[max(0, last - self.params.calibration_periods):last]
        errors: dict[int, tuple[float, float]] = {}
        for ts in window:
            r = self._residual(history, q, ts, floor)
            if r is not None:
                errors[ts] = r
        if len(errors) < MIN_CALIBRATION:
            return None
        return _Calibration.fit(errors, leads if self.params.nowcast else 0)


@dataclass(frozen=True)
class _Calibration:
    """Per lead (periods after the latest known one): the nowcast coefficient and the 10th/90th
    percentiles of the standardised error left after it; lead 0 = no nowcast."""

    beta: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]

    def at(self, lead: int) -> tuple[float, float, float]:
        i = min(max(lead, 0), len(self.beta) - 1)
        return self.beta[i], self.lo[i], self.hi[i]

    @classmethod
    def fit(cls, errors: Mapping[int, tuple[float, float]], leads: int) -> _Calibration:
        z0 = sorted(e / s for e, s in errors.values())
        fitted: dict[int, tuple[float, float, float]] = {0: (0.0, _quantile(z0, 0.1), _quantile(z0, 0.9))}
        # Fitted at a few leads, interpolated between: errors change slowly with lead, and fitting
        # every lead is most of a forecast's time.
        points = sorted({h for h in _FIT_LEADS if h < leads} | ({leads} if leads else set()))
        for h in points:
            off = h * SP_S
            e0s, e1s, s1s = [], [], []
            for ts, (e0, _) in errors.items():
                later = errors.get(ts + off)
                if later is not None:
                    e0s.append(e0)
                    e1s.append(later[0])
                    s1s.append(later[1])
            if len(e0s) < MIN_CALIBRATION // 2:
                fitted[h] = fitted[0]
                continue
            sxx = sum(x * x for x in e0s)
            sxy = sum(x * y for x, y in zip(e0s, e1s, strict=True))
            beta = min(max(sxy / sxx, 0.0), 1.0) if sxx > 0 else 0.0
            z = sorted((y - beta * x) / s1 for x, y, s1 in zip(e0s, e1s, s1s, strict=True))
            fitted[h] = (beta, _quantile(z, 0.1), _quantile(z, 0.9))
        betas, los, his = [0.0], [fitted[0][1]], [fitted[0][2]]
        known = sorted(fitted)
        for h in range(1, leads + 1):
            i = bisect.bisect_left(known, h)
            a, b = known[max(i - 1, 0)], known[min(i, len(known) - 1)]
            fa, fb = fitted[a], fitted[b]
            f = 0.0 if b == a else (h - a) / (b - a)
            betas.append(fa[0] + f * (fb[0] - fa[0]) if a else fb[0])
            los.append(fa[1] + f * (fb[1] - fa[1]) if a else fb[1])
            his.append(fa[2] + f * (fb[2] - fa[2]) if a else fb[2])
        return cls(tuple(betas), tuple(los), tuple(his))


_FIT_LEADS = (1, 2, 4, 8, 16, 32, 48, 96, 192, 288)


def _quantile(sorted_values: Sequence[float], p: float) -> float:
    x = p * (len(sorted_values) - 1)
    i = int(x)
    j = min(i + 1, len(sorted_values) - 1)
    return sorted_values[i] + (sorted_values[j] - sorted_values[i]) * (x - i)


# A refresh asks for the days it calibrates on and forecasts (three weeks and a few) for each forecaster's
# params: a few hundred keys. 4096 kept years of days (16 MiB when full, measured) that no forecast reads.
CANDIDATE_DAYS_CACHED = 512


@functools.lru_cache(maxsize=CANDIDATE_DAYS_CACHED)
def _candidates(day: date, params: Params) -> tuple[tuple[tuple[date, float], ...], ...]:
    """Earlier days and their weights for a target day, nearest first: the same class (weekday or
    weekend, bank holidays with the weekend), then the other class as a fallback tier."""
    target = day_type(day)
    same: list[tuple[date, float]] = []
    other: list[tuple[date, float]] = []
    lags = params.lags if params.lags is not None else range(1, params.lookback_days + 1)
    for k in lags:
        c = day - timedelta(days=k)
        t = day_type(c)
        if params.lags is not None:
            w, tier = 1.0, same
        elif t == target:
            w, tier = params.same_type_weight, same
        elif (t >= 5) == (target >= 5):
            w, tier = params.same_class_weight, same
        else:
            w, tier = params.other_class_weight, other if params.class_tiers else same
        w *= 0.5 ** (k / params.half_life_days) if math.isfinite(params.half_life_days) else 1.0
        if w > 0:
            tier.append((c, w))
    return tuple(same), tuple(other)


def _level(recent: Sequence[float], floor: float) -> tuple[float, float, float]:
    """The recent level when no similar day is known: its mean, and its whole spread as the spread."""
    mean = sum(recent) / len(recent)
    if len(recent) == 1:
        return mean, max(abs(mean), floor, 1.0), 1.0
    var = sum((v - mean) ** 2 for v in recent) / (len(recent) - 1)
    return mean, max(math.sqrt(var), 0.25 * abs(mean), floor), 1.0


def _band(value: float, lower: float, upper: float, non_negative: bool) -> Band:
    # Rounding in the weighted means must not exclude an actual equal to every similar day's value.
    eps = 1e-9 * max(1.0, abs(value))
    lower, upper = min(lower, value - eps), max(upper, value + eps)
    if non_negative:
        value, lower, upper = max(value, 0.0), max(lower, 0.0), max(upper, 0.0)
    return Band(value, min(lower, value), max(upper, value))


SIMILAR_DAY = Forecaster("similar_day", Params())
PRICE_BLEND = Forecaster("price_blend", Params())
SAME_PERIOD_7D = Forecaster("same_period_7d", Params(lookback_days=7, half_life_days=math.inf,
                                                     same_class_weight=1.0, other_class_weight=1.0, class_tiers=False,
                                                     nowcast=False))
PERSISTENCE = Forecaster("persistence_week", Params(lookback_days=14, lags=(7, 14), nowcast=False))
SOLAR_DAY = Forecaster("similar_day", Params(non_negative=True))

# quantity -> the forecasters evaluated for it, the one the daemon uses first.
FORECASTERS: dict[str, tuple[Forecaster, ...]] = {
    NET_LOAD: (SIMILAR_DAY, PERSISTENCE),
    LOAD: (SIMILAR_DAY, PERSISTENCE),
    SOLAR: (SOLAR_DAY, Forecaster("persistence_week", Params(lookback_days=14, lags=(7, 14), nowcast=False,
                                                              non_negative=True))),
    PRICE: (PRICE_BLEND, SAME_PERIOD_7D, PERSISTENCE),
}


# The most any forecaster looks back: three weeks of calibration errors, each from four weeks of
# similar days before it (the daemon reads no more of its history than this, and loses nothing).
HISTORY_DAYS_USED = 8 * 7


def period_starts(at: datetime, horizon: int) -> list[int]:
    """The settlement periods of the horizon: the one `at` falls in, then the next ones."""
    first = int(current_sp_start(at).timestamp())
    return [first + i * SP_S for i in range(horizon)]


def forecast_site(history: History, at: datetime, horizon: int = 48,
                  choice: Mapping[str, Forecaster] | None = None, live_price: float | None = None) -> Forecast:
    """What the daemon uses: each quantity's first forecaster (or `choice`), from what is known at `at`;
    `live_price`: the imbalance price published for the period `at` falls in while it runs (Modo's live
    price): that period's price, and where the price nowcast starts."""
    starts = period_starts(at, horizon)
    values: list[dict[str, Band]] = [{} for _ in starts]
    names: dict[str, str] = {}
    notes: list[str] = []
    for quantity, candidates in FORECASTERS.items():
        forecaster = (choice or {}).get(quantity, candidates[0])
        out = forecaster.forecast(history, quantity, at, starts, live_price if quantity == PRICE else None)
        if out is None:
            if quantity in (NET_LOAD, PRICE):
                notes.append(f"{quantity}: no history; not forecast")
            continue
        bands, qnotes = out
        names[quantity] = forecaster.name
        notes.extend(qnotes)
        q = history.get(quantity)
        for i, (ts, band) in enumerate(zip(starts, bands, strict=True)):
            # A price already published for a period that has started is a fact, not a forecast.
            known = q.by_ts.get(ts) if quantity == PRICE and q is not None and ts < at.timestamp() else None
            values[i][quantity] = Band.exact(known) if known is not None else band
    periods = tuple(PeriodForecast(datetime.fromtimestamp(ts, UTC), v) for ts, v in zip(starts, values, strict=True))
    return Forecast(made_at=at, periods=periods, forecasters=names, notes=tuple(notes))
