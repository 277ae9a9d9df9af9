"""Metrics scrape and `flux-edge status` with a 7-day outbox (issue 16): p50/p99 over real HTTP.

A runtime with the HMCE-size device list (65 devices, health and state filled as in bench_ops.py) whose
outbox holds `--days` of HMCE-size rows, nothing uploaded (written by bench/outbox_growth.py), served by
the daemon's real metrics and admin endpoints; `--calls` GETs of /metrics and of /status (what
`flux-edge status` asks). Goal: p99 < 50 ms for both. Run with PYTHONPATH pointing at the checkout to
measure (this file imports nothing of the project outside it).

    PYTHONPATH=$PWD python bench/bench_scrape_backlog.py --days 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from controller.config import LoadedSite, parse_site
from controller.core.clock import RealClock
from controller.core.reading import Reading
from controller.ops.admin import AdminServer
from controller.ops.metrics import MetricsServer
from controller.runtime import Runtime
from devices.base import DeviceHealth
from uploader.outbox import Outbox

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
FIELDS = ("import_a_kwh", "export_a_kwh", "power_kw", "balance_gbp", "voltage_v")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_text(metrics: int, admin: int, buffer: str) -> str:
    devices = [f"  - {{type: emlite, name: home-{i:02d}, id: 00000000-0000-4000-8002-{i:012d}, host: 127.0.0.1, "
               f"port: {20000 + i}}}" for i in range(65)]
    return "\n".join([
        "site: {id: scrape, name: Scrape bench}", "devices:", *devices,
        f"buffer: {{path: '{buffer}'}}",
        "uploader: {sinks: [{type: postgrest, name: cloud, url: 'http://127.0.0.1:1', api_key: '${FLUX_BENCH_KEY}'}]}",
        f"metrics: {{port: {metrics}}}", f"ops: {{admin: {{port: {admin}}}}}", ""])


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def bench(buffer: str, calls: int) -> dict[str, Any]:
    metrics_port, admin_port = free_port(), free_port()
    # The key from the environment, as a real site's (the sink is never reached: nothing listens there).
    config = parse_site(site_text(metrics_port, admin_port, buffer), "<bench>", env={"FLUX_BENCH_KEY": "k"})
    runtime = Runtime(site=LoadedSite(config, "<bench>", "0" * 64), clock=RealClock())
    for n, d in enumerate(config.devices):
        h = DeviceHealth()
        for k in range(200):
            h.observe_latency(0.001 * ((n + k) % 300))
            h.record_success(NOW)
        runtime.health[d.name] = h
        runtime.state.update(Reading(d.id, d.name, d.type, NOW, {f: float(k) for k, f in enumerate(FIELDS)}, NOW))
    box = Outbox.open(buffer)
    box.register_sinks(["cloud"])
    runtime.services.outbox = SimpleNamespace(outbox=box)  # type: ignore[assignment]
    tally = runtime.tally()
    servers = [MetricsServer(runtime, tally, "127.0.0.1", metrics_port), AdminServer(runtime, tally, "127.0.0.1",
                                                                                   admin_port)]
    tasks = [asyncio.create_task(s.run()) for s in servers]
    await asyncio.sleep(0.5)
    out: dict[str, Any] = {"pending": box.stats()["pending"]}
    async with httpx.AsyncClient(timeout=30) as client:
        for name, url in (("metrics", f"http://127.0.0.1:{metrics_port}/metrics"),
                          ("status", f"http://127.0.0.1:{admin_port}/status")):
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                r = await client.get(url)
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text[:200]
            out[name] = (pct(times, 0.5), pct(times, 0.99))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    box.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, str(HERE / "outbox_growth.py"), "--days", str(args.days), "--fill", d],
                       check=True, stdout=subprocess.DEVNULL)
        r = asyncio.run(bench(d, args.calls))
    print(json.dumps(r))
    m, st = r["metrics"], r["status"]
    print(f"{args.days:g} days in the outbox ({r['pending']} rows pending): metrics scrape p50 {m[0]:.1f} ms "
          f"p99 {m[1]:.1f} ms; status p50 {st[0]:.1f} ms p99 {st[1]:.1f} ms; goal p99 < 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
