"""What a part hands the daemon to run: a named, supervised task and the slice of config it depends on.

Parts return these from their `components(...)` functions; the composition root collects them and
the daemon starts, restarts on reload and stops them in `stop_order`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controller.core.supervisor import Backoff

# Stop order: lower stops first.
STOP_WATCHDOG = 0  # first, so systemd hears STOPPING=1 as shutdown begins
STOP_POLLERS = 10
STOP_CONTROL = 20
STOP_MARKET = 30
STOP_OUTBOX = 40
STOP_UPLOAD = 50
STOP_OPS = 60


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    key: Any  # hashable/comparable slice of the config; a change restarts the component
    factory: Callable[[], Awaitable[None]]
    critical: bool = False
    stop_order: int = STOP_OPS
    backoff: Backoff = field(default_factory=Backoff)
