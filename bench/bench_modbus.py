"""Modbus benchmarks: the driver's per-read overhead, and one poll cycle of many devices.

    .venv/bin/python bench/bench_modbus.py [--reads 300] [--devices 200] [--latency 0.05]

The simulated devices run in a separate process (as real devices are separate hardware), so the
figures are the client side's: what the daemon's event loop spends.

1. Overhead: an Acuvim II poll through the driver (three block reads through the shared connection,
   lock, timeouts, decoding, scaling, plausibility checks, the Reading) against raw pymodbus reads
   of the same three blocks on a plain AsyncModbusTcpClient, interleaved in the same run, no added
   latency. Goal: ratio <= 1.3.
2. Poll cycle: N Acuvim IIs, each its own server and connection, every request answered after
   `--latency` s (+-20 % jitter) as a device on the LAN would. First every device is polled alone
   (through the scheduler's slot logic) to find the slowest single poll; then one slot polls all N
   concurrently. Goal: cycle <= 1.25 x the slowest single poll.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from devices.links import DeviceLinks

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import SiteConfig
from controller.core.bus import Bus
from controller.core.clock import RealClock, align_up
from controller.core.logs import configure_logging
from controller.core.state import StateStore
from devices.acuvim2 import registers as r
from devices.catalog import create_device
from devices.modbus import encode
from devices.scheduler import DevicePoller
from simulator.config import FaultConfig
from simulator.modbus_server import Faults, ModbusSimServer, RegisterBank, SimUnit

BLOCKS = ((r.FLOAT_START, r.FLOAT_COUNT), (r.ENERGY_START, r.ENERGY_COUNT),
          (r.PHASE_ENERGY_START, r.PHASE_ENERGY_COUNT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bank() -> RegisterBank:
    bank = RegisterBank(list(BLOCKS))
    values = {"frequency": 50.0, "voltage_line_average": 400.0, "power_factor_total": 0.95}
    for name, (address, _) in r.FLOAT_FIELDS.items():
        bank.set(address, encode(values.get(name, 1.5), "float32"))
    for i, address in enumerate(r.ENERGY_FIELDS.values()):
        bank.set(address, encode(1000 + i, "int32"))
    return bank


async def _serve(count: int, latency: float, ports_file: str) -> None:
    clock = RealClock()
    faults = FaultConfig(latency_s=latency, latency_jitter_s=latency * 0.2)
    servers = []
    for i in range(count):
        unit = SimUnit(f"m{i}", _bank(), Faults(faults, random.Random(i)))
        server = ModbusSimServer("127.0.0.1", _free_port(), clock, {1: unit})
        await server.start()
        servers.append(server)
    Path(ports_file).write_text(json.dumps([s.port for s in servers]))
    await asyncio.Event().wait()


def _site(ports: list[int]) -> SiteConfig:
    devices = [{"type": "acuvim2", "name": f"m{i}", "id": f"00000000-0000-4000-8000-{i:012d}", "host": "127.0.0.1",
                "port": p, "ct1": 5, "ct2": 5, "timeout_s": 10, "poll_interval_s": 10} for i, p in enumerate(ports)]
    return SiteConfig.model_validate({"site": {"id": "bench", "name": "bench"}, "devices": devices})


def _start_servers(count: int, latency: float, tmp: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    ports_file = tmp / f"ports-{os.getpid()}-{count}-{latency}.json"
    ports_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(count), "--latency", str(latency),
                             "--ports-file", str(ports_file)])
    deadline = time.monotonic() + 60
    while not ports_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("simulated devices did not start")
        time.sleep(0.05)
    time.sleep(0.1)
    ports = json.loads(ports_file.read_text())
    ports_file.unlink()
    return proc, ports


async def overhead(reads: int, tmp: Path) -> dict[str, float]:
    from pymodbus.client import AsyncModbusTcpClient

    proc, ports = _start_servers(1, 0.0, tmp)
    try:
        clock = RealClock()
        device = create_device(_site(ports).devices[0], clock, DeviceLinks())
        raw = AsyncModbusTcpClient("127.0.0.1", port=ports[0], timeout=10, retries=0, reconnect_delay=0)
        await raw.connect()
        now = datetime.now(UTC)

        async def raw_read() -> None:
            for start, count in BLOCKS:
                rr = await raw.read_holding_registers(start, count=count, device_id=1)
                assert not rr.isError()

        for _ in range(20):  # warm up both paths
            await device.poll(now)
            await raw_read()
        driver_s: list[float] = []
        raw_s: list[float] = []
        for _ in range(reads):
            t = time.perf_counter()
            await device.poll(now)
            driver_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            await raw_read()
            raw_s.append(time.perf_counter() - t)
        raw.close()
        await device.close()
    finally:
        proc.kill()
        proc.wait()
    d, w = statistics.median(driver_s), statistics.median(raw_s)
    return {"driver_median_ms": d * 1e3, "raw_median_ms": w * 1e3, "ratio_median": d / w,
            "ratio_mean": statistics.mean(driver_s) / statistics.mean(raw_s)}


async def cycle(count: int, latency: float, tmp: Path) -> dict[str, float]:
    proc, ports = _start_servers(count, latency, tmp)
    try:
        clock = RealClock()
        site = _site(ports)
        bus, state = Bus(), StateStore()
        pollers = [DevicePoller(create_device(d, clock, DeviceLinks()), clock, state, bus) for d in site.devices]
        slot = align_up(clock.now(), 10)
        for p in pollers:  # connect every device first: the cycle measured is a steady-state one
            await p.device.poll(slot)
        singles = []
        for p in pollers:
            t = time.perf_counter()
            reading = await p.poll_slot(clock.now())
            singles.append(time.perf_counter() - t)
            assert reading is not None
        t = time.perf_counter()
        readings = await asyncio.gather(*(p.poll_slot(clock.now()) for p in pollers))
        cycle_s = time.perf_counter() - t
        assert all(x is not None for x in readings)
        for p in pollers:
            await p.device.close()
    finally:
        proc.kill()
        proc.wait()
    slowest = max(singles)
    return {"devices": count, "latency_s": latency, "slowest_single_ms": slowest * 1e3,
            "median_single_ms": statistics.median(singles) * 1e3, "cycle_ms": cycle_s * 1e3,
            "ratio": cycle_s / slowest}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ports-file", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    configure_logging("console", "error", stream=sys.stderr)
    if args.serve:
        asyncio.run(_serve(args.serve, args.latency, args.ports_file))
        return
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    result = {"overhead": asyncio.run(overhead(args.reads, tmp)),
              "cycle": asyncio.run(cycle(args.devices, args.latency, tmp))}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
