"""Bad answers from a meter over real TCP: a raw server sends exactly the bytes under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from controller.config import SiteConfig
from controller.core.clock import align_down
from devices.base import DeviceError
from devices.emlite.client import EmopClient
from devices.emlite.codec import (
    Frame,
    FrameError,
    ObjectAnswer,
    ObjectId,
    decode,
    encode,
    encode_value,
    frame_size,
)
from devices.emlite.config import EmliteConfig
from devices.emlite.driver import EmliteMeter
from devices.links import DeviceLinks
from tests.devices.sim_sites import emlite_device, scaled_clock, site

Answer = Callable[[Frame], bytes]


def good(request: Frame) -> bytes:
    assert hasattr(request.message, "object_id")
    oid = request.message.object_id
    return encode(Frame(ObjectAnswer(oid, encode_value(oid, 230)), dest_address=request.src_address,
                        sequence=request.sequence))


class RawMeter:
    """Answers each request with `answer(request)`, written in one piece, then closes."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readexactly(2)
            size = frame_size(head)
            assert size is not None
            request = decode(head + await reader.readexactly(size - 2))
            self.requests += 1
            writer.write(self.answer(request))
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], asyncio.Future[tuple[RawMeter, EmopClient]]]]:
    servers: list[asyncio.Server] = []
    clock = scaled_clock()

    async def start(answer: Answer) -> tuple[RawMeter, EmopClient]:
        meter = RawMeter(answer)
        server = await asyncio.start_server(meter.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        client = EmopClient("127.0.0.1", port, clock=clock, link=DeviceLinks().emop_link("x", 4), meter="raw",
                            timeout_s=2.0)
        return meter, client

    yield start  # type: ignore[misc]
    for s in servers:
        s.close()


@pytest.mark.parametrize("damage, reason", [
    (lambda raw: raw[: len(raw) // 2], "truncated"),
    (lambda raw: raw + b"\x7e\x00\x01", "oversized"),
    (lambda raw: b"\x00" + raw[1:], "delimiter"),
    (lambda raw: raw[:1] + b"\x05" + raw[2:], "length"),
    (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "crc"),
])
async def test_damaged_answers_are_rejected_counted_and_retried_once(
        serve: Callable[[Answer], asyncio.Future[tuple[RawMeter, EmopClient]]],
        damage: Callable[[bytes], bytes], reason: str) -> None:
    meter, client = await serve(lambda req: damage(good(req)))
    with pytest.raises(FrameError) as err:
        await client.read_value(ObjectId.VOLTAGE)
    assert err.value.reason == reason
    assert client.counters[f"frame_{reason}"] == 2 and client.counters["retries"] == 1
    assert meter.requests == 2


async def test_answer_with_the_wrong_sequence_or_address_is_not_taken(
        serve: Callable[[Answer], asyncio.Future[tuple[RawMeter, EmopClient]]]) -> None:
    def stale(req: Frame) -> bytes:
        return encode(Frame(ObjectAnswer(ObjectId.VOLTAGE, b"\x01\x00"), dest_address=req.src_address,
                            sequence=req.sequence ^ 1))
    _, client = await serve(stale)
    with pytest.raises(FrameError, match="mismatch"):
        await client.read_value(ObjectId.VOLTAGE)
    assert client.counters["frame_mismatch"] == 2


async def test_answer_for_another_object_is_not_taken(
        serve: Callable[[Answer], asyncio.Future[tuple[RawMeter, EmopClient]]]) -> None:
    def other(req: Frame) -> bytes:
        return encode(Frame(ObjectAnswer(ObjectId.POWER_TOTAL, b"\x01\x00"), dest_address=req.src_address,
                            sequence=req.sequence))
    _, client = await serve(other)
    with pytest.raises(FrameError, match="mismatch"):
        await client.read_value(ObjectId.VOLTAGE)


async def test_wrong_value_size_is_a_bad_value(
        serve: Callable[[Answer], asyncio.Future[tuple[RawMeter, EmopClient]]]) -> None:
    def short(req: Frame) -> bytes:
        return encode(Frame(ObjectAnswer(ObjectId.PREPAY_BALANCE, b"\x01"), dest_address=req.src_address,
                            sequence=req.sequence))
    _, client = await serve(short)
    with pytest.raises(FrameError) as err:
        await client.read_value(ObjectId.PREPAY_BALANCE)
    assert err.value.reason == "value" and client.counters["frame_value"] == 1


async def test_driver_turns_garbage_into_a_device_error_never_a_crash() -> None:
    clock = scaled_clock()

    async def noise(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)
        writer.write(b"\x7e\xff" + bytes(range(200)))
        writer.close()

    server = await asyncio.start_server(noise, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        site_config: SiteConfig = site([emlite_device("m", port=port)])
        config = site_config.device("m")
        assert isinstance(config, EmliteConfig)
        driver = EmliteMeter(config, clock, DeviceLinks())
        slot = align_down(clock.now(), 60)
        for i in range(2):
            with pytest.raises(DeviceError):
                await driver.poll(slot + timedelta(minutes=i))
        assert driver.health.extra["frame_truncated"] >= 2
    finally:
        server.close()
