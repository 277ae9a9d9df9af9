"""The cloud's tables, and how readings, decisions and events become rows of them.

The battery and Acuvim tables are the field's existing ones (names and units fixed by the
dashboards that read them); everything else goes into flux-edge's own tables in the same schema.
Which table a device kind's readings go to, and which reading field fills which column, each kind
declares itself: the uploader receives it as `Routing` data. Rows are mapped once, when they enter
the outbox, so the outbox holds cloud-ready rows and every sink uploads the same thing.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from controller.core.bus import DecisionRecord, Event
from controller.core.clock import utc
from controller.core.forecast import Forecast
from controller.core.reading import Reading

ColumnType = Literal["real", "integer", "text", "jsonb"]

# Events carry no device: they are keyed by a per-site id and their own content-derived event_id.
EVENT_NAMESPACE = UUID("4f6c9a52-2a1e-4f8e-9a43-6a0c1f0e7d11")


@dataclass(frozen=True)
class CloudTable:
    name: str
    columns: tuple[tuple[str, ColumnType], ...]  # besides device_id and time
    conflict: tuple[str, ...] = ("device_id", "time")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    @property
    def all_columns(self) -> tuple[str, ...]:
        return ("device_id", "time", *self.column_names)


def _real(*names: str) -> tuple[tuple[str, ColumnType], ...]:
    return tuple((n, "real") for n in names)


BESS = CloudTable("mg_bess_readings", _real("soe", "target_power"))
METER = CloudTable("mg_meter_readings", _real(
    "frequency", "voltage_line_average", "current_phase_a", "current_phase_b", "current_phase_c",
    "current_phase_average", "power_phase_a_active", "power_phase_b_active", "power_phase_c_active",
    "power_total_active", "power_total_reactive", "power_total_apparent", "power_factor_total",
    "energy_imported_active", "energy_exported_active",
    "energy_imported_phase_a_active", "energy_imported_phase_b_active", "energy_imported_phase_c_active",
    "energy_exported_phase_a_active", "energy_exported_phase_b_active", "energy_exported_phase_c_active",
    "energy_imported_reactive", "energy_exported_reactive", "energy_imported_apparent", "energy_exported_apparent"))
EMLITE = CloudTable("mg_emlite_readings", _real(
    "import_a_kwh", "export_a_kwh", "import_b_kwh", "export_b_kwh",
    "reactive_import_a_kvarh", "reactive_export_a_kvarh", "reactive_import_b_kvarh", "reactive_export_b_kvarh",
    "power_kw", "balance_gbp", "voltage_v", "signal_csq", "clock_drift_s"))
HEAT = CloudTable("mg_heat_readings", (*_real(
    "energy_kwh", "volume_m3", "power_kw", "flow_m3h", "flow_temperature_c", "return_temperature_c",
    "temperature_difference_k"), ("error_flags", "integer")))
DECISIONS = CloudTable("mg_controller_decisions", (("target_kw", "real"), ("body", "jsonb")))
EVENTS = CloudTable("mg_controller_events", (
    ("event_id", "text"), ("kind", "text"), ("level", "text"), ("message", "text"), ("data", "jsonb")),
    conflict=("event_id", "time"))
# The planner's plans (migration 0004), filed under the site's id like events.
PLANS = CloudTable("mg_controller_plans", (
    ("plan_id", "text"), ("inputs_hash", "text"), ("status", "text"), ("expected_value_gbp", "real"),
    ("periods", "jsonb")), conflict=("plan_id", "time"))

# The forecasts the daemon makes (migration 0005), filed under the site's id, one row per forecast.
FORECASTS = CloudTable("mg_controller_forecasts", (
    ("body", "jsonb"), ("forecasters", "jsonb"), ("notes", "jsonb")))

TABLES: dict[str, CloudTable] = {t.name: t for t in (BESS, METER, EMLITE, HEAT, DECISIONS, EVENTS, PLANS,
                                                     FORECASTS)}
READING_TABLES = (BESS, METER, EMLITE, HEAT)

# device kind -> (name of one of READING_TABLES, reading field -> column)
Routing = Mapping[str, tuple[str, Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class CloudRow:
    """One row for one cloud table. `key` is the natural key besides time (device id, or event id)."""

    table: str
    key: str
    time: datetime
    values: Mapping[str, Any]  # every column of the table, device_id and time as ISO text

    def body(self) -> str:
        return json.dumps(self.values, separators=(",", ":"), allow_nan=False)


def reading_table(kind: str, routing: Routing) -> CloudTable | None:
    """The table readings of `kind` go to, or None for a kind that has no cloud table."""
    entry = routing.get(kind)
    return TABLES[entry[0]] if entry else None


def _coerce(value: Any, kind: ColumnType) -> Any:
    """A JSON-safe value for a column; anything unusable (NaN, wrong type) becomes null, never a failed batch."""
    if value is None:
        return None
    if kind == "real":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None
    if kind == "integer":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        return None
    if kind == "jsonb":
        return json_safe(value)
    return str(value)


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by null and anything exotic by its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def iso(t: datetime) -> str:
    return utc(t).isoformat()


def _row(table: CloudTable, key: str, device_id: str, time: datetime, values: Mapping[str, Any]) -> CloudRow:
    out: dict[str, Any] = {"device_id": device_id, "time": iso(time)}
    for column, kind in table.columns:
        out[column] = _coerce(values.get(column), kind)
    return CloudRow(table.name, key, utc(time), out)


def map_reading(reading: Reading, routing: Routing) -> CloudRow | None:
    """The cloud row of a reading, or None for a device kind that has no cloud table."""
    entry = routing.get(reading.kind)
    if entry is None:
        return None
    table_name, fields = entry
    table = TABLES[table_name]
    values = {column: reading.fields.get(field) for field, column in fields.items()}
    device_id = str(reading.device_id)
    return _row(table, device_id, device_id, reading.time, values)


def map_decision(record: DecisionRecord, battery_id: UUID) -> CloudRow:
    body = _coerce(dict(record.body), "jsonb")
    values = {"target_kw": record.body.get("target_kw"), "body": body}
    return _row(DECISIONS, str(battery_id), str(battery_id), record.time, values)


def map_plan(plan: Mapping[str, Any], site_id: str) -> CloudRow:
    """The cloud row of a plan as `flux-edge plan --json` prints it (its id is its inputs' hash)."""
    values = {"plan_id": plan["plan_id"], "inputs_hash": plan["plan_id"], "status": plan["status"],
              "expected_value_gbp": plan.get("expected_value_gbp"), "periods": plan.get("periods", [])}
    return _row(PLANS, str(plan["plan_id"]), str(site_device_id(site_id)),
                datetime.fromisoformat(str(plan["created_at"])), values)


def plan_of(event: Event) -> Mapping[str, Any] | None:
    """The `plan --json` body a `plan_made` event carries (controller.wiring.publish_plan), or None."""
    if event.kind != "plan_made":
        return None
    plan = event.data.get("plan")
    if not isinstance(plan, Mapping) or not all(k in plan for k in ("plan_id", "created_at", "status")):
        return None
    return plan


def map_forecast(forecast: Forecast, site_id: str) -> CloudRow:
    """The cloud row of a forecast: its `forecast --json` body, filed under the site's id at its made_at."""
    body = forecast.as_json()
    device_id = str(site_device_id(site_id))
    values = {"body": body, "forecasters": body["forecasters"], "notes": body["notes"]}
    return _row(FORECASTS, device_id, device_id, forecast.made_at, values)


def site_device_id(site_id: str) -> UUID:
    """The id events are filed under: stable per site, so one site's events stay together."""
    return uuid.uuid5(EVENT_NAMESPACE, f"site:{site_id}")


def map_event(event: Event, site_id: str) -> CloudRow:
    data = _coerce(dict(event.data), "jsonb")
    # Content-derived: the same event resent after a crash maps to the same id, so the upload stays idempotent.
    ident = json.dumps([iso(event.time), event.kind, event.level, event.message, data], sort_keys=True, default=str)
    event_id = str(uuid.uuid5(EVENT_NAMESPACE, ident))
    values = {"event_id": event_id, "kind": event.kind, "level": event.level, "message": event.message, "data": data}
    return _row(EVENTS, event_id, str(site_device_id(site_id)), event.time, values)
