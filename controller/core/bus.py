"""In-process fan-out of readings, decisions and events.

Producers (pollers, the control loop) publish; consumers (state store, outbox writer, MQTT) each
get their own unbounded queue, so a slow consumer never blocks a poller and nothing is dropped here:
durability is the outbox's job, as soon as it takes the item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from controller.core.forecast import Forecast
from controller.core.reading import Reading

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Event:
    """Something an operator should know: an alert, a config apply/rollback, a dropped row."""

    time: datetime
    kind: str
    level: str  # Info, Warning, Error, Critical (the Flexmeter alert levels)
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What one control tick decided and why; `body` is the JSON-ready record."""

    time: datetime
    body: Mapping[str, Any]


class Topic(Generic[T]):
    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[T]] = []
        self._callbacks: list[Callable[[T], None]] = []

    def subscribe(self) -> asyncio.Queue[T]:
        q: asyncio.Queue[T] = asyncio.Queue()
        self._queues.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[T]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def on(self, callback: Callable[[T], None]) -> None:
        """Synchronous listener, called in publish order before any queue consumer runs."""
        self._callbacks.append(callback)

    def publish(self, item: T) -> None:
        for cb in self._callbacks:
            cb(item)
        for q in self._queues:
            q.put_nowait(item)


class Bus:
    def __init__(self) -> None:
        self.readings: Topic[Reading] = Topic()
        self.decisions: Topic[DecisionRecord] = Topic()
        self.events: Topic[Event] = Topic()
        # Refreshed at every settlement period by the forecast component (the planner reads it).
        self.forecasts: Topic[Forecast] = Topic()
