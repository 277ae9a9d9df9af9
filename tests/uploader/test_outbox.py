"""The SQLite outbox on a real file: cursors per sink, retention, the size bound, corruption, durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from devices.catalog import CLOUD_ROUTING
from tests.uploader.fixtures import T0, bess, meter, minutes
from uploader.outbox import Outbox, OutboxCorrupt, outbox_path
from uploader.tables import map_reading


def _rows(n: int, start=T0):  # type: ignore[no-untyped-def]
    return [map_reading(bess(t, soe=float(i)), CLOUD_ROUTING) for i, t in enumerate(minutes(n, start))]


def test_rows_wait_for_each_sink_separately(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path)
    box.register_sinks(["a", "b"])
    assert box.add(_rows(10)).inserted == 10
    first = box.pending("a", 4)
    assert [r.time for r in first] == minutes(4)
    box.ack("a", first[-1].seq)
    assert len(box.pending("a", 100)) == 6
    assert len(box.pending("b", 100)) == 10  # b has delivered nothing yet
    stats = box.stats()
    assert stats["sinks"]["a"]["pending"] == 6 and stats["sinks"]["a"]["uploaded"] == 4
    assert stats["sinks"]["b"]["pending"] == 10 and stats["sinks"]["b"]["oldest_pending"] == T0.isoformat()


def test_duplicate_readings_are_stored_once(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path)
    box.add(_rows(5))
    result = box.add(_rows(5))
    assert (result.inserted, result.duplicates) == (0, 5)
    assert len(box.pending("x", 100)) == 5


def test_nan_becomes_null_in_the_stored_row(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path)
    box.add([map_reading(bess(T0, soe=float("nan")), CLOUD_ROUTING)])
    (row,) = box.pending("x", 1)
    assert '"soe":null' in row.body


def test_retention_prunes_only_delivered_rows(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path, retention_s=86400)
    box.register_sinks(["a", "b"])
    box.add(_rows(10))
    box.ack("a", box.pending("a", 100)[-1].seq)
    now = T0 + timedelta(days=3)
    assert box.prune(now) == 0  # b still needs them
    box.ack("b", box.pending("b", 5)[-1].seq)
    assert box.prune(now) == 5  # delivered everywhere and old: gone
    assert len(box.pending("b", 100)) == 5
    assert box.prune(T0 + timedelta(hours=12)) == 0  # within retention: kept


def test_a_removed_sink_stops_holding_rows_back(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path, retention_s=0)
    box.register_sinks(["a", "old"])
    box.add(_rows(3))
    box.ack("a", box.pending("a", 100)[-1].seq)
    assert box.prune(T0 + timedelta(days=1)) == 0
    box.register_sinks(["a"])
    assert box.prune(T0 + timedelta(days=1)) == 3


def test_full_outbox_prunes_delivered_rows_before_any_pending(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path, max_bytes=1 << 20)
    box.register_sinks(["a"])
    delivered = 0
    for day in range(4):
        box.add(_rows(1440, T0 + timedelta(days=day)))
        pending = box.pending("a", 100_000)
        box.ack("a", pending[-1].seq)
        delivered += len(pending)
    box.add(_rows(1000, T0 + timedelta(days=10)))
    assert box.counter("dropped_pending") == 0
    assert len(box.pending("a", 100_000)) == 1000  # every undelivered row is still there
    assert box.file_bytes() <= 1 << 20
    assert box.sink_stats("a").uploaded < delivered  # delivered rows made room


def test_full_of_pending_rows_drops_the_oldest_counted(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path, max_bytes=1 << 20)
    box.register_sinks(["a"])
    dropped = 0
    for day in range(6):
        dropped += box.add(_rows(1440, T0 + timedelta(days=day))).dropped_pending
    assert dropped > 0
    assert box.counter("dropped_pending") == dropped
    rest = box.pending("a", 100_000)
    assert len(rest) == 6 * 1440 - dropped
    assert rest[0].time == T0 + timedelta(minutes=dropped)  # the oldest went first, the rest is contiguous
    assert rest[-1].time == T0 + timedelta(days=5, minutes=1439)
    assert box.file_bytes() <= 1 << 20


def test_a_corrupt_file_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    outbox_path(tmp_path).write_bytes(b"this is not a database" * 500)
    with pytest.raises(OutboxCorrupt):
        Outbox.open(tmp_path)
    box, aside = Outbox.open_or_replace(tmp_path, now=T0)
    assert aside is not None and aside.exists() and aside.read_bytes().startswith(b"this is not")
    box.add(_rows(2))
    assert len(box.pending("a", 10)) == 2


@pytest.mark.parametrize("mode, expected", [("full", 2), ("normal", 1)])
def test_synchronous_mode_is_applied(tmp_path: Path, mode: str, expected: int) -> None:
    box = Outbox.open(tmp_path, synchronous=mode)  # type: ignore[arg-type]
    assert box._conn.execute("PRAGMA synchronous").fetchone()[0] == expected
    assert box._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("mode", ["full", "normal"])
def test_a_committed_batch_survives_the_process_being_killed(tmp_path: Path, mode: str) -> None:
    """SIGKILL right after commit returns: the batch is there on reopen (both modes survive a process
    crash; only FULL also survives a power cut, see uploader/README.md)."""
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from devices.catalog import CLOUD_ROUTING
        from uploader.outbox import Outbox
        from uploader.tables import map_reading
        from tests.uploader.fixtures import bess, minutes
        box = Outbox.open(Path({str(tmp_path)!r}), synchronous={mode!r})
        box.add([map_reading(bess(t), CLOUD_ROUTING) for t in minutes(500)])
        sys.stdout.write("committed\\n"); sys.stdout.flush()
        os.kill(os.getpid(), {int(signal.SIGKILL)})
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2], env={**os.environ})
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout == "committed\n"
    conn = sqlite3.connect(outbox_path(tmp_path))
    assert conn.execute("SELECT count(*) FROM rows").fetchone()[0] == 500
    assert Outbox.open(tmp_path).sink_stats(None).pending == 500


def test_meter_and_battery_rows_keep_their_own_keys(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path)
    box.add([map_reading(bess(T0), CLOUD_ROUTING), map_reading(meter(T0), CLOUD_ROUTING)])
    assert {r.table for r in box.pending("a", 10)} == {"mg_bess_readings", "mg_meter_readings"}


def test_without_sinks_rows_are_pruned_never_dropped(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path, max_bytes=1 << 20, retention_s=86400)
    box.register_sinks([])
    dropped = sum(box.add(_rows(1440, T0 + timedelta(days=d))).dropped_pending for d in range(5))
    assert dropped == 0 and box.counter("dropped_pending") == 0
    assert box.file_bytes() <= 1 << 20
    assert box.prune(T0 + timedelta(days=30)) > 0


def _counted(box: Outbox, sink: str | None) -> tuple[int, int, str | None]:
    """The figures by counting rows, the way stats() did before it kept counters."""
    conn = sqlite3.connect(box.path)
    cursor = box.cursor(sink) if sink is not None else 0
    pending, oldest = conn.execute("SELECT count(*), min(t) FROM rows WHERE seq > ?", (cursor,)).fetchone()
    uploaded = conn.execute("SELECT count(*) FROM rows WHERE seq <= ?", (cursor,)).fetchone()[0]
    conn.close()
    from uploader.outbox import from_micros
    return pending, uploaded, from_micros(oldest).isoformat() if oldest is not None else None


def test_stats_counters_match_counting_rows_through_every_change(tmp_path: Path) -> None:
    import random

    rng = random.Random(5)
    box = Outbox.open(tmp_path, max_bytes=600_000, retention_s=3600)
    box.register_sinks(["a", "b"])
    start = T0
    for step in range(60):
        action = rng.random()
        if action < 0.5:
            # Out of order on purpose: a batch whose readings are older than rows already held.
            n = rng.randint(1, 300)
            box.add(_rows(n, start - timedelta(minutes=rng.choice([0, 0, 90]))))
            start += timedelta(minutes=n)
        elif action < 0.8:
            sink = rng.choice(["a", "b"])
            pending = box.pending(sink, rng.randint(1, 400))
            if pending:
                box.ack(sink, pending[-1].seq)
        elif action < 0.9:
            box.prune(start)
        elif step > 30:
            box.register_sinks(["a", "b", "c"] if rng.random() < 0.5 else ["a"])
        for sink in box.sinks or (None,):
            s = box.sink_stats(sink)
            assert (s.pending, s.uploaded, s.oldest_pending) == _counted(box, sink), (step, sink)
    assert box.counter("dropped_pending") > 0  # the bound was reached: drops were counted too


def test_bodies_are_stored_compressed_and_read_back_whole(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path)
    rows = [map_reading(meter(t, power=float(i) * 1.37), CLOUD_ROUTING) for i, t in enumerate(minutes(50))]
    box.add(rows)
    assert [r.body for r in box.pending("x", 100)] == [r.body() for r in rows if r is not None]
    conn = sqlite3.connect(box.path)
    stored = conn.execute("SELECT avg(length(body)) FROM rows").fetchone()[0]
    assert stored < 0.5 * sum(len(r.body()) for r in rows if r is not None) / len(rows)
    conn.close()
    box.close()
    # Another process (a fresh Outbox) reads them with the dictionary kept in the file.
    again = Outbox.open(tmp_path)
    assert [r.body for r in again.pending("x", 100)] == [r.body() for r in rows if r is not None]


def test_a_file_from_before_the_counters_and_compression_is_read_and_counted(tmp_path: Path) -> None:
    conn = sqlite3.connect(outbox_path(tmp_path))
    conn.executescript("""
        CREATE TABLE rows (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT NOT NULL,
            t INTEGER NOT NULL, body TEXT NOT NULL, UNIQUE (tbl, key, t));
        CREATE TABLE cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL DEFAULT 0);
        INSERT INTO rows (tbl, key, t, body) VALUES ('mg_bess_readings', 'k', 1000000, '{"old":1}'),
                                                    ('mg_bess_readings', 'k', 2000000, '{"old":2}');
        INSERT INTO cursors VALUES ('a', 1);
    """)
    conn.close()
    box = Outbox.open(tmp_path)
    box.register_sinks(["a"])
    assert box.stats()["pending"] == 1 and box.stats()["uploaded"] == 1
    assert [r.body for r in box.pending("a", 10)] == ['{"old":2}']
    box.add(_rows(3))
    assert box.stats()["pending"] == 4
