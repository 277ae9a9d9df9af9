"""Field operations at site scale: metrics scrape time and MQTT telemetry throughput.

    .venv/bin/python bench/bench_ops.py [--devices 60] [--scrapes 200] [--messages 5000] [--mqtt 127.0.0.1:1883]

Scrape: a runtime with `--devices` devices (health records with latency histograms, a state store with
their fields), scraped over HTTP from the real metrics endpoint. Goal p99 < 50 ms: a scrape runs on
the daemon's loop and must not hold up control. MQTT: `--messages` readings through the real bridge
to the broker, timed until a subscriber has them all. Goal >= 1000 messages/s (a 54-home site
publishes about one a second).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt
import httpx

from controller.config import LoadedSite, parse_site
from controller.core.clock import RealClock
from controller.core.logs import configure_logging
from controller.core.reading import Reading
from controller.ops.metrics import MetricsServer
from controller.ops.mqtt import MqttBridge, run_bridge
from controller.runtime import Runtime
from devices.base import DeviceHealth
from tests.helpers import free_port

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
EMLITE_FIELDS = ("import_a_kwh", "export_a_kwh", "import_b_kwh", "export_b_kwh", "power_kw", "balance_gbp",
                 "voltage_v", "signal_csq", "clock_drift_s")


def site_text(devices: int, metrics_port: int, mqtt: tuple[str, int] | None, prefix: str) -> str:
    lines = ["site: {id: bench, name: Bench}", "devices:",
             "  - {type: powerpack, name: bess, id: 00000000-0000-4000-8000-000000000001, host: 127.0.0.1,"
             " port: 1502, nameplate_power_kw: 250, nameplate_energy_kwh: 1000}",
             "  - {type: acuvim2, name: site-meter, id: 00000000-0000-4000-8000-000000000002, host: 127.0.0.1,"
             " port: 1503}"]
    for i in range(devices - 2):
        lines.append(f"  - {{type: emlite, name: home-{i:02d}, id: 00000000-0000-4000-8000-{i + 100:012d},"
                     f" host: 127.0.0.1, port: {20000 + i}}}")
    lines += ["controller: {site_meter: site-meter, battery: bess, soe_min_kwh: 50, soe_max_kwh: 950,"
              " battery_charge_limit_kw: 200, battery_discharge_limit_kw: 200, site_import_limit_kw: 300,"
              " site_export_limit_kw: 300}",
              f"metrics: {{port: {metrics_port}}}"]
    if mqtt is not None:
        lines.append(f"mqtt: {{host: {mqtt[0]}, port: {mqtt[1]}, topic_prefix: {prefix}, queue_size: 100000}}")
    return "\n".join(lines) + "\n"


def populated_runtime(devices: int, metrics_port: int, mqtt: tuple[str, int] | None = None,
                      prefix: str = "bench") -> Runtime:
    config = parse_site(site_text(devices, metrics_port, mqtt, prefix), "<bench>")
    runtime = Runtime(site=LoadedSite(config, "<bench>", "0" * 64), clock=RealClock())
    for n, d in enumerate(config.devices):
        h = DeviceHealth()
        for k in range(200):
            h.observe_latency(0.001 * ((n + k) % 300))
            h.record_success(NOW)
        runtime.health[d.name] = h
        runtime.state.update(Reading(d.id, d.name, d.type, NOW, {f: float(k) for k, f in enumerate(EMLITE_FIELDS)},
                                     NOW))
    return runtime


async def bench_scrape(devices: int, scrapes: int) -> list[float]:
    port = free_port()
    runtime = populated_runtime(devices, port)
    server = MetricsServer(runtime, runtime.tally(), "127.0.0.1", port)
    task = asyncio.create_task(server.run())
    await server.endpoint.listening.wait()
    times: list[float] = []
    async with httpx.AsyncClient() as client:
        for _ in range(scrapes):
            t0 = time.perf_counter()
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return times


async def bench_mqtt(messages: int, host: str, port: int) -> float:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    runtime = populated_runtime(3, free_port(), (host, port), prefix)
    assert runtime.config.mqtt is not None
    received = 0
    done = asyncio.Event()
    async with aiomqtt.Client(host, port) as sub:
        await sub.subscribe(f"{prefix}/bench/+/measurements", qos=1)

        async def count() -> None:
            nonlocal received
            async for _ in sub.messages:
                received += 1
                if received >= messages:
                    done.set()

        counter = asyncio.create_task(count())
        bridge_task = asyncio.create_task(run_bridge(runtime, runtime.config.mqtt))
        while not runtime.services.mqtt is not None and runtime.services.mqtt.connected:
            await asyncio.sleep(0.01)
        bridge: MqttBridge = runtime.services.mqtt
        d = runtime.config.devices[2]
        t0 = time.perf_counter()
        for i in range(messages):
            runtime.bus.readings.publish(Reading(d.id, d.name, d.type, NOW, {"power_kw": float(i)}, NOW))
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - t0
        assert bridge.dropped == 0
        for t in (bridge_task, counter):
            t.cancel()
        await asyncio.gather(bridge_task, counter, return_exceptions=True)
    return messages / elapsed


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, default=60)
    p.add_argument("--scrapes", type=int, default=200)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--mqtt", default="127.0.0.1:1883")
    args = p.parse_args()
    configure_logging("console", "warning")
    times = asyncio.run(bench_scrape(args.devices, args.scrapes))
    p50, p99 = statistics.median(times) * 1000, pct(times, 99) * 1000
    print(f"metrics scrape: devices={args.devices} n={len(times)} p50={p50:.2f}ms p99={p99:.2f}ms "
          f"max={max(times) * 1000:.2f}ms goal p99<50ms {'OK' if p99 < 50 else 'MISSED'}")
    host, _, port = args.mqtt.rpartition(":")
    rate = asyncio.run(bench_mqtt(args.messages, host, int(port)))
    print(f"mqtt telemetry: n={args.messages} {rate:.0f} msg/s (QoS 1, acked by the broker) "
          f"goal >=1000 msg/s {'OK' if rate >= 1000 else 'MISSED'}")


if __name__ == "__main__":
    main()
