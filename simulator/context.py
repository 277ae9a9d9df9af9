"""What every simulated subsystem is given: the site file, the clock, per-name random streams, shared state."""

from __future__ import annotations

import asyncio
import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from controller.config import SiteConfig
from controller.core.clock import Clock
from simulator.config import SimulatorConfig


@dataclass
class SimContext:
    site: SiteConfig
    clock: Clock
    shared: dict[str, Any] = field(default_factory=dict)
    started: dict[str, asyncio.Event] = field(default_factory=dict)

    @property
    def sim(self) -> SimulatorConfig:
        return self.site.simulator or SimulatorConfig()

    def rng(self, name: str) -> random.Random:
        """A random stream of its own per name: deterministic for the site's seed."""
        return random.Random((self.sim.seed << 32) ^ zlib.crc32(name.encode()))

    def simulated(self, device_name: str) -> bool:
        names = self.sim.devices
        return names is None or device_name in names

    def ready(self, name: str) -> asyncio.Event:
        return self.started.setdefault(name, asyncio.Event())
