"""Flexmeter JSON messages: measurements, alerts and acknowledgements as the MQTT side expects them.

Measurement identifiers are dotted names by quantity; the tables map our reading fields to them per
device kind. Signed quantities keep our sign conventions (site power + import, battery + discharge).
A numeric field without an entry is still sent, as `flux.<kind>.<field>`, rather than dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller.core.bus import Event
from controller.core.clock import utc
from controller.core.reading import Reading

_PHASES = {"a": "l1", "b": "l2", "c": "l3"}

ACUVIM2: dict[str, str] = {
    "frequency": "electricity.frequency",
    "voltage_line_average": "electricity.voltage.average",
    "current_phase_average": "electricity.current.average",
    "power_total_active": "electricity.power.active.consumed.total",
    "power_total_reactive": "electricity.power.reactive.consumed.total",
    "power_total_apparent": "electricity.power.apparent.total",
    "power_factor_total": "electricity.powerfactor.total",
    "energy_imported_active": "electricity.energy.active.consumed.total",
    "energy_exported_active": "electricity.energy.active.produced.total",
    "energy_imported_reactive": "electricity.energy.reactive.consumed.total",
    "energy_exported_reactive": "electricity.energy.reactive.produced.total",
    "energy_imported_apparent": "electricity.energy.apparent.consumed.total",
    "energy_exported_apparent": "electricity.energy.apparent.produced.total",
    **{f"current_phase_{p}": f"electricity.current.{line}" for p, line in _PHASES.items()},
    **{f"power_phase_{p}_active": f"electricity.power.active.consumed.{line}" for p, line in _PHASES.items()},
    **{f"energy_imported_phase_{p}_active": f"electricity.energy.active.consumed.{ln}" for p, ln in _PHASES.items()},
    **{f"energy_exported_phase_{p}_active": f"electricity.energy.active.produced.{ln}" for p, ln in _PHASES.items()},
}

EMLITE: dict[str, str] = {
    "power_kw": "electricity.power.active.consumed.total",
    "voltage_v": "electricity.voltage.average",
    "balance_gbp": "prepayment.balance",
    "signal_csq": "modem.signal.csq",
    "clock_drift_s": "device.clock.drift",
    **{f"import_{e}_kwh": f"electricity.energy.active.consumed.{e}" for e in ("a", "b")},
    **{f"export_{e}_kwh": f"electricity.energy.active.produced.{e}" for e in ("a", "b")},
    **{f"reactive_import_{e}_kvarh": f"electricity.energy.reactive.consumed.{e}" for e in ("a", "b")},
    **{f"reactive_export_{e}_kvarh": f"electricity.energy.reactive.produced.{e}" for e in ("a", "b")},
}

HEAT: dict[str, str] = {
    "energy_kwh": "heating.energy",
    "volume_m3": "heating.volume",
    "power_kw": "heating.power",
    "flow_m3h": "heating.flow",
    "flow_temperature_c": "heating.temperature.flow",
    "return_temperature_c": "heating.temperature.return",
    "temperature_difference_k": "heating.temperature.difference",
    "error_flags": "heating.errors",
}

POWERPACK: dict[str, str] = {
    "soe_kwh": "battery.energy.stored",
    "target_power_kw": "battery.power.active.setpoint",
    "available_blocks": "battery.blocks.available",
}

MEASUREMENT_IDS: dict[str, dict[str, str]] = {
    "acuvim2": ACUVIM2,
    "emlite": EMLITE,
    "heat_mbus": HEAT,
    "heat_modbus": HEAT,
    "powerpack": POWERPACK,
}

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
