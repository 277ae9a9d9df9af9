"""Outbox growth at HMCE size, and what `stats()` (metrics scrape, `flux-edge status`) costs on it.

Writes `--days` of an HMCE-size site's rows into a fresh outbox the way the daemon does (one batch a
minute: 1 PowerPack, 4 Acuvim II, 54 Emlite and 6 heat-meter readings, and 30 decision records, i.e.
95 rows a minute, mapped by the same functions as the daemon's; an hour's rows per transaction to keep
the run short), with nothing uploaded, then prints
bytes per row (pages in use / rows; decision rows alone from the stored body lengths), the days that
fit in the default 2 GiB bound (the bound keeps the pages in use under 85 % of it), and the time of
`Outbox.stats()` over `--calls` calls. Run with PYTHONPATH pointing at the checkout to measure
(bench_footprint.py does that for this checkout and for `--code`).

    PYTHONPATH=$PWD python bench/outbox_growth.py --days 7
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.core.bus import DecisionRecord
from controller.core.reading import Reading
from devices.catalog import CLOUD_ROUTING
from uploader.outbox import Outbox, outbox_path
from uploader.tables import EMLITE, HEAT, METER, CloudRow, map_decision, map_reading

T0 = datetime(2026, 6, 1, tzinfo=UTC)
BOUND = 2 * 1024**3
MODES = ("dynamic_peak_discharge", "charge_to_soe", "dynamic_peak_approach", "export_avoidance")
ids = [uuid.uuid5(uuid.NAMESPACE_DNS, f"hmce-{i}") for i in range(65)]


def f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def minute_rows(t: datetime, rng: random.Random) -> list[CloudRow]:
    out: list[CloudRow | None] = [map_reading(Reading(ids[0], "bess", "powerpack", t, {
        "soe_kwh": round(rng.uniform(50, 950), 3), "target_power_kw": rng.uniform(-250, 250)}), CLOUD_ROUTING)]
    for i in range(1, 5):
        fields = {c: f32(rng.uniform(0, 400)) for c in METER.column_names}
        out.append(map_reading(Reading(ids[i], f"m{i}", "acuvim2", t, fields), CLOUD_ROUTING))
    for i in range(5, 59):
        fields = {c: round(rng.uniform(0, 9000), 3) for c in EMLITE.column_names}
        out.append(map_reading(Reading(ids[i], f"home-{i}", "emlite", t, fields), CLOUD_ROUTING))
    for i in range(59, 65):
        fields: dict[str, Any] = {c: round(rng.uniform(0, 900), 2) for c in HEAT.column_names}
        fields["error_flags"] = 0
        out.append(map_reading(Reading(ids[i], f"heat-{i}", "heat_mbus", t, fields), CLOUD_ROUTING))
    for k in range(30):
        at = t + timedelta(seconds=2 * k, microseconds=rng.randrange(20000))
        target = rng.uniform(-250, 250)
        active = [m for m in MODES if rng.random() < 0.3] or ["export_avoidance"]
        body = {
            "time": at.isoformat(), "target_kw": target, "active_modes": active, "effective_modes": active[:1],
            "constraints": [], "reason": f"{active[0]} set the target", "requested_kw": target,
            "inputs": {"site_power_kw": f32(rng.uniform(-300, 300)), "site_power_age_s": round(rng.random(), 6),
                       "bess_soe_kwh": round(rng.uniform(50, 950), 3), "bess_soe_age_s": round(rng.random(), 6),
                       "bess_last_target_kw": rng.uniform(-250, 250),
                       "imbalance_price": {"value": round(rng.uniform(-50, 300), 3),
                                           "settlement_period": t.replace(minute=0).isoformat()},
                       "imbalance_volume": {"value": round(rng.uniform(-500, 500), 1),
                                            "settlement_period": t.replace(minute=0).isoformat()}},
            "proposals": {m: ({"target": target, "min": None, "max": target} if m in active else None) for m in MODES},
            "dry_run": False, "written": True, "emulation": False, "override": None}
        out.append(map_decision(DecisionRecord(at, body), ids[0]))
    return [r for r in out if r is not None]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--fill", metavar="DIR", help="only write the rows into the outbox in DIR (a backlog to upload)")
    p.add_argument("--delivered-to", metavar="SINK", help="with --fill: mark the rows delivered to SINK")
    args = p.parse_args()
    rng = random.Random(16)
    if args.fill:
        # The rows of the last `--days` days, as an outage that ends now leaves them: dated in June, a backlog
        # was older than the retention, so the first prune after its upload (600 s) deleted all of it in the
        # daemon, inside the measured window, which a real week's backlog never does.
        minutes = int(args.days * 1440)
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes)
        box = Outbox.open(args.fill, synchronous="normal", max_bytes=BOUND)
        for hour in range(0, minutes, 60):
            batch = range(hour, min(hour + 60, minutes))
            box.add([r for m in batch for r in minute_rows(start + timedelta(minutes=m), rng)])
        if args.delivered_to:
            # The same rows, already delivered (a site that has run this long with the cloud up): its baseline.
            with sqlite3.connect(outbox_path(Path(args.fill))) as conn:
                last = int(conn.execute("SELECT max(seq) FROM rows").fetchone()[0])
            box.ack(args.delivered_to, last)
        print(json.dumps({"filled": box.stats()["pending"]}))
        box.close()
        return 0
    with tempfile.TemporaryDirectory() as d:
        box = Outbox.open(d, synchronous="normal", max_bytes=BOUND)
        box.register_sinks(["cloud"])
        minutes = int(args.days * 1440)
        t_write = time.perf_counter()
        for hour in range(0, minutes, 60):  # an hour per transaction: the same rows, fewer fsyncs to wait for
            batch = range(hour, min(hour + 60, minutes))
            box.add([r for m in batch for r in minute_rows(T0 + timedelta(minutes=m), rng)])
        t_write = time.perf_counter() - t_write
        used = box.used_bytes()
        conn = sqlite3.connect(box.path)
        n = conn.execute("SELECT count(*) FROM rows").fetchone()[0]
        dec = conn.execute("SELECT avg(length(body)) FROM rows WHERE tbl = 'mg_controller_decisions'").fetchone()[0]
        body = conn.execute("SELECT avg(length(body)) FROM rows").fetchone()[0]
        conn.close()
        times = []
        for _ in range(args.calls):
            t = time.perf_counter()
            box.stats()
            times.append(time.perf_counter() - t)
        times.sort()
        per_day = used / args.days
        out = {"rows": n, "bytes_per_row": used / n, "body_bytes_per_row": body, "decision_body_bytes": dec,
               "bytes_per_day": per_day, "days_in_bound": BOUND * 0.85 / per_day,
               "stats_p50_ms": 1000 * statistics.median(times),
               "stats_p99_ms": 1000 * times[int(0.99 * len(times)) - 1],
               "write_s": t_write, "pending": box.stats()["pending"]}
        box.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
