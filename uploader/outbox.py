"""The durable outbox: every cloud row is committed here before anything else happens to it.

One SQLite database in WAL mode per site. Rows are kept in insertion order (`seq`, never reused);
each sink has its own cursor, the highest `seq` it has delivered, so several sinks advance
independently. A row a sink has delivered stays for `retention` (by reading time) so that rows the
cloud later loses can be resent, then it is pruned. The file is bounded: when it is full, delivered
rows go first, and only when nothing but pending rows is left are the oldest pending rows dropped —
and that is counted and reported, never silent.

Bodies are stored compressed (raw deflate with a preset dictionary per table, the dictionary kept in
the file itself, so every row stays decodable whatever later code does): the cloud row is complete
and byte-for-byte the same JSON when it is read back, at a fifth of the bytes. Rows written by
earlier versions (plain JSON text) are read as they are.

The figures `stats()` reports are counters kept as rows change (triggers on the row and cursor
tables, plus the oldest pending reading per sink kept by the writer), so a metrics scrape or a
`flux-edge status` call costs the same with an empty outbox and a week's backlog.

The class is synchronous and thread-safe (one connection, one lock): the async components call it
through `asyncio.to_thread`, so an fsync never stalls the event loop.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from controller.core.clock import utc
from controller.core.logs import get_logger
from controller.core.memory import give_back
from controller.core.sqlite import immediate
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
CREATE TABLE IF NOT EXISTS dictionaries (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL UNIQUE, zdict BLOB NOT NULL);
"""

# Per sink: rows it has not delivered and its oldest pending reading; ALL_ROWS (cursor 0) counts every row.
_COUNTS = """
CREATE TABLE sink_counts (sink TEXT PRIMARY KEY, pending INTEGER NOT NULL, oldest_t INTEGER, oldest_seq INTEGER);
CREATE TRIGGER rows_counted AFTER INSERT ON rows BEGIN
    UPDATE sink_counts SET pending = pending + 1;  -- a new seq is above every cursor
END;
CREATE TRIGGER rows_uncounted AFTER DELETE ON rows BEGIN
    UPDATE sink_counts SET pending = pending - 1
     WHERE OLD.seq > coalesce((SELECT seq FROM cursors WHERE cursors.sink = sink_counts.sink), 0);
END;
CREATE TRIGGER cursor_moved AFTER UPDATE OF seq ON cursors WHEN NEW.seq > OLD.seq BEGIN
    UPDATE sink_counts SET pending = pending - (SELECT count(*) FROM rows WHERE seq > OLD.seq AND seq <= NEW.seq)
     WHERE sink = NEW.sink;
END;
CREATE TRIGGER cursor_removed AFTER DELETE ON cursors BEGIN
    DELETE FROM sink_counts WHERE sink = OLD.sink;
END;
"""
CACHE_KIB = 512  # page cache per connection
PRUNE_SLICE = 20_000  # rows deleted per transaction when pruning
ALL_ROWS = ""  # the sink_counts entry of "no sink": cursor 0, every row pending

_FORMAT = struct.Struct(">BH")  # format 1, dictionary id, then raw deflate
_COMPRESSED = 1


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


def _count_sink(c: sqlite3.Connection, sink: str) -> None:
    """Count `sink`'s pending rows and find its oldest pending reading from scratch (once per sink and file)."""
    cursor = c.execute("SELECT coalesce((SELECT seq FROM cursors WHERE sink = ?), 0)", (sink,)).fetchone()[0]
    pending = c.execute("SELECT count(*) FROM rows WHERE seq > ?", (cursor,)).fetchone()[0]
    oldest = c.execute("SELECT t, seq FROM rows WHERE seq > ? ORDER BY t, seq LIMIT 1", (cursor,)).fetchone()
    c.execute("INSERT OR REPLACE INTO sink_counts (sink, pending, oldest_t, oldest_seq) VALUES (?, ?, ?, ?)",
              (sink, pending, *(oldest or (None, None))))


def _refind_oldest(c: sqlite3.Connection) -> None:
    """After rows left (delivered and pruned, or dropped): a sink whose oldest pending row is gone finds it again."""
    c.execute("UPDATE sink_counts SET (oldest_t, oldest_seq) = (SELECT t, seq FROM rows WHERE seq > "
              "coalesce((SELECT seq FROM cursors WHERE cursors.sink = sink_counts.sink), 0) ORDER BY t, seq LIMIT 1) "
              "WHERE oldest_seq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM rows WHERE seq = sink_counts.oldest_seq)")


