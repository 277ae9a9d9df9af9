"""CPU of one EMOP request on the client side: `EmopClient` as the daemon uses it, against raw `loop.sock_*`
calls in the same run (what a leaner round trip could reach).

    .venv/bin/python bench/bench_emop_request.py [--requests 2000] [--rounds 3]

A second process answers every object read with a fixed frame (so its CPU is not this process's); this
process makes `--requests` sequential `read_value` calls with no gap between connections and reports its
own CPU and wall time per request. A 54-home site makes about 3 requests a second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.core.clock import RealClock
from devices.emlite.client import BusyError, EmopClient
from devices.emlite.codec import Frame, ObjectAnswer, ObjectReadRequest, decode, encode, frame_size
from tests.helpers import free_port, wait_for_port

PAYLOAD = (1000).to_bytes(4, "little") * 4  # element registers: 4 x u32


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    buf = b""
    while (need := frame_size(buf)) is None or len(buf) < need:
        data = await reader.read(256)
        if not data:
            writer.close()
            return
        buf += data
    request = decode(buf)
    assert isinstance(request.message, ObjectReadRequest)
    writer.write(encode(Frame(ObjectAnswer(request.message.object_id, PAYLOAD), dest_type=request.src_type,
                              dest_address=request.src_address, sequence=request.sequence)))
    await writer.drain()
    writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


class RawSocketClient(EmopClient):
    """The same client with its round trip on raw non-blocking sockets: no transport, no protocol."""

    async def _round_trip(self, raw: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (self.host, self.port))
            await loop.sock_sendall(sock, raw)
            buf = b""
            while (need := frame_size(buf)) is None or len(buf) < need:
                data = await loop.sock_recv(sock, 512)
                if not data:
                    raise BusyError("closed without answer")
                buf += data
            return buf


async def measure(cls: type[EmopClient], port: int, n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per request."""
    client = cls("127.0.0.1", port, clock=RealClock(), link=asyncio.Semaphore(8), meter="bench", min_gap_s=0.0)
    await client.read_value(0xFFFFFC)
    cpu0, wall0 = sum(os.times()[:2]), time.monotonic()
    for _ in range(n):
        await client.read_value(0xFFFFFC)
    return (sum(os.times()[:2]) - cpu0) / n * 1000, (time.monotonic() - wall0) / n * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the answering process
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for_port("127.0.0.1", port, 30)
        cpu: dict[str, list[float]] = {"client": [], "raw": []}
        for _ in range(args.rounds):
            for name, cls in (("client", EmopClient), ("raw", RawSocketClient)):
                ms, wall = asyncio.run(measure(cls, port, args.requests))
                cpu[name].append(ms)
                label = "EmopClient" if name == "client" else "raw sock_*"
                print(f"{label:10}  CPU {ms:.3f} ms/request  wall {wall:.3f} ms", flush=True)
        client, raw = statistics.median(cpu["client"]), statistics.median(cpu["raw"])
        print(f"median: EmopClient {client:.3f} ms, raw sock_* {raw:.3f} ms (x{client / raw:.2f})")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
