"""A transparent M-Bus-to-TCP gateway with simulated heat meters behind it.

One TCP server per gateway address (host, port) of the site's heat_mbus devices. Requests are
served one at a time, as on the half-duplex bus; each answer takes its bus time at the configured
baud rate plus `faults[name].latency_s`, slept on the simulation clock. pymeterbus cannot build
frames, so the meters frame their own RSP_UD (binary records, the layout of a MULTICAL-style meter).

Faults per meter: `timeout_probability` puts it to sleep (it ignores REQ_UD2 until a SND_NKE wakes
it), `garbage_probability` corrupts the checksum, `exception_probability` makes the gateway first
deliver a late answer from another address, `drop_probability` drops the TCP connection.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime

from controller.config import SiteConfig
from controller.core.clock import Clock
from controller.core.logs import get_logger
from devices.heat_mbus.config import HeatMbusConfig
from devices.heat_mbus.records import ACK, CI_RSP_UD_VARIABLE, LONG_START, SHORT_START, SND_NKE, STOP
from simulator.config import FaultConfig
from simulator.context import SimContext
from simulator.tcp import close_listeners

log = get_logger("simulator.mbus")

RSP_UD = 0x08
WATER_KWH_PER_M3K = 1.163  # heat carried by a cubic metre of water per kelvin


def _bcd_lsb_first(n: int, digits: int) -> bytes:
    text = f"{n:0{digits}d}"[-digits:]
    return bytes(int(text[i:i + 2], 16) for i in range(0, digits, 2))[::-1]


def simulated_devices(site: SiteConfig, ctx: SimContext) -> list[HeatMbusConfig]:
    """The site's heat_mbus devices this simulator serves."""
    return [d for d in site.devices if isinstance(d, HeatMbusConfig) and ctx.simulated(d.name)]


@dataclass
class SimulatedHeatMeter:
    name: str
    address: int
    seed: int
    energy_kwh: float = 0.0
    volume_m3: float = 0.0
    asleep: bool = False
    just_woken: bool = False
    access: int = 0
    _last: datetime | None = None

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.energy_kwh = self.energy_kwh or rng.uniform(50_000, 400_000)
        self.volume_m3 = self.volume_m3 or rng.uniform(1_000, 9_000)
        self.peak_kw = rng.uniform(20, 120)
        self.flow_setpoint_c = rng.uniform(66, 80)
        self.ident = self.seed % 100_000_000

    def state(self, now: datetime) -> tuple[float, float, float, float]:
        """(power kW, flow degC, return degC, flow m3/h) now; the registers advance by their integral."""
        hour = now.hour + now.minute / 60
        demand = 0.35 + 0.4 * math.exp(-((hour - 7.5) ** 2) / 3) + 0.5 * math.exp(-((hour - 18.5) ** 2) / 5)
        power = self.peak_kw * demand
        flow_c = self.flow_setpoint_c - 4 * math.sin(hour / 24 * 2 * math.pi)
        return_c = flow_c - (15 + 10 * demand)
        flow = power / (WATER_KWH_PER_M3K * (flow_c - return_c))
        return power, flow_c, return_c, flow

    def advance(self, now: datetime) -> None:
        if self._last is not None and now > self._last:
            hours = (now - self._last).total_seconds() / 3600
            power, _, _, flow = self.state(now)
            self.energy_kwh += power * hours
            self.volume_m3 += flow * hours
        self._last = now

    def rsp_ud(self, now: datetime) -> bytes:
        self.advance(now)
        power, flow_c, return_c, flow = self.state(now)
        self.access = (self.access + 1) & 0xFF
        header = _bcd_lsb_first(self.ident, 8) + bytes([0x2D, 0x2C, 0x1B, 0x04, self.access, 0x00, 0x00, 0x00])
        records = b"".join([
            bytes([0x04, 0x06]) + struct.pack("<I", int(self.energy_kwh)),  # kWh
            bytes([0x04, 0x14]) + struct.pack("<I", int(self.volume_m3 * 100)),  # 0.01 m3
            bytes([0x04, 0x2B]) + struct.pack("<I", round(power * 1000)),  # W
            bytes([0x04, 0x3B]) + struct.pack("<I", round(flow * 1000)),  # l/h
            bytes([0x02, 0x59]) + struct.pack("<h", round(flow_c * 100)),  # 0.01 degC
            bytes([0x02, 0x5D]) + struct.pack("<h", round(return_c * 100)),
            bytes([0x02, 0x61]) + struct.pack("<h", round((flow_c - return_c) * 100)),  # 0.01 K
            bytes([0x01, 0xFD, 0x17, 0x00]),  # error flags
            bytes([0x44, 0x06]) + struct.pack("<I", int(self.energy_kwh * 0.9)),  # billing-date energy
        ])
        body = bytes([RSP_UD, self.address, CI_RSP_UD_VARIABLE]) + header + records
        return bytes([LONG_START, len(body), len(body), LONG_START]) + body + bytes([sum(body) & 0xFF, STOP])


