"""The planning LP, pure: its inputs, its matrix (column-wise, as HiGHS takes it) and the plan read back
from a solution. No solver here (`solver.py` has highspy), no clock (the inputs carry `made_at`).

Per settlement period t (length h hours) the columns are

    c  charge kW       [0, charge limit]        d  discharge kW   [0, discharge limit]
    s  SoE at the end, kWh, within [soe_min, soe_max], each bound relaxed only as far as the battery at full
       power cannot get back inside it from the SoE now (a start below soe_min: charge flat out until inside)
    imp, exp  site import / export kW within the site limits (less the envelope's margin)
    sI, sE    import / export beyond the limits  (breach slacks)
    bl, bh    kWh below / above the preferred band (priced, not breaches)
    ax        kW short of an Axle commitment     (breach slack)

and the rows

    energy    s_t - s_{t-1} - eta h c + h d = 0    (s_{-1} = the SoE now; discharge efficiency 1, as the modes)
    site      imp + sI - exp - sE - c + d = net load
    band      s + bl >= band low,  s - bh <= band high  (only with a band)
    axle      charge_max: c - d + ax >= f x charge limit; discharge_max: d - c + ax >= f x discharge limit;
              avoid_import: imp + sI - ax <= (1 - f) x import limit; avoid_export likewise (f = the share of
              the period the window covers)

minimising  sum_t h [ (price + import rate) imp - (price - export rate) exp + throughput d
                      + M (sI + sE) + M_axle ax + band price (bl + bh) ]  -  terminal value x s_last.

The relaxed SoE bounds and the slacks make the LP feasible for any inputs (any start SoE, any limits); the
penalties M dominate every price (prices are clipped to `PRICE_CLIP_P_PER_KWH`), so a slack is non-zero only
where the limits cannot all be met, and each one becomes a named breach of the plan. The SoE bounds are
bounds, not penalised rows, because the envelope gives them the last word over the site limits (a plan at
soe_min with a load above the import limit breaks the import limit, as the site would) and because that
keeps the LP small (the solve time is the bench's, bench/README.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.core.clock import parse_utc

# Breach penalties, p per kW-hour. Axle is a commercial commitment: broken before a site limit.
M_SAFETY = 1e5
M_AXLE = 1e4
NV = 10  # columns per period
C, D, S, IMP, EXP, SI, SE, BL, BH, AX = range(NV)
INF = math.inf
TOL = 1e-6  # kW/kWh: a slack below this is solver noise, not a breach

AXLE_ACTIONS = ("charge_max", "discharge_max", "avoid_import", "avoid_export")
BREACH_KINDS = ("soe_below_min", "soe_above_max", "site_import_limit", "site_export_limit", "axle_window")


@dataclass(frozen=True, slots=True)
class Commitment:
    """An Axle dispatch step over part (`fraction`) of one period."""

    action: str
    fraction: float


@dataclass(frozen=True)
class PlanInputs:
    """Everything one solve depends on; hashing it names the plan (same inputs: same plan id)."""

    made_at: datetime
    starts: tuple[datetime, ...]  # UTC starts of the horizon's periods
    period_h: float
    net_load_kw: tuple[float, ...]  # forecast, + = the site would import with the battery idle
    price_p_per_kwh: tuple[float, ...]
    import_rate_p_per_kwh: tuple[float, ...]  # DUoS-style adders on import
    export_rate_p_per_kwh: tuple[float, ...]  # taken off the export price
    soe_kwh: float  # now
    charge_kw: float
    discharge_kw: float
    charge_efficiency: float
    soe_min_kwh: float
    soe_max_kwh: float
    import_kw: float
    export_kw: float
    throughput_p_per_kwh: float = 0.0
    band_low_kwh: float | None = None
    band_high_kwh: float | None = None
    band_p_per_kwh_h: float = 0.0
    terminal_p_per_kwh: float = 0.0
    commitments: tuple[Commitment | None, ...] = ()  # per period (empty: none)
    assumptions: tuple[str, ...] = ()  # what building the inputs had to assume (missing prices...)
    # The first period is what is left of the current one when re-planning inside it.
    first_period_h: float | None = None

    def hours(self, t: int) -> float:
        return self.first_period_h if t == 0 and self.first_period_h is not None else self.period_h

    @property
    def n(self) -> int:
        return len(self.starts)

    def commitment(self, t: int) -> Commitment | None:
        return self.commitments[t] if t < len(self.commitments) else None

    def as_json(self) -> dict[str, Any]:
        return {
            "made_at": self.made_at.isoformat(), "starts": [s.isoformat() for s in self.starts],
            "period_h": self.period_h, "net_load_kw": list(self.net_load_kw),
            "price_p_per_kwh": list(self.price_p_per_kwh), "import_rate_p_per_kwh": list(self.import_rate_p_per_kwh),
            "export_rate_p_per_kwh": list(self.export_rate_p_per_kwh), "soe_kwh": self.soe_kwh,
            "charge_kw": self.charge_kw, "discharge_kw": self.discharge_kw,
            "charge_efficiency": self.charge_efficiency, "soe_min_kwh": self.soe_min_kwh,
            "soe_max_kwh": self.soe_max_kwh, "import_kw": self.import_kw, "export_kw": self.export_kw,
            "throughput_p_per_kwh": self.throughput_p_per_kwh, "band_low_kwh": self.band_low_kwh,
            "band_high_kwh": self.band_high_kwh, "band_p_per_kwh_h": self.band_p_per_kwh_h,
            "terminal_p_per_kwh": self.terminal_p_per_kwh,
            "commitments": [None if c is None else [c.action, c.fraction] for c in self.commitments],
            "assumptions": list(self.assumptions), "first_period_h": self.first_period_h,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PlanInputs:
        return cls(
            made_at=parse_utc(d["made_at"]), starts=tuple(parse_utc(s) for s in d["starts"]),
            period_h=float(d["period_h"]), net_load_kw=tuple(map(float, d["net_load_kw"])),
            price_p_per_kwh=tuple(map(float, d["price_p_per_kwh"])),
            import_rate_p_per_kwh=tuple(map(float, d["import_rate_p_per_kwh"])),
            export_rate_p_per_kwh=tuple(map(float, d["export_rate_p_per_kwh"])), soe_kwh=float(d["soe_kwh"]),
            charge_kw=float(d["charge_kw"]), discharge_kw=float(d["discharge_kw"]),
            charge_efficiency=float(d["charge_efficiency"]), soe_min_kwh=float(d["soe_min_kwh"]),
            soe_max_kwh=float(d["soe_max_kwh"]), import_kw=float(d["import_kw"]), export_kw=float(d["export_kw"]),
            throughput_p_per_kwh=float(d["throughput_p_per_kwh"]), band_low_kwh=d["band_low_kwh"],
            band_high_kwh=d["band_high_kwh"], band_p_per_kwh_h=float(d["band_p_per_kwh_h"]),
            terminal_p_per_kwh=float(d["terminal_p_per_kwh"]),
            commitments=tuple(None if c is None else Commitment(str(c[0]), float(c[1])) for c in d["commitments"]),
            assumptions=tuple(d["assumptions"]), first_period_h=d.get("first_period_h"),
        )

    def digest(self) -> str:
        """The inputs' hash: the plan id and the cloud's `inputs_hash`."""
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()[:16]

    def check(self) -> None:
        """Refuse inputs the LP cannot mean anything with (the builder in inputs.py never makes them)."""
        n = self.n
        series = (self.net_load_kw, self.price_p_per_kwh, self.import_rate_p_per_kwh, self.export_rate_p_per_kwh)
        if n == 0 or any(len(x) != n for x in series) or len(self.commitments) not in (0, n):
            raise ValueError("plan inputs: every series needs one value per period")
        scalars = (self.period_h, self.soe_kwh, self.charge_kw, self.discharge_kw, self.charge_efficiency,
                   self.soe_min_kwh, self.soe_max_kwh, self.import_kw, self.export_kw, self.throughput_p_per_kwh,
                   self.band_p_per_kwh_h, self.terminal_p_per_kwh)
        if not all(math.isfinite(x) for xs in series for x in xs) or not all(math.isfinite(x) for x in scalars):
            raise ValueError("plan inputs must be finite")
        if self.first_period_h is not None and not 0 < self.first_period_h <= self.period_h:
            raise ValueError("plan inputs: the first period must be a positive part of a period")
        if self.period_h <= 0 or not 0 < self.charge_efficiency <= 1 or min(
                self.charge_kw, self.discharge_kw, self.import_kw, self.export_kw) < 0:
            raise ValueError("plan inputs: period, efficiency and limits must be positive")


@dataclass(frozen=True, slots=True)
class Lp:
    """A linear programme in HiGHS's column-wise form: minimise cost.x, row_lower <= A x <= row_upper."""

    cost: list[float]
    col_lower: list[float]
    col_upper: list[float]
    row_lower: list[float]
    row_upper: list[float]
    start: list[int]
    index: list[int]
    value: list[float]
    offset: float = 0.0

    @property
    def num_col(self) -> int:
        return len(self.cost)

    @property
    def num_row(self) -> int:
        return len(self.row_lower)


