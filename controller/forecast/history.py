"""The local history: one row per settlement period, on the box, so forecasts need no cloud.

`HistoryStore` is a SQLite file (`{buffer.path}/history.sqlite3`) with the outbox's durability: WAL,
`synchronous=FULL` (a committed period survives a power cut, not only a killed process),
incremental auto-vacuum so pruning shrinks the file. Bounded by time: periods older than
`keep_days` (default 10 weeks, so at least 8 are always there) before the newest are deleted, oldest
first, and the deletions counted (`stats()["dropped"]`). Columns: the spec's history CSV columns, plus
what the controller did (mean site and battery power, mean battery target, the modes in charge) and
where the row came from (`readings` or `import`).

`PeriodAccumulator` (pure) turns the readings of one settlement period into a row: the site meter's
`power_total_active` (kW, + import) and its energy registers `energy_imported_active` /
`energy_exported_active` (kWh counters), the battery's `soe_kwh`, the battery meter's
`power_total_active` (+ = discharge), a solar meter's where the site has one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from controller.core.logs import get_logger
from controller.core.reading import Reading
from controller.core.sqlite import immediate
from controller.engine.settlement import SP_S
from controller.forecast.rows import VALUE_COLUMNS, PeriodRow

log = get_logger("controller.forecast.history")

HISTORY_FILE = "history.sqlite3"
EXTRA_COLUMNS = ("site_power_mean_kw", "battery_power_mean_kw", "target_kw_mean", "modes", "source")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS periods (
    period_start INTEGER PRIMARY KEY,  -- epoch seconds (UTC) of the half-hour's start
    {", ".join(f"{c} REAL" for c in VALUE_COLUMNS)},
    site_power_mean_kw REAL, battery_power_mean_kw REAL, target_kw_mean REAL,
    modes TEXT, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def history_path(directory: str | Path) -> Path:
    return Path(directory) / HISTORY_FILE


def read_rows(directory: str | Path, since: datetime, until: datetime) -> list[PeriodRow]:
    """The periods of [since, until) in the history file, read over a read-only connection of its own
    (the forecaster may hold the file open); none when there is no file, or it cannot be read."""
    path = history_path(directory)
    if not path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:
            return _select_rows(conn, int(since.timestamp()), int(until.timestamp()))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("history_unreadable", path=str(path), error=str(exc))
        return []


def _select_rows(conn: sqlite3.Connection, lo: int, hi: int) -> list[PeriodRow]:
    """The periods starting in [lo, hi) (epoch seconds), in time order."""
    data = conn.execute(f"SELECT period_start, {', '.join(VALUE_COLUMNS)} FROM periods "
                        "WHERE period_start >= ? AND period_start < ? ORDER BY period_start", (lo, hi)).fetchall()
    return [PeriodRow(datetime.fromtimestamp(r[0], UTC), *r[1:]) for r in data]


@dataclass(frozen=True, slots=True)
class ControllerPeriod:
    """What the controller did in a period (the extra columns)."""

    site_power_mean_kw: float | None = None
    battery_power_mean_kw: float | None = None
    target_kw_mean: float | None = None
    modes: str | None = None


class HistoryStore:
    """Synchronous and thread-safe (one connection, one lock), like the outbox."""

    def __init__(self, path: Path, conn: sqlite3.Connection, keep_days: float) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        self.keep_s = int(keep_days * 86400)

    @classmethod
    def open(cls, directory: str | Path, *, keep_days: float = 70.0, synchronous: str = "full") -> HistoryStore:
        if keep_days < 56:
            raise ValueError("the history keeps at least 8 weeks (keep_days >= 56)")
        path = history_path(directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return cls(path, conn, keep_days)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


    def put(self, rows: Iterable[tuple[PeriodRow, ControllerPeriod | None]], source: str = "readings") -> int:
        """Insert or replace periods in one transaction, then drop what is now too old. Returns rows written."""
        cols = ("period_start", *VALUE_COLUMNS, *EXTRA_COLUMNS)
        sql = f"INSERT OR REPLACE INTO periods ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        n = 0
        with immediate(self._conn, self._lock) as c:
            for row, did in rows:
                d = did or ControllerPeriod()
                c.execute(sql, (int(row.period_start.timestamp()), *(getattr(row, k) for k in VALUE_COLUMNS),
                                d.site_power_mean_kw, d.battery_power_mean_kw, d.target_kw_mean, d.modes, source))
                n += 1
            newest = c.execute("SELECT max(period_start) FROM periods").fetchone()[0]
            if newest is not None:
                cur = c.execute("DELETE FROM periods WHERE period_start < ?", (newest - self.keep_s,))
                if cur.rowcount:
                    c.execute("INSERT INTO meta (key, value) VALUES ('dropped', ?) ON CONFLICT (key) "
                              "DO UPDATE SET value = value + excluded.value", (cur.rowcount,))
                    log.info("history_dropped_oldest", rows=cur.rowcount)
        with self._lock:
            self._conn.executescript("PRAGMA incremental_vacuum;")
        return n

    def rows(self, since: datetime | None = None) -> list[PeriodRow]:
        lo = int(since.timestamp()) if since is not None else -(1 << 62)
        with self._lock:
            return _select_rows(self._conn, lo, 1 << 62)

    def periods(self, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
        """Every column of the periods starting in [since, until) as dicts (`period_start` a UTC datetime),
        the controller's extra columns included: the local page's chart of today."""
        hi = int(until.timestamp()) if until is not None else 1 << 62
        cols = (*VALUE_COLUMNS, *EXTRA_COLUMNS)
        with self._lock:
            data = self._conn.execute(f"SELECT period_start, {', '.join(cols)} FROM periods "
                                      "WHERE period_start >= ? AND period_start < ? ORDER BY period_start",
                                      (int(since.timestamp()), hi)).fetchall()
        return [{"period_start": datetime.fromtimestamp(r[0], UTC), **dict(zip(cols, r[1:], strict=True))}
                for r in data]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            n, lo, hi = self._conn.execute(
                "SELECT count(*), min(period_start), max(period_start) FROM periods").fetchone()
            dropped = self._conn.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return {"periods": n, "oldest": _iso(lo), "newest": _iso(hi), "dropped": dropped[0] if dropped else 0,
                "bytes": size}


def _iso(t: int | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


@dataclass
class _Meter:
    power_sum: float = 0.0
    pos_sum: float = 0.0
    neg_sum: float = 0.0
    samples: int = 0
    counters: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (first, last)

    def add(self, r: Reading, counter_names: tuple[str, ...]) -> None:
        p = r.number("power_total_active")
        if p is not None:
            self.power_sum += p
            self.pos_sum += max(p, 0.0)
            self.neg_sum += max(-p, 0.0)
            self.samples += 1
        for name in counter_names:
            v = r.number(name)
            if v is not None:
                first = self.counters.get(name, (v, v))[0]
                self.counters[name] = (first, v)

    def mean(self) -> float | None:
        return self.power_sum / self.samples if self.samples else None

    def energy(self, counter: str, positive: bool, span_fraction: float) -> float | None:
        """kWh of the period: from the counter where it agrees with the power samples, else from them.
        A counter that went backwards or leapt (a meter replaced, a register misread) is not trusted."""
        if not self.samples:
            return None
        from_power = (self.pos_sum if positive else self.neg_sum) / self.samples * SP_S / 3600
        first_last = self.counters.get(counter)
        if first_last is not None and span_fraction > 0:
            delta = (first_last[1] - first_last[0]) / span_fraction
            if 0 <= delta <= 1.5 * from_power + 2.0 and delta >= 0.5 * from_power - 2.0:
                return delta
        return from_power


class PeriodAccumulator:
    """The readings and decisions of one settlement period -> its history row. Pure: fed by the caller."""

    def __init__(self, start: datetime, *, site_meter: UUID, battery: UUID | None = None,
                 battery_meter: UUID | None = None, solar_meter: UUID | None = None) -> None:
        self.start = start
        self.ids = {"site": site_meter, "battery": battery, "battery_meter": battery_meter, "solar": solar_meter}
        self.meters = {"site": _Meter(), "battery_meter": _Meter(), "solar": _Meter()}
        self.first_t: dict[str, datetime] = {}
        self.last_t: dict[str, datetime] = {}
        self.soe: float | None = None
        self.targets: list[float] = []
        self.modes: list[str] = []
        self.price: float | None = None
        self.volume: float | None = None

    def feed(self, r: Reading) -> None:
        if not self.start.timestamp() <= r.time.timestamp() < self.start.timestamp() + SP_S:
            return
        for role, device_id in self.ids.items():
            if device_id != r.device_id:
                continue
            self.first_t.setdefault(role, r.time)
            self.last_t[role] = r.time
            if role == "battery":
                soe = r.number("soe_kwh")
                self.soe = soe if soe is not None else self.soe
            else:
                self.meters[role].add(r, ("energy_imported_active", "energy_exported_active"))

    def note_decision(self, target_kw: float, modes: Iterable[str]) -> None:
        self.targets.append(target_kw)
        for m in modes:
            if m not in self.modes:
                self.modes.append(m)

    def note_market(self, price_p_per_kwh: float | None, volume_mwh: float | None) -> None:
        self.price = price_p_per_kwh if price_p_per_kwh is not None else self.price
        self.volume = volume_mwh if volume_mwh is not None else self.volume

    def _span(self, role: str) -> float:
        # Counters read from the first to the last reading cover this share of the half-hour.
        if role not in self.first_t:
            return 0.0
        return (self.last_t[role] - self.first_t[role]).total_seconds() / SP_S

    def close(self) -> tuple[PeriodRow, ControllerPeriod]:
        site, bm, solar = self.meters["site"], self.meters["battery_meter"], self.meters["solar"]
        span = self._span("site")
        bspan = self._span("battery_meter")
        has_bm = self.ids["battery_meter"] is not None and bm.samples > 0
        row = PeriodRow(
            self.start,
            site_import_kwh=site.energy("energy_imported_active", True, span),
            site_export_kwh=site.energy("energy_exported_active", False, span),
            # The battery meter reads + for discharge: its import register counts the discharge.
            battery_charge_kwh=bm.energy("energy_exported_active", False, bspan) if has_bm else None,
            battery_discharge_kwh=bm.energy("energy_imported_active", True, bspan) if has_bm else None,
            soe_end_kwh=self.soe,
            solar_kwh=(abs(solar.power_sum) / solar.samples * SP_S / 3600) if solar.samples else None,
            imbalance_price_p_per_kwh=self.price, imbalance_volume_mwh=self.volume)
        did = ControllerPeriod(site.mean(), bm.mean() if has_bm else None,
                               sum(self.targets) / len(self.targets) if self.targets else None,
                               ",".join(self.modes) or None)
        return row, did
