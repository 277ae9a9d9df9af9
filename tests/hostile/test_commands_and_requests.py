"""Hostile MQTT commands and HTTP requests against the running daemon (issue 15, item 4): real Mosquitto,
real sockets, the simulated battery and site meter. Every MQTT command is answered (rejected, with a
one-line reason); every HTTP request gets a 4xx/5xx answer or a closed connection; 400 idle connections
are capped; and afterwards the control loop is still ticking and a good command is still accepted."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from controller.config import load_site
from controller.control_loop import ControlLoop
from controller.core.clock import RealClock
from controller.daemon import Daemon
from controller.ops.httpd import LISTENING, MAX_CONNECTIONS, HttpEndpoint
from controller.ops.provider import ops_components
from controller.wiring import control
from controller.wiring import devices as pollers
from simulator.modbus_devices import ModbusSite
from tests.helpers import eventually, free_port
from tests.hostile.test_site_files import bomb
from tests.ops.clients import subscriber
from tests.ops.conftest import site_dict

BOMB = bomb(9, 9)


def mqtt_payloads() -> list[bytes]:
    def cmd(**body: Any) -> bytes:
        return json.dumps({"eventId": f"h{len(out)}", **body}).encode()

    out: list[bytes] = []
    out += [b"[" * 400_000, b"{" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"\xff\xfe\x00",
            b"", b"null", b"[]", b"42", b'"str"', b"{" + b'"k": 1, ' * 100_000 + b"}", b"x" * 600_000,
            b'{"eventId": "' + b"e" * 10_000 + b'", "type": "clear_override"}', b'{"type": 1e400}',
            b'{"eventId": 1' + b"0" * 400 + b', "type": "clear_override"}', b'{"eventId": "n", "type": NaN}']
    out += [cmd(type="setpoint", kw="250", duration_s=60), cmd(type="setpoint", kw=True, duration_s=60),
            cmd(type="setpoint", kw=1e400, duration_s=60), cmd(type="setpoint", kw=None, duration_s=60),
            cmd(type="setpoint", kw=[250], duration_s=60), cmd(type="setpoint", kw=250, duration_s="60"),
            cmd(type="setpoint", kw=250, duration_s=-1), cmd(type="setpoint", kw=250, duration_s=0),
            cmd(type="setpoint", kw=250, duration_s=True), cmd(type="setpoint", kw=1e7, duration_s=60),
            cmd(type="setpoint", kw=250), cmd(type="setpoint", duration_s=60),
            cmd(type="dry_run", enabled="yes"), cmd(type="dry_run", enabled=1), cmd(type="dry_run", enabled="false"),
            cmd(type="dry_run"), cmd(type="mode", mode="", duration_s=60), cmd(type="mode", mode="x" * 1000,
                                                                               duration_s=60),
            cmd(type="mode", mode=["axle"], duration_s=60), cmd(type="mode", mode="no_such_mode", duration_s=60),
            cmd(type="reload", config=BOMB), cmd(type="reload", config="[" * 5000),
            cmd(type="reload", config="&a [*a]"), cmd(type="reload", config="x" * 300_000),
            cmd(type="reload", config=5), cmd(type="reload", config={"site": {}}),
            cmd(type="reload", config="site: {id: x, name: y, timezone: " + "A" * 6000 + "}"),
            cmd(type="backfill", since="yesterday"), cmd(type="backfill", since=5),
            cmd(type="clear_override", extra=1), cmd(type="self_destruct"), cmd(type=None), cmd(type=["setpoint"]),
            cmd(type="setpoint", kw=250, duration_s=60, source={"actor": "root"}),
            cmd(type="setpoint", kw=250, duration_s=60, source="x" * 1000)]
    return out


def http_requests(port: int) -> list[bytes]:
    host = f"127.0.0.1:{port}".encode()
    big = b"x" * 600_000
    out = [b"GARBAGE\r\n\r\n", b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
           b"GET /status HTTP/1.1\r\n\r\n",  # no Host header: h11 refuses it
           b"GET /status HTTP/1.1\r\nHost: " + host + b"\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
           b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
           b"POST /config/apply HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
           b"POST /config/apply HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
           b"POST /config/apply HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
           b"POST /config/apply HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
           b"POST /config/apply HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n" + big,
           b"POST /config/apply HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           b"POST /config/apply HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(big)).encode() + b"\r\n\r\n" + big,
           b"GET /status HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b"GET /status HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
           b"GET /status HTTP/1.1\r\nHo\x00st: x\r\n\r\n", b"\r\n" * 10_000,
           b"DELETE /config/apply HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"]
    for body in (BOMB.encode(), b"[" * 5000, b"&a [*a]", b"\xff\xfe", b"site: {id: x, name: y, timezone: " +
                 b"A" * 6000 + b"}"):
        out.append(b"POST /config/apply HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode()
                   + b"\r\n\r\n" + body)
    for i in range(5):  # half a request, then the client goes away
        out.append(b"POST /config/apply HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"y" * (i * 10))
    return out


async def send_raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
            writer.write_eof()
        with contextlib.suppress(ConnectionError):
            return await asyncio.wait_for(reader.read(), 30)
        return b""
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def test_hostile_commands_and_requests_leave_the_daemon_ticking(
        tmp_path: Path, mqtt_addr: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    mqtt_host, mqtt_port = mqtt_addr
    ports = {"bess": free_port(), "meter": free_port(), "admin": free_port()}
    prefix = f"hostile{ports['admin']}"
    site = site_dict(bess_port=ports["bess"], meter_port=ports["meter"],
                     ops={"admin": {"enabled": True, "port": ports["admin"]}},
                     mqtt={"host": mqtt_host, "port": mqtt_port, "topic_prefix": prefix,
                           "client_id": f"flux-edge-{prefix}"})
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    clock = RealClock()
    daemon = Daemon(str(path), clock, builders=[pollers, control, ops_components])
    base = f"{prefix}/testsite"
    async with ModbusSite(load_site(path).config, clock), subscriber(mqtt_host, mqtt_port, f"{base}/#") as sub:
        task = asyncio.create_task(daemon.run())
        try:
            await eventually(lambda: daemon.runtime is not None, timeout=30)
            runtime = daemon.runtime
            assert runtime is not None
            await eventually(lambda: runtime.services.mqtt is not None and runtime.services.mqtt.connected,
                             timeout=30)
            loop = runtime.services.control
            assert isinstance(loop, ControlLoop)

            payloads = mqtt_payloads()
            for payload in payloads:
                ack = await sub.command(base, payload, timeout=30)
                assert ack["request"]["status"] == "rejected", (payload[:80], ack)
                response = ack["request"]["response"]
                assert "\n" not in response and len(response) < 600, response[:200]
            assert runtime.overrides.manual_setpoint_kw is None and runtime.overrides.dry_run is None

            requests = http_requests(ports["admin"])
            for data in requests:
                answer = await send_raw(ports["admin"], data)
                if answer:
                    status = int(answer.split(b" ", 2)[1])
                    assert 400 <= status < 600, (data[:80], answer[:200])

            # 400 idle connections: capped, the rest turned away; the daemon keeps its descriptors.
            idle = [await asyncio.open_connection("127.0.0.1", ports["admin"]) for _ in range(400)]
            ticks = loop.ticks
            await eventually(lambda: loop.ticks > ticks + 2, timeout=30)
            for _, writer in idle:
                writer.close()
            await eventually(lambda: _admin(runtime).active == 0, timeout=30)
            assert _admin(runtime).refused >= 400 - MAX_CONNECTIONS

            async with httpx.AsyncClient() as client:
                status = await client.get(f"http://127.0.0.1:{ports['admin']}/status", timeout=30)
            assert status.status_code == 200 and isinstance(status.json(), dict)
            ticks = loop.ticks
            await eventually(lambda: loop.ticks > ticks + 1, timeout=30)
            ack = await sub.command(base, {"eventId": "good", "type": "clear_override"})
            assert ack["request"]["status"] == "accepted"
            print(f"hostile: {len(payloads)} MQTT commands, {len(requests)} HTTP requests, "
                  f"{_admin(runtime).refused} idle connections refused at the cap, control ticks {loop.ticks}")
        finally:
            daemon.request_stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 30)


def _admin(runtime: Any) -> HttpEndpoint:
    port = runtime.config.ops.admin.port
    return LISTENING[port]