def build_lp(x: PlanInputs) -> Lp:
    """The LP of `x` (module docstring). Rows per period: energy, site, then band low/high (with a band),
    then the Axle row (with a commitment). Written straight into column-wise arrays, in one pass: the
    build is a third of the solve's time otherwise (bench/README.md)."""
    x.check()
    n, eta = x.n, x.charge_efficiency
    band = x.band_low_kwh is not None or x.band_high_kwh is not None
    band_lo = x.soe_min_kwh if x.band_low_kwh is None else x.band_low_kwh
    band_hi = x.soe_max_kwh if x.band_high_kwh is None else x.band_high_kwh
    band_price = x.band_p_per_kwh_h if band else 0.0
    band_rows = band_price > 0
    acts = [c if c is not None and c.action in AXLE_ACTIONS else None for c in (x.commitment(t) for t in range(n))]
    first_row = [0] * (n + 1)
    for t in range(n):
        first_row[t + 1] = first_row[t] + 2 + 2 * band_rows + (acts[t] is not None)
    row_lo = [0.0] * first_row[n]
    row_hi = [0.0] * first_row[n]
    cost: list[float] = []
    col_lo: list[float] = []
    col_hi: list[float] = []
    start: list[int] = [0]
    index: list[int] = []
    value: list[float] = []

    def col(c: float, lo: float, hi: float, *entries: tuple[int, float]) -> None:
        cost.append(c)
        col_lo.append(lo)
        col_hi.append(hi)
        for r, v in entries:
            index.append(r)
            value.append(v)
        start.append(len(index))

    highest = lowest = x.soe_kwh  # what full charge / full discharge from now reach by each period's end
    for t in range(n):
        h = x.hours(t)
        e, g = first_row[t], first_row[t] + 1  # energy and site rows
        bl, bh = g + 1, g + 2
        a = first_row[t + 1] - 1  # the Axle row, if any
        act = acts[t]
        kind = act.action if act is not None else ""
        row_lo[e] = row_hi[e] = x.soe_kwh if t == 0 else 0.0
        row_lo[g] = row_hi[g] = x.net_load_kw[t]
        if band_rows:
            row_lo[bl], row_hi[bl] = band_lo, INF
            row_lo[bh], row_hi[bh] = -INF, band_hi
        if act is not None:
            f = act.fraction
            row_lo[a], row_hi[a] = {
                "charge_max": (f * x.charge_kw, INF), "discharge_max": (f * x.discharge_kw, INF),
                "avoid_import": (-INF, (1 - f) * x.import_kw), "avoid_export": (-INF, (1 - f) * x.export_kw)}[kind]
        highest += eta * h * x.charge_kw
        lowest -= h * x.discharge_kw
        price = x.price_p_per_kwh[t]
        imp_cost = h * (price + x.import_rate_p_per_kwh[t])
        exp_cost = -h * (price - x.export_rate_p_per_kwh[t])
        ax_c = {"charge_max": 1.0, "discharge_max": -1.0}.get(kind)
        col(0.0, 0.0, x.charge_kw, (e, -eta * h), (g, -1.0), *(((a, ax_c),) if ax_c is not None else ()))
        col(h * x.throughput_p_per_kwh, 0.0, x.discharge_kw, (e, h), (g, 1.0),
            *(((a, -ax_c),) if ax_c is not None else ()))
        s_entries = [(e, 1.0)] + ([(first_row[t + 1], -1.0)] if t + 1 < n else [])
        if band_rows:
            s_entries += [(bl, 1.0), (bh, 1.0)]
        s_cost = -x.terminal_p_per_kwh if t == n - 1 else 0.0
        col(s_cost, min(x.soe_min_kwh, highest), max(x.soe_max_kwh, lowest), *s_entries)
        on_imp = ((a, 1.0),) if kind == "avoid_import" else ()
        on_exp = ((a, 1.0),) if kind == "avoid_export" else ()
        col(imp_cost, 0.0, x.import_kw, (g, 1.0), *on_imp)
        col(exp_cost, 0.0, x.export_kw, (g, -1.0), *on_exp)
        # The slacks carry the energy's price too, so a breach is never also a bargain.
        col(imp_cost + h * M_SAFETY, 0.0, INF, (g, 1.0), *on_imp)
        col(exp_cost + h * M_SAFETY, 0.0, INF, (g, -1.0), *on_exp)
        col(h * band_price, 0.0, INF if band_rows else 0.0, *(((bl, 1.0),) if band_rows else ()))
        col(h * band_price, 0.0, INF if band_rows else 0.0, *(((bh, -1.0),) if band_rows else ()))
        if act is None:
            col(h * M_AXLE, 0.0, 0.0)
        else:
            col(h * M_AXLE, 0.0, INF, (a, 1.0 if kind in ("charge_max", "discharge_max") else -1.0))
    return Lp(cost, col_lo, col_hi, row_lo, row_hi, start, index, value)


