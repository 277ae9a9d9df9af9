"""Builders shared by the uploader tests: site configs and readings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.config import SiteConfig
from controller.core.reading import Reading

BESS_ID = uuid.UUID("7b0d0c6e-5d2a-4c43-9a57-000000000001")
METER_ID = uuid.UUID("7b0d0c6e-5d2a-4c43-9a57-000000000002")
EMLITE_ID = uuid.UUID("7b0d0c6e-5d2a-4c43-9a57-000000000101")
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def site(buffer_dir: Path, sinks: list[dict[str, Any]] | None = None, **buffer: Any) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"id": "test", "name": "Test site"},
        "devices": [
            {"type": "powerpack", "name": "bess", "id": str(BESS_ID), "host": "127.0.0.1", "port": 15020,
             "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000},
            {"type": "acuvim2", "name": "site-meter", "id": str(METER_ID), "host": "127.0.0.1", "port": 15021},
        ],
        "buffer": {"path": str(buffer_dir / "{site}"), **buffer},
        "uploader": {"sinks": sinks or []},
    })


def bess(t: datetime, soe: float = 500.0, target: float = 0.0) -> Reading:
    return Reading(BESS_ID, "bess", "powerpack", t, {"soe_kwh": soe, "target_power_kw": target,
                                                      "command_source": "flux-edge"})


def meter(t: datetime, power: float = 42.0) -> Reading:
    return Reading(METER_ID, "site-meter", "acuvim2", t, {"power_total_active": power, "frequency": 50.0})


def minutes(n: int, start: datetime = T0) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(n)]
