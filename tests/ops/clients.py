"""Test-side clients of what the daemon serves: an MQTT subscriber that also sends commands, and a
Prometheus text parser."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import eventually


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class Subscriber:
    """A test-side MQTT client collecting everything under the site's topics."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.received: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()

    async def collect(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            try:
                body: Any = json.loads(payload)
            except (ValueError, RecursionError):  # hostile payloads echo back to us too
                body = payload.decode("utf-8", "replace")
            self.received.append((str(message.topic), body))
            self.arrived.set()

    def on(self, suffix: str) -> list[Any]:
        return [b for t, b in self.received if t.endswith(suffix)]

    async def wait_for(self, suffix: str, count: int = 1, timeout: float = 15.0) -> list[Any]:
        await eventually(lambda: len(self.on(suffix)) >= count, timeout)
        return self.on(suffix)

    async def command(self, base: str, body: Any, timeout: float = 15.0) -> dict[str, Any]:
        event_id = body.get("eventId") if isinstance(body, dict) else None
        before = len(self.on("/acks"))
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.client.publish(f"{base}/commands", payload, qos=1)
        if event_id is None:
            acks = await self.wait_for("/acks", before + 1, timeout)
            return dict(acks[before])
        await eventually(lambda: any(a["originatingEventId"] == event_id for a in self.on("/acks")), timeout)
        return next(a for a in self.on("/acks") if a["originatingEventId"] == event_id)


@contextlib.asynccontextmanager
async def subscriber(host: str, port: int, topic: str, **kwargs: Any) -> AsyncIterator[Subscriber]:
    async with aiomqtt.Client(host, port, **kwargs) as client:
        await client.subscribe(topic, qos=1)
        sub = Subscriber(client)
        task = asyncio.create_task(sub.collect())
        try:
            yield sub
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