@dataclass(frozen=True, slots=True)
class Breach:
    kind: str  # one of BREACH_KINDS
    period: int
    amount: float  # kWh for the SoE, kW for the site limits and Axle

    def describe(self, starts: Sequence[datetime]) -> str:
        unit = "kWh" if self.kind.startswith("soe") else "kW"
        return f"{self.kind} at {starts[self.period].isoformat()}: {self.amount:.1f} {unit}"


@dataclass(frozen=True, slots=True)
class PlanPeriod:
    start: datetime
    battery_kw: float  # + = discharge
    soe_end_kwh: float
    price_p_per_kwh: float
    net_load_kw: float
    charge_kw: float
    discharge_kw: float

    @property
    def site_kw(self) -> float:
        return self.net_load_kw - self.battery_kw

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "battery_kw": round(self.battery_kw, 6),
                "soe_end_kwh": round(self.soe_end_kwh, 6), "price_p_per_kwh": self.price_p_per_kwh,
                "net_load_kw": self.net_load_kw, "site_kw": round(self.site_kw, 6)}


@dataclass(frozen=True)
class Plan:
    """A solved plan. `status`: "optimal" (no breach), "breaches" (named in `breaches`)."""

    plan_id: str
    created_at: datetime
    status: str
    periods: tuple[PlanPeriod, ...]
    breaches: tuple[Breach, ...]
    expected_value_gbp: float
    period_h: float
    notes: tuple[str, ...] = ()
    solve_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def breach_lines(self) -> list[str]:
        return [b.describe([p.start for p in self.periods]) for b in self.breaches]

    def target_at(self, now: datetime) -> tuple[datetime, float] | None:
        """(end of the period covering `now`, the planned SoE then), or None outside the plan."""
        span = timedelta(hours=self.period_h)
        for p in self.periods:
            if p.start <= now < p.start + span:
                return p.start + span, p.soe_end_kwh
        return None

    def as_json(self) -> dict[str, Any]:
        """The `flux-edge plan --json` contract (spec README), extended with notes and the solve time."""
        return {"plan_id": self.plan_id, "created_at": self.created_at.isoformat(), "status": self.status,
                "breaches": self.breach_lines(), "expected_value_gbp": round(self.expected_value_gbp, 4),
                "periods": [p.as_json() for p in self.periods], "notes": list(self.notes),
                "period_h": self.period_h, "solve_ms": round(self.solve_ms, 3),
                "breach_items": [[b.kind, b.period, b.amount] for b in self.breaches]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        periods = tuple(PlanPeriod(parse_utc(p["start"]), float(p["battery_kw"]), float(p["soe_end_kwh"]),
                                   float(p["price_p_per_kwh"]), float(p["net_load_kw"]),
                                   max(-float(p["battery_kw"]), 0.0), max(float(p["battery_kw"]), 0.0))
                        for p in d["periods"])
        return cls(str(d["plan_id"]), parse_utc(d["created_at"]), str(d["status"]), periods,
                   tuple(Breach(str(k), int(t), float(a)) for k, t, a in d.get("breach_items", [])),
                   float(d["expected_value_gbp"]), float(d.get("period_h", 0.5)), tuple(d.get("notes", [])),
                   float(d.get("solve_ms", 0.0)))


def settled_cost_p(kwh: float, price: float, import_rate: float, export_rate: float) -> float:
    """What `kwh` of site energy (+ import) costs, in pence: price + import rate on import, price - export
    rate on export (the period settled net)."""
    return kwh * (price + import_rate if kwh > 0 else price - export_rate)


def energy_cost_p(x: PlanInputs, t: int, site_kw: float) -> float:
    """What the site's energy costs in period t at `site_kw` (+ import), in pence."""
    return settled_cost_p(site_kw * x.hours(t), x.price_p_per_kwh[t], x.import_rate_p_per_kwh[t],
                          x.export_rate_p_per_kwh[t])


def read_plan(x: PlanInputs, col_value: Sequence[float], solve_ms: float = 0.0) -> Plan:
    """The plan in a solution of `build_lp(x)`: per-period power and SoE, the breaches, the value expected."""
    n = x.n
    periods: list[PlanPeriod] = []
    breaches: list[Breach] = []
    notes = list(x.assumptions)
    value_p = 0.0
    both = 0
    for t in range(n):
        b = t * NV
        c, d = max(col_value[b + C], 0.0), max(col_value[b + D], 0.0)
        if min(c, d) > TOL:
            both += 1
        periods.append(PlanPeriod(x.starts[t], d - c, col_value[b + S], x.price_p_per_kwh[t], x.net_load_kw[t], c, d))
        soe = col_value[b + S]
        for kind, amount in (("soe_below_min", x.soe_min_kwh - soe), ("soe_above_max", soe - x.soe_max_kwh),
                             ("site_import_limit", col_value[b + SI]), ("site_export_limit", col_value[b + SE]),
                             ("axle_window", col_value[b + AX])):
            if amount > TOL:
                breaches.append(Breach(kind, t, amount))
        site = col_value[b + IMP] + col_value[b + SI] - col_value[b + EXP] - col_value[b + SE]
        value_p += (energy_cost_p(x, t, x.net_load_kw[t]) - energy_cost_p(x, t, site)
                    - x.hours(t) * d * x.throughput_p_per_kwh)
    value_p += (col_value[(n - 1) * NV + S] - x.soe_kwh) * x.terminal_p_per_kwh
    if both:
        # An LP can burn energy by charging and discharging at once where prices are negative enough;
        # the battery cannot: it runs the net power, and the SoE it reaches is higher than planned.
        notes.append(f"charge and discharge in the same period in {both} period(s): the battery runs the net power")
    breaches.sort(key=lambda br: (BREACH_KINDS.index(br.kind), br.period))
    return Plan(x.digest(), x.made_at, "breaches" if breaches else "optimal", tuple(periods), tuple(breaches),
                value_p / 100.0, x.period_h, tuple(notes), solve_ms)