@dataclass
class GatewayServer:
    meters: dict[int, SimulatedHeatMeter]
    faults: dict[int, FaultConfig]
    baud: dict[int, int]
    clock: Clock
    rng: random.Random
    requests: int = 0
    answers: int = 0
    connections: int = 0
    _bus: asyncio.Lock = field(default_factory=asyncio.Lock)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            while True:
                start = await reader.readexactly(1)
                if start[0] != SHORT_START:
                    continue  # noise on the line
                control, address, checksum, stop = await reader.readexactly(4)
                if stop != STOP or (control + address) & 0xFF != checksum:
                    continue
                self.requests += 1
                async with self._bus:
                    if not await self._answer(control, address, writer):
                        return
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            self.handlers.discard(task)
            writer.close()

    async def _answer(self, control: int, address: int, writer: asyncio.StreamWriter) -> bool:
        meter = self.meters.get(address)
        if meter is None:
            return True  # nobody at that address: silence, as on a real bus
        f = self.faults[address]
        if control == SND_NKE:
            meter.asleep, meter.just_woken = False, True
            await self._send(writer, bytes([ACK]), address)
            return True
        if meter.asleep:
            return True
        if not meter.just_woken and self._hit(f.timeout_probability):
            meter.asleep = True
            return True
        meter.just_woken = False
        if self._hit(f.drop_probability):
            return False
        if self._hit(f.exception_probability):
            # A late answer from another meter arrives just before the one asked for.
            other = next((m for a, m in self.meters.items() if a != address), None)
            stray = (other or SimulatedHeatMeter("stray", (address + 1) & 0xFF, 1)).rsp_ud(self.clock.now())
            await self._send(writer, stray, address)
        frame = bytearray(meter.rsp_ud(self.clock.now()))
        if self._hit(f.garbage_probability):
            frame[-2] ^= 0xFF
        latency = f.latency_s + self.rng.uniform(0, f.latency_jitter_s)
        if latency > 0:
            await self.clock.sleep(latency)
        await self._send(writer, bytes(frame), address)
        self.answers += 1
        return True

    def _hit(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, address: int) -> None:
        # 11 bits per byte on the bus (start, 8 data, parity, stop).
        await self.clock.sleep(len(data) * 11 / self.baud.get(address, 2400))
        writer.write(data)
        await writer.drain()


@dataclass
class MbusGatewaySimulator:
    gateways: dict[tuple[str, int], GatewayServer]
    _tcp: list[asyncio.Server] = field(default_factory=list)

    @classmethod
    def from_site(cls, ctx: SimContext) -> MbusGatewaySimulator:
        gateways: dict[tuple[str, int], GatewayServer] = {}
        for d in simulated_devices(ctx.site, ctx):
            key = (d.host, d.port)
            gw = gateways.get(key)
            if gw is None:
                gw = gateways[key] = GatewayServer({}, {}, {}, ctx.clock, ctx.rng(f"mbus:{d.host}:{d.port}"))
            seed = zlib.crc32(f"{ctx.sim.seed}:{d.name}".encode())
            gw.meters[d.mbus_address] = SimulatedHeatMeter(d.name, d.mbus_address, seed)
            gw.faults[d.mbus_address] = ctx.sim.faults.get(d.name, FaultConfig())
            gw.baud[d.mbus_address] = d.baud
        return cls(gateways)

    async def start(self) -> None:
        for (host, port), gw in self.gateways.items():
            self._tcp.append(await asyncio.start_server(gw.handle, host, port))
        log.info("sim_mbus_started", gateways=len(self.gateways),
                 meters=sum(len(g.meters) for g in self.gateways.values()))

    async def close(self) -> None:
        await close_listeners(self._tcp, self.gateways.values())


async def serve(ctx: SimContext) -> None:
    sim = MbusGatewaySimulator.from_site(ctx)
    if not sim.gateways:
        return
    ctx.shared["mbus_gateway"] = sim
    await sim.start()
    ctx.ready("mbus_gateway").set()
    try:
        await asyncio.Event().wait()
    finally:
        await sim.close()
