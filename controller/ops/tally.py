"""The newest decision and how often each constraint bound a tick, from the bus's decisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from controller.core.bus import Bus, DecisionRecord


class DecisionTally:
    def __init__(self) -> None:
        self.last: Mapping[str, Any] | None = None
        self.ticks = 0
        self.constraints: Counter[str] = Counter()

    def observe(self, record: DecisionRecord) -> None:
        self.last = record.body
        self.ticks += 1
        constraints = record.body.get("constraints")
        if isinstance(constraints, list | tuple):
            self.constraints.update(str(c) for c in constraints)

    async def run(self, bus: Bus) -> None:
        queue = bus.decisions.subscribe()
        try:
            while True:
                self.observe(await queue.get())
        finally:
            bus.decisions.unsubscribe(queue)
