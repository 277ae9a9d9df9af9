"""The durable outbox: every cloud row is committed here before anything else happens to it.

One SQLite database in WAL mode per site. Rows are kept in insertion order (`seq`, never reused);
each sink has its own cursor, the highest `seq` it has delivered, so several sinks advance
independently. A row a sink has delivered stays for `retention` (by reading time) so that rows the
cloud later loses can be resent, then it is pruned. The file is bounded: when it is full, delivered
rows go first, and only when nothing but pending rows is left are the oldest pending rows dropped —
and that is counted and reported, never silent.

The class is synchronous and thread-safe (one connection, one lock): the async components call it
through `asyncio.to_thread`, so an fsync never stalls the event loop.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from controller.core.clock import utc
from controller.core.logs import get_logger
from uploader.tables import CloudRow

log = get_logger("outbox")

FILE_NAME = "outbox.sqlite3"
SynchronousMode = Literal["full", "normal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a seq is never reused, cursors stay valid
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    t INTEGER NOT NULL,                     -- reading time, microseconds since the epoch (UTC)
    body TEXT NOT NULL,                     -- the cloud row as JSON (every column of the table)
    UNIQUE (tbl, key, t)
);
CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS quarantine (
    sink TEXT NOT NULL, seq INTEGER NOT NULL, tbl TEXT NOT NULL, key TEXT NOT NULL, t INTEGER NOT NULL,
    body TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (sink, seq)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OutboxCorrupt(Exception):
    """The database file is damaged; the caller moves it aside and starts a fresh one."""


@dataclass(frozen=True, slots=True)
class StoredRow:
    seq: int
    table: str
    key: str
    time: datetime
    body: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int
    pruned_uploaded: int  # delivered rows removed early to stay within the size bound
    dropped_pending: int  # undelivered rows removed because the bound was reached (alert!)


@dataclass(frozen=True, slots=True)
class SinkStats:
    pending: int
    uploaded: int
    oldest_pending: str | None
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"pending": self.pending, "uploaded": self.uploaded, "oldest_pending": self.oldest_pending,
                "bytes": self.bytes}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(t: datetime) -> int:
    return (utc(t) - _EPOCH) // _MICRO


def from_micros(us: int) -> datetime:
    return _EPOCH + us * _MICRO


def outbox_path(directory: str | Path) -> Path:
    return Path(directory) / FILE_NAME


class Outbox:
    def __init__(self, path: Path, conn: sqlite3.Connection, *, max_bytes: int, retention_s: float) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self.sinks: tuple[str, ...] = ()
        self._page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])

    # --- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | Path, *, synchronous: SynchronousMode = "full", max_bytes: int = 2 * 1024**3,
             retention_s: float = 14 * 86400.0) -> Outbox:
        """Open (creating directories and schema). Raises OutboxCorrupt if the file is not a usable database."""
        path = outbox_path(directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            # auto_vacuum must be chosen before the first table exists; it lets pruning shrink the file.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxCorrupt(f"cannot switch to WAL (journal_mode={mode})")
            # FULL: the WAL is fsynced at every commit, so a committed batch survives a power cut too.
            conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute(f"PRAGMA journal_size_limit={max(1 << 20, max_bytes // 8)}")
            conn.executescript(_SCHEMA)
            conn.execute("SELECT max(seq) FROM rows").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise OutboxCorrupt(str(exc)) from exc
        return cls(path, conn, max_bytes=max_bytes, retention_s=retention_s)

    @classmethod
    def open_or_replace(cls, directory: str | Path, *, synchronous: SynchronousMode = "full",
                        max_bytes: int = 2 * 1024**3, retention_s: float = 14 * 86400.0,
                        now: datetime | None = None) -> tuple[Outbox, Path | None]:
        """Open; a corrupt file is moved aside (returned as the second item) and a fresh one started."""
        try:
            return cls.open(directory, synchronous=synchronous, max_bytes=max_bytes, retention_s=retention_s), None
        except OutboxCorrupt as exc:
            aside = move_aside(outbox_path(directory), now or datetime.now(UTC))
            log.error("outbox_corrupt_moved_aside", path=str(aside), error=str(exc))
            return cls.open(directory, synchronous=synchronous, max_bytes=max_bytes, retention_s=retention_s), aside

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if _is_corruption(exc):
                    raise OutboxCorrupt(str(exc)) from exc
                raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if _is_corruption(exc):
                    raise OutboxCorrupt(str(exc)) from exc
                raise

    # --- sinks ----------------------------------------------------------------------------------

    def register_sinks(self, names: Iterable[str]) -> None:
        """The sinks rows are kept for. A new sink starts from the oldest row held; a removed one stops
        holding rows back (its cursor is forgotten)."""
        names = tuple(names)
        with self._tx() as c:
            for n in names:
                c.execute("INSERT OR IGNORE INTO cursors (sink, seq) VALUES (?, 0)", (n,))
            if names:
                c.execute(f"DELETE FROM cursors WHERE sink NOT IN ({','.join('?' * len(names))})", names)
            else:
                c.execute("DELETE FROM cursors")
        self.sinks = names

    def _min_cursor(self, c: sqlite3.Connection) -> int | None:
        """The highest seq every sink has delivered. With no sink at all nothing waits for delivery:
        every row counts as delivered (kept for retention, then pruned; never alerted as dropped)."""
        row = c.execute("SELECT min(seq), count(*) FROM cursors").fetchone()
        if row[1]:
            return int(row[0])
        top = c.execute("SELECT max(seq) FROM rows").fetchone()[0]
        return int(top) if top is not None else None

    # --- writing --------------------------------------------------------------------------------

    def add(self, rows: Iterable[CloudRow]) -> WriteResult:
        """Commit `rows` in one transaction (duplicates of a held row are ignored), then keep the bound."""
        params = [(r.table, r.key, to_micros(r.time), r.body()) for r in rows]
        if not params:
            return WriteResult(0, 0, 0, 0)
        # Make room first, so the file stays within the bound even while this batch goes in.
        incoming = sum(len(p[3]) + len(p[1]) + len(p[0]) + 40 for p in params) * 2
        pruned, dropped = self.enforce_bound(incoming) if incoming < self.max_bytes // 2 else (0, 0)
        with self._tx() as c:
            before = c.total_changes
            c.executemany("INSERT OR IGNORE INTO rows (tbl, key, t, body) VALUES (?, ?, ?, ?)", params)
            inserted = c.total_changes - before
        pruned_after, dropped_after = self.enforce_bound()
        return WriteResult(inserted, len(params) - inserted, pruned + pruned_after, dropped + dropped_after)

    def used_bytes(self) -> int:
        with self._lock:
            return self._used_bytes()

    def _used_bytes(self) -> int:
        pages = int(self._conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    def file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(str(self.path) + suffix)
        return total

    def enforce_bound(self, incoming: int = 0) -> tuple[int, int]:
        """Keep the database within `max_bytes`: delivered rows go first, then (counted) the oldest pending.

        The target leaves an eighth of the bound for the WAL, which is truncated at checkpoints.
        Returns (delivered rows pruned, pending rows dropped).
        """
        target = int(self.max_bytes * 0.85) - incoming
        pruned = dropped = 0
        wal = Path(str(self.path) + "-wal")
        with contextlib.suppress(OSError):
            if wal.stat().st_size > self.max_bytes // 8:
                self._checkpoint()
        with self._lock:
            if self._used_bytes() <= target:
                return 0, 0
        for _ in range(8):
            with self._tx() as c:
                used = self._used_bytes()
                if used <= target:
                    break
                n = int(c.execute("SELECT count(*) FROM rows").fetchone()[0])
                if n == 0:
                    break
                excess_rows = max(1, math.ceil((used - target * 0.9) / max(1.0, used / n)))
                floor = self._min_cursor(c)
                if floor:
                    cur = c.execute("DELETE FROM rows WHERE seq IN (SELECT seq FROM rows WHERE seq <= ? "
                                    "ORDER BY seq LIMIT ?)", (floor, excess_rows))
                    pruned += cur.rowcount
                    excess_rows -= cur.rowcount
                if excess_rows > 0:
                    cur = c.execute("DELETE FROM rows WHERE seq IN (SELECT seq FROM rows ORDER BY seq LIMIT ?)",
                                    (excess_rows,))
                    dropped += cur.rowcount
                    if cur.rowcount:
                        c.execute("INSERT INTO counters (name, value) VALUES ('dropped_pending', ?) "
                                  "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                                  (cur.rowcount,))
            self._compact()
        if dropped:
            log.error("outbox_full_dropped_pending", rows=dropped, max_bytes=self.max_bytes)
        if pruned:
            log.warning("outbox_full_pruned_uploaded", rows=pruned, max_bytes=self.max_bytes)
        return pruned, dropped

    def _compact(self) -> None:
        with self._lock:
            # executescript steps the pragma to completion (execute() would free a single page).
            self._conn.executescript("PRAGMA incremental_vacuum;")
        self._checkpoint()

    def _checkpoint(self) -> None:
        # TRUNCATE gives the WAL's space back; a reader in the way only delays that to the next commit.
        with self._lock, contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def prune(self, now: datetime) -> int:
        """Remove rows every sink has delivered whose reading time is older than the retention."""
        cutoff = to_micros(now) - int(self.retention_s * 1_000_000)
        with self._tx() as c:
            floor = self._min_cursor(c)
            if not floor:
                return 0
            n = c.execute("DELETE FROM rows WHERE seq <= ? AND t < ?", (floor, cutoff)).rowcount
        if n:
            self._compact()
            log.info("outbox_pruned", rows=n)
        return n

    # --- delivering -----------------------------------------------------------------------------

    def cursor(self, sink: str) -> int:
        rows = self._read("SELECT seq FROM cursors WHERE sink = ?", (sink,))
        return int(rows[0][0]) if rows else 0

    def pending(self, sink: str, limit: int) -> list[StoredRow]:
        """The next `limit` rows `sink` has not delivered, oldest first."""
        rows = self._read("SELECT seq, tbl, key, t, body FROM rows WHERE seq > "
                          "(SELECT coalesce(max(seq), 0) FROM cursors WHERE sink = ?) ORDER BY seq LIMIT ?",
                          (sink, limit))
        return [StoredRow(s, tb, k, from_micros(t), b) for s, tb, k, t, b in rows]

    def ack(self, sink: str, upto_seq: int) -> None:
        """`sink` has delivered every row up to `upto_seq` (the cursor never moves back)."""
        with self._tx() as c:
            c.execute("INSERT INTO cursors (sink, seq) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE "
                      "SET seq = max(seq, excluded.seq)", (sink, upto_seq))

    def quarantine(self, sink: str, row: StoredRow, reason: str) -> None:
        """Keep a row the cloud rejects on its own aside (with why), so the rest of its batch can go."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO quarantine (sink, seq, tbl, key, t, body, reason) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (sink, row.seq, row.table, row.key, to_micros(row.time), row.body, reason[:500]))

    def quarantined(self, sink: str) -> list[tuple[StoredRow, str]]:
        rows = self._read("SELECT seq, tbl, key, t, body, reason FROM quarantine WHERE sink = ? ORDER BY seq",
                          (sink,))
        return [(StoredRow(s, tb, k, from_micros(t), b), r) for s, tb, k, t, b, r in rows]

    # --- gap recovery ---------------------------------------------------------------------------

    def keys(self, table: str, start: datetime, end: datetime) -> list[str]:
        rows = self._read("SELECT DISTINCT key FROM rows WHERE tbl = ? AND t >= ? AND t < ?",
                          (table, to_micros(start), to_micros(end)))
        return [r[0] for r in rows]

    def rows_between(self, table: str, key: str, start: datetime, end: datetime) -> list[StoredRow]:
        """Rows held for one key in [start, end), by reading time."""
        rows = self._read("SELECT seq, tbl, key, t, body FROM rows WHERE tbl = ? AND key = ? AND t >= ? AND t < ? "
                          "ORDER BY t", (table, key, to_micros(start), to_micros(end)))
        return [StoredRow(s, tb, k, from_micros(t), b) for s, tb, k, t, b in rows]

    # --- stats ----------------------------------------------------------------------------------

    def counter(self, name: str) -> int:
        rows = self._read("SELECT value FROM counters WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def sink_stats(self, sink: str | None) -> SinkStats:
        cursor = self.cursor(sink) if sink is not None else 0
        pending, oldest = self._read("SELECT count(*), min(t) FROM rows WHERE seq > ?", (cursor,))[0]
        uploaded = self._read("SELECT count(*) FROM rows WHERE seq <= ?", (cursor,))[0][0]
        return SinkStats(int(pending), int(uploaded), from_micros(oldest).isoformat() if oldest is not None else None,
                         self.file_bytes())

    def stats(self) -> dict[str, Any]:
        """The `flux-edge outbox stats` answer: flat for one sink (or none), per sink for several."""
        sinks = [r[0] for r in self._read("SELECT sink FROM cursors ORDER BY sink")]
        if len(sinks) <= 1:
            out = self.sink_stats(sinks[0] if sinks else None).as_dict()
        else:
            out = {"sinks": {s: self.sink_stats(s).as_dict() for s in sinks}, "bytes": self.file_bytes()}
        out["dropped_pending"] = self.counter("dropped_pending")
        return out


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return False  # locked, busy, disk I/O: not the file's fault, retried by the caller's supervisor
    text = str(exc).lower()
    return type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text


def move_aside(path: Path, now: datetime) -> Path:
    stamp = utc(now).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(aside) + suffix))
    return aside
