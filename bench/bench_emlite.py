"""HMCE-size meter cycle: 54 Emlite meters on 1-3 s links plus 6 heat meters, polled together.

For each one-minute cycle: the time until every meter's poll has finished, against the slowest
single meter's poll in the same cycle (goal: cycle <= 1.25 x slowest, i.e. concurrency costs the
site little more than its slowest meter). Times are on the simulation clock (scaled), so the
figures are the seconds a real site would see; real-time overheads are multiplied by the speed,
which only makes the figures pessimistic.

    .venv/bin/python bench/bench_emlite.py [--cycles 3] [--speed 10]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import SiteConfig
from controller.config.loader import parse_site
from controller.core.clock import ScaledClock
from controller.core.logs import configure_logging
from devices.base import Device
from devices.catalog import create_device
from devices.links import DeviceLinks
from simulator.context import SimContext
from simulator.emlite import EmliteSimulator
from simulator.mbus_gateway import MbusGatewaySimulator

EMLITE = 54


_ports: set[int] = set()


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _ports:
            _ports.add(port)
            return port


def hmce_site(link_max: int | None) -> SiteConfig:
    def uid(name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))

    # As config/sites/hmce.yaml: three 4G routers (20, 20 and 14 meters), six heat meters on one M-Bus gateway.
    devices: list[dict[str, Any]] = [
        {"type": "emlite", "name": f"home-{i:02d}", "id": uid(f"home-{i:02d}"), "host": "127.0.0.1",
         "port": free_port(), "twin_element": i % 9 == 0, "link": f"4g-router-{(i - 1) // 20 + 1}",
         **({"link_max_connections": link_max} if link_max else {})}
        for i in range(1, EMLITE + 1)]
    gw = free_port()
    devices += [{"type": "heat_mbus", "name": f"heat-{a}", "id": uid(f"heat-{a}"), "host": "127.0.0.1", "port": gw,
                 "mbus_address": a} for a in range(1, 7)]
    faults = {f"home-{i:02d}": {"latency_s": 1.0, "latency_jitter_s": 2.0} for i in range(1, EMLITE + 1)}
    doc = {"site": {"id": "bench", "name": "HMCE-size bench"}, "devices": devices,
           "simulator": {"seed": 3, "faults": faults}}
    return parse_site(yaml.safe_dump(doc), "<bench>")


async def timed_poll(device: Device, slot: datetime, clock: ScaledClock) -> tuple[float, float]:
    """(poll duration, the part of it spent queueing for the shared link) in clock seconds."""
    waited_before = device.health.extra.get("link_wait_ms", 0)
    t0 = clock.monotonic()
    await device.poll(slot)
    return clock.monotonic() - t0, (device.health.extra.get("link_wait_ms", 0) - waited_before) / 1000


async def main(cycles: int, speed: float, link_max: int | None) -> int:
    configure_logging("console", "error")
    site = hmce_site(link_max)
    clock = ScaledClock(datetime(2026, 3, 2, 18, 0, tzinfo=UTC), speed)
    ctx = SimContext(site, clock)
    emlite = EmliteSimulator.from_site(ctx)
    await emlite.start({d.name: (d.host, d.port) for d in site.devices if d.type == "emlite"})
    mbus = MbusGatewaySimulator.from_site(ctx)
    await mbus.start()
    links = DeviceLinks()
    devices = [create_device(d, clock, links) for d in site.devices]
    ratios: list[float] = []
    try:
        for n in range(cycles):
            slot = clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
            await clock.sleep_until(slot)
            t0 = clock.monotonic()
            timings = await asyncio.gather(*(timed_poll(d, slot, clock) for d in devices))
            cycle = clock.monotonic() - t0
            durations = [t for t, _ in timings]
            # A meter's own read time: its poll without the time it queued for the shared link.
            own = [t - w for t, w in timings]
            slowest = max(own)
            ratios.append(cycle / slowest)
            emlite_d = durations[:EMLITE]
            print(f"cycle {n + 1}: {len(devices)} meters, cycle {cycle:.2f} s, slowest single meter read "
                  f"{slowest:.2f} s (own time), ratio {cycle / slowest:.3f}; slowest poll incl. link queueing "
                  f"{max(durations):.2f} s; emlite poll median {statistics.median(emlite_d):.2f} s; "
                  f"link queueing total {sum(w for _, w in timings):.1f} s; heat max {max(durations[EMLITE:]):.2f} s")
    finally:
        for d in devices:
            await d.close()
        await emlite.close()
        await mbus.close()
    worst = max(ratios)
    print(f"worst ratio {worst:.3f} (goal <= 1.25): {'ok' if worst <= 1.25 else 'MISSED'}")
    return 0 if worst <= 1.25 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--speed", type=float, default=10.0, help="simulation clock speed-up")
    parser.add_argument("--link-max", type=int, default=None, help="override link_max_connections of every meter")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.cycles, args.speed, args.link_max)))
