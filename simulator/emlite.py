"""Simulated Emlite meters speaking EMOP, each on its own TCP port, from the site file's emlite devices.

Each meter's consumption is a half-hourly profile (constant power within a half hour, deterministic
for the seed), so the registers, the instantaneous power, the balance and the profile logs all
derive from one integral and agree with each other. Faults per meter come from
`simulator.faults[name]`: latency (slept on the simulation clock), busy refusals, dropped
connections, silence, NAKs (`exception_probability`), corrupted CRCs (`garbage_probability`) and a
meter clock offset. Like a real meter, a connection that arrives while another is being served is
closed at once without an answer (the client sees "busy").
"""

from __future__ import annotations

import asyncio
import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.config import SiteConfig
from controller.core.clock import Clock, align_down
from controller.core.logs import get_logger
from devices.emlite.codec import (
    EPOCH_2000,
    STATUS_VALID,
    ElementRegisters,
    Frame,
    FrameError,
    Message,
    Nak,
    NakCode,
    ObjectAnswer,
    ObjectId,
    ObjectReadRequest,
    ObjectValue,
    Profile1Record,
    Profile2Record,
    ProfileLogAnswer,
    ProfileLogRequest,
    ProfileRecord,
    SignalQuality,
    decode,
    encode,
    encode_value,
    frame_size,
)
from devices.emlite.config import EmliteConfig
from simulator.config import FaultConfig
from simulator.context import SimContext
from simulator.tcp import close_listeners

log = get_logger("simulator.emlite")

HALF_HOUR_S = 1800
HISTORY_DAYS = 60  # the meter's profile log reaches this far back from the simulation's start
TARIFF_GBP_PER_KWH = 0.25
TOP_UP_GBP = 20.0
TOP_UP_AT_GBP = 3.0
BALANCE_UNITS_PER_GBP = 100_000
VOLTAGE_RAW_PER_V = 10  # the simulator's answer to the unconfirmed voltage scale: 0.1 V per unit
REQUEST_READ_TIMEOUT_S = 30.0  # real seconds a client may take to send its request


def _half_hour(t: datetime) -> int:
    return int((t - EPOCH_2000).total_seconds()) // HALF_HOUR_S


def simulated_devices(site: SiteConfig, ctx: SimContext) -> list[EmliteConfig]:
    """The site's emlite devices this simulator serves."""
    return [d for d in site.devices if isinstance(d, EmliteConfig) and ctx.simulated(d.name)]