class Outbox:
    def __init__(self, path: Path, conn: sqlite3.Connection, *, max_bytes: int, retention_s: float) -> None:
        self.path = path
        self._wal_path = str(path) + "-wal"
        self._conn = conn
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self.sinks: tuple[str, ...] = ()
        self._page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        self._zdicts: dict[int, bytes] = {}  # dictionary id -> preset dictionary
        self._zdict_of: dict[str, int] = {}  # table -> its dictionary id
        for ident, table, zdict in conn.execute("SELECT id, tbl, zdict FROM dictionaries"):
            self._zdicts[int(ident)] = bytes(zdict)
            self._zdict_of[str(table)] = int(ident)

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
            # Each connection (the writer's, each sink's) caches pages; SQLite's default is 2 MiB apiece, resident
            # for good once a large outbox has been read. Appending and reading in seq order need few pages.
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            conn.execute(f"PRAGMA journal_size_limit={max(1 << 20, max_bytes // 8)}")
            conn.executescript(_SCHEMA)
            conn.execute("SELECT max(seq) FROM rows").fetchone()
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sink_counts'").fetchone() is None:
                # A new file, or one from before the counters: counted once, kept as rows change from now on.
                conn.executescript("BEGIN IMMEDIATE;" + _COUNTS)  # in one transaction with the counting
                for (sink,) in conn.execute("SELECT ? UNION SELECT sink FROM cursors", (ALL_ROWS,)).fetchall():
                    _count_sink(conn, sink)
                conn.execute("COMMIT")
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
        try:
            with immediate(self._conn, self._lock) as conn:
                yield conn
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
                if c.execute("INSERT OR IGNORE INTO cursors (sink, seq) VALUES (?, 0)", (n,)).rowcount:
                    _count_sink(c, n)
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
        rows = list(rows)
        if not rows:
            return WriteResult(0, 0, 0, 0)
        with self._lock:
            params = [(r.table, r.key, to_micros(r.time), self._encode(r.table, r.body())) for r in rows]
        # Make room first, so the file stays within the bound even while this batch goes in. Room made for
        # twice the batch's bytes is room enough afterwards too: only a batch too large for that is checked
        # again once it is in (the check queries the page counts and stats the WAL, on every commit).
        incoming = sum(len(p[3]) + len(p[1]) + len(p[0]) + 40 for p in params) * 2
        room_made = incoming < self.max_bytes // 2
        pruned, dropped = self.enforce_bound(incoming) if room_made else (0, 0)
        with self._tx() as c:
            top = c.execute("SELECT coalesce(max(seq), 0) FROM rows").fetchone()[0]
            # rowcount, not total_changes: the counting triggers' own updates are not rows inserted.
            inserted = c.executemany("INSERT OR IGNORE INTO rows (tbl, key, t, body) VALUES (?, ?, ?, ?)",
                                     params).rowcount
            if inserted:
                # Every new row is pending for every sink: the oldest of them may be a sink's oldest.
                seq, t = c.execute("SELECT seq, t FROM rows WHERE seq > ? ORDER BY t, seq LIMIT 1", (top,)).fetchone()
                c.execute("UPDATE sink_counts SET oldest_t = ?, oldest_seq = ? WHERE oldest_t IS NULL OR oldest_t > ?",
                          (t, seq, t))
        if not room_made:
            pruned, dropped = self.enforce_bound()
        return WriteResult(inserted, len(params) - inserted, pruned, dropped)

    def used_bytes(self) -> int:
        with self._lock:
            return self._used_bytes()

    def _used_bytes(self) -> int:
        used = self._conn.execute("SELECT page_count - freelist_count FROM pragma_page_count, pragma_freelist_count")
        return int(used.fetchone()[0]) * self._page_size

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
        with contextlib.suppress(OSError):
            if os.stat(self._wal_path).st_size > self.max_bytes // 8:
                self._checkpoint()
        with self._lock:
            if self._used_bytes() <= target:
                return 0, 0
        for _ in range(8):
            with self._tx() as c:
                used = self._used_bytes()
                if used <= target:
                    break
                n = int(c.execute("SELECT pending FROM sink_counts WHERE sink = ?", (ALL_ROWS,)).fetchone()[0])
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
                _refind_oldest(c)
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
        n = 0
        while True:
            # In slices: a week's backlog pruned in one transaction would hold tens of MiB until it commits.
            with self._tx() as c:
                floor = self._min_cursor(c)
                if not floor:
                    return 0
                k = c.execute("DELETE FROM rows WHERE seq IN (SELECT seq FROM rows WHERE seq <= ? AND t < ? "
                              "ORDER BY seq LIMIT ?)", (floor, cutoff, PRUNE_SLICE)).rowcount
                if k:
                    _refind_oldest(c)
            n += k
            if k < PRUNE_SLICE:
                break
        if n:
            self._compact()
            log.info("outbox_pruned", rows=n)
            if n >= PRUNE_SLICE:
                give_back(f"{n} rows pruned")
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
        return [StoredRow(s, tb, k, from_micros(t), self.decode(b)) for s, tb, k, t, b in rows]

    def ack(self, sink: str, upto_seq: int) -> None:
        """`sink` has delivered every row up to `upto_seq` (the cursor never moves back)."""
        with self._tx() as c:
            new = c.execute("INSERT OR IGNORE INTO cursors (sink, seq) VALUES (?, 0)", (sink,)).rowcount
            if new:
                _count_sink(c, sink)
            # The trigger `cursor_moved` takes the rows passed off the sink's pending count.
            c.execute("UPDATE cursors SET seq = max(seq, ?) WHERE sink = ?", (upto_seq, sink))
            # Its oldest pending row delivered: the next oldest is found (a scan of what is still pending, once
            # per batch at most while a backlog drains; never on the metrics or status path).
            c.execute("UPDATE sink_counts SET (oldest_t, oldest_seq) = (SELECT t, seq FROM rows WHERE seq > "
                      "(SELECT seq FROM cursors WHERE sink = ?) ORDER BY t, seq LIMIT 1) "
                      "WHERE sink = ? AND oldest_seq <= (SELECT seq FROM cursors WHERE sink = ?)", (sink, sink, sink))

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
        return [StoredRow(s, tb, k, from_micros(t), self.decode(b)) for s, tb, k, t, b in rows]

    def table_rows_between(self, table: str, start: datetime, end: datetime) -> list[StoredRow]:
        """Rows of every key of `table` in [start, end), by time (for tables keyed by ids of their own)."""
        rows = self._read("SELECT seq, tbl, key, t, body FROM rows WHERE tbl = ? AND t >= ? AND t < ? ORDER BY t",
                          (table, to_micros(start), to_micros(end)))
        return [StoredRow(s, tb, k, from_micros(t), self.decode(b)) for s, tb, k, t, b in rows]

    # --- body encoding --------------------------------------------------------------------------

    def _encode(self, table: str, body: str) -> bytes:
        """`body` deflated with its table's preset dictionary (made from the table's first row, kept in the
        file). Called with the lock held."""
        raw = body.encode()
        ident = self._zdict_of.get(table)
        if ident is None:
            # The dictionary is stored before any row uses it: committed on its own, it is never missing.
            self._conn.execute("INSERT OR IGNORE INTO dictionaries (tbl, zdict) VALUES (?, ?)", (table, raw))
            ident, zdict = self._conn.execute("SELECT id, zdict FROM dictionaries WHERE tbl = ?", (table,)).fetchone()
            self._zdicts[int(ident)] = bytes(zdict)
            self._zdict_of[table] = ident = int(ident)
        # A 4 KiB window holds a body and its dictionary; a smaller state than the default is 6x faster to set up.
        z = zlib.compressobj(6, zlib.DEFLATED, -12, 6, zlib.Z_DEFAULT_STRATEGY, zdict=self._zdicts[ident])
        return _FORMAT.pack(_COMPRESSED, ident) + z.compress(raw) + z.flush()

    def decode(self, stored: str | bytes) -> str:
        """The body as the cloud takes it (JSON text); rows of earlier versions are text already."""
        if isinstance(stored, str):
            return stored
        fmt, ident = _FORMAT.unpack_from(stored)
        if fmt != _COMPRESSED:
            raise OutboxCorrupt(f"unknown body format {fmt}")
        zdict = self._zdicts.get(ident)
        if zdict is None:
            with self._lock:
                row = self._conn.execute("SELECT zdict FROM dictionaries WHERE id = ?", (ident,)).fetchone()
            if row is None:
                raise OutboxCorrupt(f"body dictionary {ident} missing")
            zdict = self._zdicts[ident] = bytes(row[0])
        z = zlib.decompressobj(-15, zdict=zdict)
        return (z.decompress(stored[_FORMAT.size:]) + z.flush()).decode()

    # --- stats ----------------------------------------------------------------------------------

    def counter(self, name: str) -> int:
        rows = self._read("SELECT value FROM counters WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def _counts(self, sink: str | None) -> tuple[int, int, int | None]:
        """(rows held, rows `sink` has not delivered, its oldest pending reading time in micros)."""
        rows = self._read("SELECT sink, pending, oldest_t FROM sink_counts WHERE sink IN (?, ?)",
                          (ALL_ROWS, ALL_ROWS if sink is None else sink))
        counts = {r[0]: (int(r[1]), r[2]) for r in rows}
        total = counts.get(ALL_ROWS, (0, None))[0]
        pending, oldest = counts.get(ALL_ROWS if sink is None else sink, (total, counts.get(ALL_ROWS, (0, None))[1]))
        return total, pending, oldest

    def backlog(self, sink: str) -> tuple[int, datetime | None]:
        """(rows `sink` has not delivered, the reading time of the oldest of them): point lookups, as `sink_stats`."""
        _, pending, oldest = self._counts(sink)
        return pending, from_micros(oldest) if oldest is not None and pending else None

    def sink_stats(self, sink: str | None) -> SinkStats:
        """Read from the counters: a few point lookups whatever the backlog."""
        total, pending, oldest = self._counts(sink)
        return SinkStats(pending, total - pending, from_micros(oldest).isoformat() if oldest is not None else None,
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
