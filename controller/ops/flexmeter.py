"""Flexmeter JSON messages: measurements, alerts and acknowledgements as the MQTT side expects them.

Measurement identifiers are dotted names by quantity; each device kind maps its reading fields to
them (`devices/<kind>/kind.py`, collected in the catalog). Signed quantities keep our sign
conventions (site power + import, battery + discharge). A numeric field without an entry is still
sent, as `flux.<kind>.<field>`, rather than dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller.core.bus import Event
from controller.core.clock import utc
from controller.core.reading import Reading
from devices.catalog import MEASUREMENT_IDS

ALERT_LEVELS = ("Info", "Warning", "Error", "Critical")


def iso(t: datetime) -> str:
    return utc(t).isoformat().replace("+00:00", "Z")


def measurement_id(kind: str, field: str) -> str:
    return MEASUREMENT_IDS.get(kind, {}).get(field) or f"flux.{kind}.{field}"


def measurements(reading: Reading) -> dict[str, Any]:
    """`DeviceMeasurements` for one reading; non-numeric and non-finite fields are left out."""
    values: dict[str, float] = {}
    for name, value in reading.fields.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        values[measurement_id(reading.kind, name)] = value
    return {
        "hardwareId": str(reading.device_id),
        "type": "DeviceMeasurements",
        "request": {"measurements": values, "eventDate": iso(reading.time),
                    "metadata": {"device": reading.device, "kind": reading.kind}},
    }


def alert(event: Event, hardware_id: str) -> dict[str, Any]:
    """`hardware_id`: the device the event is about, or the site's id for site-wide events."""
    level = event.level if event.level in ALERT_LEVELS else "Info"
    return {
        "hardwareId": hardware_id,
        "type": "DeviceAlert",
        "request": {"type": event.kind, "level": level, "message": event.message, "eventDate": iso(event.time),
                    "metadata": _plain(event.data)},
    }


def acknowledgement(site_id: str, event_id: str | None, status: str, response: str, at: datetime,
                    **extra: Any) -> dict[str, Any]:
    return {
        "hardwareId": site_id,
        "type": "Acknowledgement",
        "originatingEventId": event_id,
        "request": {"originatingEventId": event_id, "status": status, "response": response,
                    "eventDate": iso(at), **_plain(extra)},
    }


def _plain(value: Any) -> Any:
    """JSON-safe copy: datetimes as ISO text, anything unknown as its str()."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