@dataclass
class SimulatedMeter:
    """Registers and history of one meter; time comes from the simulation clock (plus the meter's offset)."""

    name: str
    twin: bool
    seed: int
    origin: datetime  # the first half hour of the meter's history
    address: int = 0
    initial_balance_gbp: float = 20.0
    clock_offset_s: float = 0.0
    _cum_a: list[float] = field(default_factory=lambda: [0.0])  # Wh at the start of half hour origin+i
    _cum_b: list[float] = field(default_factory=lambda: [0.0])

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.register_base_a = rng.randrange(1_000_000, 20_000_000)  # Wh already on the meter at origin
        self.register_base_b = rng.randrange(100_000, 5_000_000) if self.twin else 0
        self.base_w = rng.uniform(150, 400)
        self.peak_w = rng.uniform(600, 2500)
        self.storage_w = rng.uniform(1500, 3000) if self.twin else 0.0
        self.voltage_v = rng.uniform(236, 246)
        self.csq = rng.randrange(8, 28)
        self._origin_hh = _half_hour(self.origin)

    # -- the consumption profile ------------------------------------------------------------------------

    def _noise(self, hh: int, salt: int) -> float:
        return random.Random((self.seed << 20) ^ (hh * 2654435761 + salt)).random()

    def power_a_w(self, hh: int) -> float:
        hour = (hh % 48) / 2
        evening = math.exp(-((hour - 18.5) ** 2) / 4.0)
        morning = 0.4 * math.exp(-((hour - 7.5) ** 2) / 1.5)
        return self.base_w + self.peak_w * (evening + morning) * (0.6 + 0.8 * self._noise(hh, 1))

    def power_b_w(self, hh: int) -> float:
        if not self.twin:
            return 0.0
        hour = (hh % 48) / 2
        # Storage heating on the B element during the economy-7 night hours.
        return self.storage_w * (0.7 + 0.3 * self._noise(hh, 2)) if hour < 7 else 0.0

    def _cumulative(self, hh: int) -> tuple[float, float]:
        i = hh - self._origin_hh
        if i < 0:
            return 0.0, 0.0
        while len(self._cum_a) <= i:
            k = self._origin_hh + len(self._cum_a) - 1
            self._cum_a.append(self._cum_a[-1] + self.power_a_w(k) / 2)
            self._cum_b.append(self._cum_b[-1] + self.power_b_w(k) / 2)
        return self._cum_a[i], self._cum_b[i]

    def import_wh(self, t: datetime) -> tuple[float, float]:
        """Cumulative imported Wh of elements A and B at `t` (the integral of the profile)."""
        hh = _half_hour(t)
        a, b = self._cumulative(hh)
        into = (t - EPOCH_2000).total_seconds() - hh * HALF_HOUR_S
        return (self.register_base_a + a + self.power_a_w(hh) * into / 3600,
                self.register_base_b + b + self.power_b_w(hh) * into / 3600)

    def registers(self, t: datetime, element: str) -> ElementRegisters:
        a, b = self.import_wh(t)
        imp = int(a if element == "a" else b)
        # Reactive energy follows active energy at a fixed ratio; these homes export nothing.
        return ElementRegisters(imp, 0, int(imp * 0.2), int(imp * 0.01))

    def balance_units(self, t: datetime) -> int:
        """Credit left: spent at the tariff, topped up by TOP_UP_GBP whenever it falls to TOP_UP_AT_GBP."""
        a, b = self.import_wh(t)
        spent = (a - self.register_base_a + b - self.register_base_b) / 1000 * TARIFF_GBP_PER_KWH
        above = (self.initial_balance_gbp - TOP_UP_AT_GBP - spent) % TOP_UP_GBP
        return round((TOP_UP_AT_GBP + above) * BALANCE_UNITS_PER_GBP)

    def meter_time(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.clock_offset_s)

    # -- answers -------------------------------------------------------------------------------------

    def value(self, object_id: int, now: datetime) -> ObjectValue | None:
        t = self.meter_time(now)
        hh = _half_hour(t)
        values: dict[int, ObjectValue] = {
            ObjectId.ELEMENT_A_REGISTERS: self.registers(t, "a"),
            ObjectId.POWER_TOTAL: min(0xFFFF, round(self.power_a_w(hh) + self.power_b_w(hh))),
            ObjectId.POWER_ELEMENT_A: min(0xFFFF, round(self.power_a_w(hh))),
            ObjectId.PREPAY_BALANCE: self.balance_units(t),
            ObjectId.VOLTAGE: round(self.voltage_v * VOLTAGE_RAW_PER_V),
            ObjectId.CLOCK: t.replace(microsecond=0),
            ObjectId.SERIAL: f"EML{self.seed % 10**10:010d}",
            ObjectId.HARDWARE_VERSION: "HW3",
            ObjectId.FIRMWARE_VERSION: "1.6.4",
            ObjectId.SIGNAL_QUALITY: SignalQuality(1, self.csq),
            ObjectId.PREPAY_ENABLED: 1,
        }
        if self.twin:
            values[ObjectId.ELEMENT_B_REGISTERS] = self.registers(t, "b")
            values[ObjectId.POWER_ELEMENT_B] = min(0xFFFF, round(self.power_b_w(hh)))
        return values.get(object_id)

    def profile(self, log_number: int, start: datetime, now: datetime) -> ProfileLogAnswer:
        """Records from the half hour at `start` on, as far as the meter's own clock has reached.

        A start before the meter's history answers with its oldest records (later than asked);
        a start in the future answers with padding only.
        """
        t_now = self.meter_time(now)
        first = max(_half_hour(start), self._origin_hh)
        count = 4 if log_number == 1 else (2 if self.twin else 3)
        records: list[ProfileRecord] = []
        for hh in range(first, first + count):
            t = EPOCH_2000 + timedelta(seconds=hh * HALF_HOUR_S)
            if t > t_now:
                break
            a, b = self.import_wh(t)
            if log_number == 1:
                records.append(Profile1Record(t, STATUS_VALID, int(a), int(b)))
            else:
                ra = self.registers(t, "a")
                rb = self.registers(t, "b")
                records.append(Profile2Record(
                    t, STATUS_VALID, ra.export_wh, ra.reactive_import_varh, ra.reactive_export_varh,
                    round(self.voltage_v * VOLTAGE_RAW_PER_V),
                    (rb.export_wh, rb.reactive_import_varh, rb.reactive_export_varh) if self.twin else None))
        return ProfileLogAnswer(log_number, start, tuple(records), twin_element=self.twin and log_number == 2)

    def answer(self, request: Frame, now: datetime) -> Message:
        if request.dest_address not in (0, self.address):
            return Nak(NakCode.FRAME_ADDRESS_INCORRECT)
        msg = request.message
        if isinstance(msg, ObjectReadRequest):
            value = self.value(msg.object_id, now)
            if value is None:
                return Nak(NakCode.UNKNOWN_OBJECT)
            return ObjectAnswer(msg.object_id, encode_value(msg.object_id, value))
        if isinstance(msg, ProfileLogRequest):
            return self.profile(msg.log, msg.timestamp, now)
        return Nak(NakCode.FORMAT_ERROR)


