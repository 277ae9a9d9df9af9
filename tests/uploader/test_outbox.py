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
