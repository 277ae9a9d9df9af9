"""Device kind -> cloud table and columns (the compatibility rule of cloud.md)."""

from __future__ import annotations

import json
import uuid

from controller.core.bus import DecisionRecord, Event
from controller.core.reading import Reading
from devices.catalog import CLOUD_ROUTING
from tests.uploader.fixtures import BESS_ID, T0
from uploader.tables import METER, map_decision, map_event, map_reading, site_device_id

DEV = uuid.UUID("7b0d0c6e-5d2a-4c43-9a57-0000000000ff")


def test_battery_readings_use_the_reference_columns() -> None:
    row = map_reading(Reading(BESS_ID, "bess", "powerpack", T0, {"soe_kwh": 812.5, "target_power_kw": -100.0,
                                                                "command_source": "x", "available_blocks": 4}), CLOUD_ROUTING)
    assert row is not None and row.table == "mg_bess_readings"
    assert row.values == {"device_id": str(BESS_ID), "time": "2026-06-01T00:00:00+00:00", "soe": 812.5,
                          "target_power": -100.0}


def test_meter_fields_are_the_column_names_and_bad_values_become_null() -> None:
    fields = {c: 1.5 for c in METER.column_names}
    fields |= {"frequency": float("nan"), "power_total_active": "garbage", "power_factor_total": True}
    row = map_reading(Reading(DEV, "m", "acuvim2", T0, fields), CLOUD_ROUTING)
    assert row is not None and row.table == "mg_meter_readings"
    assert row.values["frequency"] is None and row.values["power_total_active"] is None
    assert row.values["power_factor_total"] is None and row.values["energy_exported_apparent"] == 1.5
    assert "NaN" not in row.body()


def test_emlite_and_heat_tables() -> None:
    emlite = map_reading(Reading(DEV, "e", "emlite", T0, {"import_a_kwh": 10, "signal_csq": 17}), CLOUD_ROUTING)
    assert emlite is not None and emlite.table == "mg_emlite_readings"
    assert emlite.values["import_a_kwh"] == 10.0 and emlite.values["export_b_kwh"] is None
    for kind in ("heat_mbus", "heat_modbus"):
        heat = map_reading(Reading(DEV, "h", kind, T0, {"energy_kwh": 5.0, "error_flags": 3.0}), CLOUD_ROUTING)
        assert heat is not None and heat.table == "mg_heat_readings" and heat.values["error_flags"] == 3
    assert map_reading(Reading(DEV, "x", "unknown_kind", T0, {}), CLOUD_ROUTING) is None


def test_decisions_are_filed_under_the_battery() -> None:
    row = map_decision(DecisionRecord(T0, {"target_kw": -150.0, "reason": "r", "inputs": {"x": float("inf")}}),
                       BESS_ID)
    assert row.table == "mg_controller_decisions" and row.key == str(BESS_ID)
    assert row.values["target_kw"] == -150.0 and json.loads(row.body())["body"]["inputs"] == {"x": None}


def test_event_ids_are_stable_and_content_derived() -> None:
    a = map_event(Event(T0, "outbox_full_dropped", "Critical", "m", {"rows": 3}), "demo")
    b = map_event(Event(T0, "outbox_full_dropped", "Critical", "m", {"rows": 3}), "demo")
    c = map_event(Event(T0, "outbox_full_dropped", "Critical", "m", {"rows": 4}), "demo")
    assert a.key == b.key != c.key
    assert a.values["device_id"] == str(site_device_id("demo")) and a.values["event_id"] == a.key


def test_plans_are_filed_under_the_site_and_keyed_by_plan_id() -> None:
    from uploader.tables import PLANS, map_plan, site_device_id

    plan = {"plan_id": "ab12", "created_at": "2026-06-03T12:00:00+00:00", "status": "optimal",
            "expected_value_gbp": 12.5, "periods": [{"start": "2026-06-03T12:00:00+00:00", "battery_kw": float("nan")}]}
    row = map_plan(plan, "demo")
    assert row.table == PLANS.name and row.key == "ab12"
    assert row.values["device_id"] == str(site_device_id("demo")) and row.values["inputs_hash"] == "ab12"
    assert row.values["periods"] == [{"start": "2026-06-03T12:00:00+00:00", "battery_kw": None}]
    assert PLANS.conflict == ("plan_id", "time")