@dataclass
class ConnectionGauge:
    """Connections open at once across all simulated meters (what a shared 4G router would carry)."""

    open: int = 0
    peak: int = 0

    def opened(self) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)

    def closed(self) -> None:
        self.open -= 1


@dataclass
class MeterServer:
    """The TCP side of one simulated meter."""

    meter: SimulatedMeter
    clock: Clock
    faults: FaultConfig
    rng: random.Random
    busy: bool = False
    connections: int = 0
    answers: int = 0
    refused: int = 0
    gauge: ConnectionGauge = field(default_factory=ConnectionGauge)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.busy or self.rng.random() < self.faults.busy_probability:
            self.refused += 1
            writer.close()
            return
        self.busy = True
        self.gauge.opened()
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            await self._serve_one(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("sim_emlite_connection_error", meter=self.meter.name, error=repr(exc))
        finally:
            self.busy = False
            self.gauge.closed()
            self.writers.discard(writer)
            self.handlers.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes:
        buf = await reader.readexactly(2)
        size = frame_size(buf)
        assert size is not None
        return buf + await reader.readexactly(size - 2)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        f = self.faults
        try:
            raw = await asyncio.wait_for(self._read_request(reader), REQUEST_READ_TIMEOUT_S)
        except FrameError:
            return
        latency = f.latency_s + self.rng.uniform(0, f.latency_jitter_s)
        if latency > 0:
            await self.clock.sleep(latency)
        roll = self.rng.random()
        if roll < f.drop_probability:
            return
        roll -= f.drop_probability
        if roll < f.timeout_probability:
            await reader.read()  # say nothing until the client gives up
            return
        roll -= f.timeout_probability
        try:
            request = decode(raw)
        except FrameError as exc:
            code = NakCode.FCS_ERROR if exc.reason == "crc" else NakCode.FORMAT_ERROR
            # Answer to whoever the damaged frame names as its source.
            request = Frame(Nak(code), src_type=raw[6], src_address=int.from_bytes(raw[7:10], "big"),
                            sequence=raw[10] & 1)
            message: Message = Nak(code)
        else:
            message = self.meter.answer(request, self.clock.now())
        garbage = False
        if roll < f.exception_probability:
            message = Nak(NakCode.FRAME_LENGTH_INCORRECT)
        else:
            garbage = roll - f.exception_probability < f.garbage_probability
        answer = bytearray(encode(Frame(
            message, dest_type=request.src_type, dest_address=request.src_address,
            src_address=self.meter.address, sequence=request.sequence)))
        if garbage:
            answer[-1] ^= 0x5A
        # Over 4G an answer arrives in pieces: send it in two segments.
        cut = len(answer) // 2
        writer.write(bytes(answer[:cut]))
        await writer.drain()
        await asyncio.sleep(0.001)
        writer.write(bytes(answer[cut:]))
        await writer.drain()
        self.answers += 1


@dataclass
class EmliteSimulator:
    """Every simulated meter of a site, each listening on its device's host and port."""

    servers: dict[str, MeterServer]
    gauge: ConnectionGauge = field(default_factory=ConnectionGauge)
    _tcp: list[asyncio.Server] = field(default_factory=list)

    @classmethod
    def from_site(cls, ctx: SimContext) -> EmliteSimulator:
        now = ctx.clock.now()
        origin = align_down(now - timedelta(days=HISTORY_DAYS), HALF_HOUR_S)
        servers: dict[str, MeterServer] = {}
        for d in simulated_devices(ctx.site, ctx):
            faults = ctx.sim.faults.get(d.name, FaultConfig())
            seed = zlib.crc32(f"{ctx.sim.seed}:{d.name}".encode())
            meter = SimulatedMeter(
                name=d.name, twin=d.twin_element, seed=seed, origin=origin, address=seed & 0xFFFFFF,
                initial_balance_gbp=5 + (seed % 4000) / 100, clock_offset_s=faults.clock_offset_s)
            servers[d.name] = MeterServer(meter, ctx.clock, faults, ctx.rng(f"emlite:{d.name}"))
        gauge = ConnectionGauge()
        for server in servers.values():
            server.gauge = gauge
        return cls(servers, gauge)

    async def start(self, hosts: dict[str, tuple[str, int]]) -> None:
        for name, server in self.servers.items():
            host, port = hosts[name]
            self._tcp.append(await asyncio.start_server(server.handle, host, port))
        log.info("sim_emlite_started", meters=len(self.servers))

    async def close(self) -> None:
        await close_listeners(self._tcp, self.servers.values())


async def serve(ctx: SimContext) -> None:
    sim = EmliteSimulator.from_site(ctx)
    if not sim.servers:
        return
    hosts = {d.name: (d.host, d.port) for d in ctx.site.devices if d.name in sim.servers}
    ctx.shared["emlite"] = sim
    await sim.start(hosts)
    ctx.ready("emlite").set()
    try:
        await asyncio.Event().wait()
    finally:
        await sim.close()
