"""Site files for the Emlite and heat-meter tests: simulated meters on free ports of 127.0.0.1."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import yaml

from controller.config import SiteConfig
from controller.config.loader import parse_site
from controller.core.clock import ScaledClock
from tests.helpers import free_port

SIM_START = datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC)


def scaled_clock(speed: float = 100.0) -> ScaledClock:
    return ScaledClock(SIM_START, speed)


_handed_out: set[int] = set()


def unique_port() -> int:
    """A free port not handed out before in this process (a site of 60 meters asks for many at once)."""
    while True:
        port = free_port()
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def emlite_device(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "emlite", "name": name, "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            "host": "127.0.0.1", "port": unique_port(), **extra}


def site(devices: list[dict[str, Any]], faults: dict[str, dict[str, Any]] | None = None,
         seed: int = 7) -> SiteConfig:
    doc = {"site": {"id": "test", "name": "test site"}, "devices": devices,
           "simulator": {"seed": seed, "faults": faults or {}}}
    return parse_site(yaml.safe_dump(doc), "<test>")
