"""A pymodbus TCP server whose registers come from live objects, with per-unit fault injection.

Several simulated devices may share one host:port under different unit ids (as behind a gateway).
Each unit is a `RegisterBank`: readable blocks of holding registers, refreshed from the physical model
before every read, with a hook that sees every write. Faults are drawn per request from the unit's
`FaultConfig`: added latency (on the simulator's clock), a dropped connection, no answer at all, an
exception response, or random register contents.

Built on the pymodbus 3.15 server datastore API (`ModbusServerContext`'s async get/set values), which
is why pymodbus is pinned below 3.16.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from controller.core.clock import Clock
from controller.core.logs import get_logger
from simulator.config import FaultConfig

log = get_logger("simulator.modbus")

READ_CODES = frozenset({3, 6, 16, 23})  # writes read back through getValues too
WRITE_CODES = frozenset({6, 16, 23})

_garbage: contextvars.ContextVar[random.Random | None] = contextvars.ContextVar("garbage", default=None)

WriteHook = Callable[[int, list[int]], None]


class RegisterBank:
    """Holding registers of one device: only the declared blocks answer, anything else is an illegal address."""

    def __init__(self, blocks: list[tuple[int, int]], writable: list[tuple[int, int]] | None = None) -> None:
        self.registers: dict[int, int] = {}
        self._readable = list(blocks) + list(writable or [])
        self._writable = list(writable or [])
        self.on_write: list[WriteHook] = []

    @staticmethod
    def _inside(blocks: list[tuple[int, int]], address: int, count: int) -> bool:
        return any(start <= address and address + count <= start + n for start, n in blocks)

    def refresh(self) -> None:
        """Bring the registers up to date before a read (dynamic banks override this)."""

    def set(self, address: int, words: list[int]) -> None:
        for i, w in enumerate(words):
            self.registers[address + i] = w & 0xFFFF

    def read(self, address: int, count: int) -> list[int] | None:
        if not self._inside(self._readable, address, count):
            return None
        self.refresh()
        return [self.registers.get(address + i, 0) for i in range(count)]

    def write(self, address: int, values: list[int]) -> bool:
        if not self._inside(self._writable, address, len(values)):
            return False
        self.set(address, values)
        for hook in self.on_write:
            hook(address, list(values))
        return True


class Faults:
    """Per-request fault draws for one unit; `config` may be swapped at run time (a test heals a device)."""

    def __init__(self, config: FaultConfig | None, rng: random.Random) -> None:
        self.config = config or FaultConfig()
        self.rng = rng
        self.counts: dict[str, int] = {}

    def latency(self) -> float:
        c = self.config
        return max(0.0, c.latency_s + (self.rng.uniform(-1.0, 1.0) * c.latency_jitter_s if c.latency_jitter_s else 0.0))

    def draw(self) -> str:
        c = self.config
        for name, p in (("drop", c.drop_probability), ("timeout", c.timeout_probability),
                        ("exception", c.exception_probability), ("garbage", c.garbage_probability)):
            if p > 0 and self.rng.random() < p:
                self.counts[name] = self.counts.get(name, 0) + 1
                return name
        return "ok"


@dataclass
class SimUnit:
    name: str
    bank: RegisterBank
    faults: Faults
    requests: int = 0
    writes: list[tuple[int, list[int]]] = field(default_factory=list)


class _Context(ModbusServerContext):
    """Routes the server's datastore calls to the units; does not call the base __init__ (its
    deprecation notice is for the static data blocks, which we do not use)."""

    def __init__(self, units: dict[int, SimUnit]) -> None:
        self.old_simulator = True
        self.simdevices = []
        self._units = units

    async def async_getValues(self, device_id: int, func_code: int, address: int,
                              count: int = 1) -> list[int] | ExcCodes:
        unit = self._units.get(device_id)
        if unit is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if func_code not in READ_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        values = unit.bank.read(address, count)
        if values is None:
            return ExcCodes.ILLEGAL_ADDRESS
        rng = _garbage.get()
        if rng is not None and func_code == 3:
            values = [_garbage_word(rng) for _ in values]
        return values

    async def async_setValues(self, device_id: int, func_code: int, address: int,
                              values: list[int] | list[bool]) -> ExcCodes | None:
        unit = self._units.get(device_id)
        if unit is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if func_code not in WRITE_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        words = [int(v) for v in values]
        if not unit.bank.write(address, words):
            return ExcCodes.ILLEGAL_ADDRESS
        unit.writes.append((address, words))
        return None

    def device_ids(self) -> list[int]:
        return list(self._units)


def _garbage_word(rng: random.Random) -> int:
    # Mostly uniform noise, with the classic bad patterns (NaN, all ones) over-represented.
    r = rng.random()
    if r < 0.2:
        return 0x7FC0
    if r < 0.35:
        return 0xFFFF
    return rng.randrange(0x10000)


class _Handler(ServerRequestHandler):
    server: _Server

    async def handle_request(self) -> None:
        pdu = self.last_pdu
        if not pdu:
            return
        owner = self.server.owner
        unit = owner.units.get(pdu.dev_id)
        if unit is None:
            await super().handle_request()  # type: ignore[no-untyped-call]
            return
        unit.requests += 1
        delay = unit.faults.latency()
        if delay > 0:
            await owner.clock.sleep(delay)
        fault = unit.faults.draw()
        if fault == "drop":
            self.close()
            return
        if fault == "timeout":
            return
        if fault == "exception":
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_BUSY)
            response.transaction_id = pdu.transaction_id
            response.dev_id = pdu.dev_id
            self.server_send(response, self.last_addr)  # type: ignore[no-untyped-call]
            return
        self.last_pdu = pdu
        token = _garbage.set(unit.faults.rng if fault == "garbage" else None)
        try:
            await super().handle_request()  # type: ignore[no-untyped-call]
        finally:
            _garbage.reset(token)


class _Server(ModbusTcpServer):
    def __init__(self, owner: ModbusSimServer) -> None:
        self.owner = owner
        super().__init__(_Context(owner.units), address=(owner.host, owner.port))

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)  # type: ignore[no-untyped-call]


class ModbusSimServer:
    """One listening socket serving one or more units."""

    def __init__(self, host: str, port: int, clock: Clock, units: dict[int, SimUnit] | None = None) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.units: dict[int, SimUnit] = units or {}
        self._server: _Server | None = None

    async def start(self) -> None:
        self._server = _Server(self)
        await self._server.serve_forever(background=True)
        log.info("modbus_sim_listening", host=self.host, port=self.port,
                 units={uid: u.name for uid, u in self.units.items()})

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
            # Let the transports' close callbacks run so the port is free on return.
            await asyncio.sleep(0)

    async def __aenter__(self) -> ModbusSimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
