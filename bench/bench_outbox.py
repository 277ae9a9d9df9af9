"""Outbox and backfill throughput, each against its raw baseline in the same run.

1. Outbox writes: `Outbox.add` (row -> JSON, one transaction per batch, size bound checked per batch)
   against raw `sqlite3.executemany` of the same rows, JSON-encoded the same way, into an identical
   table with the same pragmas and batch size. Goal >= 0.7x. Also: commit latency FULL vs NORMAL.
2. Backfill of N rows (default 650 000 Acuvim rows) from the outbox through the postgres sink
   (Delivery: outbox read, COPY to a temp table, INSERT ... ON CONFLICT DO NOTHING, cursor ack) against
   raw COPY of the same rows into the same (emptied) table. Goal >= 0.5x.
3. The same backlog through the PostgREST stand-in (HTTP + JSON + PostgreSQL). Goal >= 10 000 rows/s.

    .venv/bin/python bench/bench_outbox.py [--rows 650000] [--http-rows 200000] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from controller.core.clock import RealClock
from controller.core.reading import Reading
from devices.catalog import CLOUD_ROUTING
from simulator.cloud import CloudStandIn
from uploader.config import PostgresSinkConfig, PostgrestSinkConfig
from uploader.delivery import Delivery, SinkCounters
from uploader.migrate import ensure_database, migrate
from uploader.outbox import Outbox, to_micros
from uploader.postgres import PostgresSink
from uploader.postgrest import PostgrestSink
from uploader.tables import METER, CloudRow, map_reading

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEVICES = [uuid.uuid5(uuid.NAMESPACE_DNS, f"bench-meter-{i}") for i in range(10)]


def meter_rows(n: int) -> list[CloudRow]:
    out: list[CloudRow] = []
    for i in range(n):
        device = DEVICES[i % len(DEVICES)]
        t = T0 + timedelta(minutes=i // len(DEVICES))
        fields = {c: float(i % 997) + 0.25 for c in METER.column_names}
        row = map_reading(Reading(device, "m", "acuvim2", t, fields), CLOUD_ROUTING)
        assert row is not None
        out.append(row)
    return out


def bench_writes(rows: list[CloudRow], batch: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        raw = sqlite3.connect(Path(d) / "raw.sqlite3", isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=FULL")
        raw.execute("CREATE TABLE rows (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT NOT NULL, "
                    "t INTEGER NOT NULL, body TEXT NOT NULL, UNIQUE (tbl, key, t))")
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            params = [(r.table, r.key, to_micros(r.time), r.body()) for r in rows[i:i + batch]]
            raw.execute("BEGIN")
            raw.executemany("INSERT OR IGNORE INTO rows (tbl, key, t, body) VALUES (?, ?, ?, ?)", params)
            raw.execute("COMMIT")
        raw_s = time.perf_counter() - t0
        raw.close()

        box = Outbox.open(Path(d) / "outbox", synchronous="full", max_bytes=16 * 1024**3)
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            box.add(rows[i:i + batch])
        box_s = time.perf_counter() - t0
        box.close()
    n = len(rows)
    ratio = raw_s / box_s
    print(f"outbox writes: n={n} batch={batch} outbox={n / box_s:,.0f} rows/s raw executemany={n / raw_s:,.0f} "
          f"rows/s ratio={ratio:.2f}x goal>=0.7x {'OK' if ratio >= 0.7 else 'MISSED'}")

    for mode in ("full", "normal"):
        with tempfile.TemporaryDirectory() as d:
            box = Outbox.open(Path(d), synchronous=mode)  # type: ignore[arg-type]
            lat = []
            for i in range(200):  # a site's tick: a dozen readings per commit
                t0 = time.perf_counter()
                box.add(rows[i * 12:(i + 1) * 12])
                lat.append(time.perf_counter() - t0)
            box.close()
        lat.sort()
        print(f"commit latency synchronous={mode}: 12 rows/commit p50={statistics.median(lat) * 1e3:.2f}ms "
              f"p99={lat[int(len(lat) * 0.99)] * 1e3:.2f}ms")


def _fresh_db(dsn: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = "postgres"
    with psycopg.connect(psycopg.conninfo.make_conninfo(**info), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    info["dbname"] = name
    target = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    ensure_database(target)
    migrate(target)
    return target


def _truncate(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE flux.mg_meter_readings")


def raw_copy(dsn: str, rows: list[CloudRow]) -> float:
    cols = METER.all_columns
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY flux.mg_meter_readings ({', '.join(cols)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row([r.values[c] for c in cols])
        conn.commit()
    return time.perf_counter() - t0


async def deliver(sink: Any, box: Outbox, batch: int) -> float:
    delivery = Delivery(sink, box, RealClock(), batch_size=batch, backoff_max_s=60, alert=lambda *a, **k: None,
                        counters=SinkCounters(), run=_direct)
    t0 = time.perf_counter()
    while await delivery.deliver_once():
        pass
    return time.perf_counter() - t0


async def _direct(fn: Any) -> Any:
    return fn()


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM flux.mg_meter_readings").fetchone()
        assert row is not None
        return int(row[0])


async def bench_backfill(dsn: str, rows: list[CloudRow], http_rows: int) -> None:
    db = _fresh_db(dsn, "flux_bench_outbox")
    with tempfile.TemporaryDirectory() as d:
        box = Outbox.open(Path(d) / "pg", max_bytes=16 * 1024**3)
        box.register_sinks(["pg"])
        for i in range(0, len(rows), 10_000):
            box.add(rows[i:i + 10_000])
        n = len(rows)

        raw_s = raw_copy(db, rows)
        assert _count(db) == n
        _truncate(db)
        sink = PostgresSink(PostgresSinkConfig(type="postgres", name="pg", dsn=db, batch_size=5000))
        sink_s = await deliver(sink, box, 5000)
        await sink.close()
        assert _count(db) == n
        ratio = raw_s / sink_s
        verdict = "OK" if ratio >= 0.5 else "MISSED"
        print(f"backfill postgres sink: n={n} sink={n / sink_s:,.0f} rows/s ({sink_s:.1f}s) raw COPY="
              f"{n / raw_s:,.0f} rows/s ({raw_s:.1f}s) ratio={ratio:.2f}x goal>=0.5x {verdict}")

        box.close()
        _truncate(db)
        # The stand-in gets the first `http_rows` of the same backlog, from an outbox of their own.
        box = Outbox.open(Path(d) / "http", max_bytes=16 * 1024**3)
        box.register_sinks(["http"])
        for i in range(0, http_rows, 10_000):
            box.add(rows[i:min(i + 10_000, http_rows)])
        async with CloudStandIn(db, "bench-key", keep_log=False) as cloud:
            http = PostgrestSink(PostgrestSinkConfig(type="postgrest", name="http", url=cloud.url,
                                                     api_key="bench-key", batch_size=5000))
            http_s = await deliver(http, box, 5000)
            await http.close()
        assert _count(db) == http_rows
        rate = http_rows / http_s
        print(f"backfill PostgREST stand-in: n={http_rows} {rate:,.0f} rows/s ({http_s:.1f}s) "
              f"goal>=10,000 rows/s {'OK' if rate >= 10_000 else 'MISSED'}")
        box.close()
    _fresh_db(dsn, "flux_bench_outbox")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=650_000)
    parser.add_argument("--http-rows", type=int, default=200_000)
    parser.add_argument("--write-rows", type=int, default=200_000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    rows = meter_rows(max(args.rows, args.write_rows))
    bench_writes(rows[:args.write_rows], batch=1000)
    asyncio.run(bench_backfill(args.dsn, rows[:args.rows], min(args.http_rows, args.rows)))


if __name__ == "__main__":
    main()
