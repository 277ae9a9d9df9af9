"""Flexmeter messages: every agreed reading field has a dotted identifier; the JSON shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import pytest

from controller.core.bus import Event
from controller.core.reading import Reading
from controller.ops import flexmeter

PHASES = ("a", "b", "c")
AGREED = {
    "powerpack": ["soe_kwh", "target_power_kw", "available_blocks"],
    "acuvim2": ["frequency", "voltage_line_average", *(f"current_phase_{p}" for p in PHASES),
                "current_phase_average", *(f"power_phase_{p}_active" for p in PHASES), "power_total_active",
                "power_total_reactive", "power_total_apparent", "power_factor_total", "energy_imported_active",
                "energy_exported_active", *(f"energy_{d}_phase_{p}_active" for d in ("imported", "exported")
                                            for p in PHASES),
                "energy_imported_reactive", "energy_exported_reactive"],
    "emlite": ["import_a_kwh", "export_a_kwh", "import_b_kwh", "export_b_kwh", "reactive_import_a_kvarh",
               "reactive_export_a_kvarh", "reactive_import_b_kvarh", "reactive_export_b_kvarh", "power_kw",
               "balance_gbp", "voltage_v", "signal_csq", "clock_drift_s"],
    "heat_mbus": ["energy_kwh", "volume_m3", "power_kw", "flow_m3h", "flow_temperature_c", "return_temperature_c",
                  "temperature_difference_k", "error_flags"],
}
AGREED["heat_modbus"] = AGREED["heat_mbus"]


@pytest.mark.parametrize("kind", sorted(AGREED))
def test_every_agreed_field_has_a_dotted_identifier(kind: str) -> None:
    ids = [flexmeter.measurement_id(kind, f) for f in AGREED[kind]]
    assert not [f for f, i in zip(AGREED[kind], ids, strict=True) if i.startswith("flux.")]
    assert len(set(ids)) == len(ids)  # no two fields of a kind collide


def test_examples_from_the_issue() -> None:
    assert flexmeter.measurement_id("acuvim2", "power_total_active") == "electricity.power.active.consumed.total"
    assert flexmeter.measurement_id("heat_mbus", "energy_kwh") == "heating.energy"
    assert flexmeter.measurement_id("emlite", "power_kw") == "electricity.power.active.consumed.total"
    assert flexmeter.measurement_id("heat_modbus", "power_kw") == "heating.power"  # same field, other kind
    assert flexmeter.measurement_id("acuvim2", "new_register") == "flux.acuvim2.new_register"  # not dropped


def test_message_shapes_are_json() -> None:
    t = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    device = UUID("7b0d0c6e-5d2a-4c43-9a57-000000000201")
    m = flexmeter.measurements(Reading(device, "heat", "heat_mbus", t,
                                       {"energy_kwh": 10, "error_flags": 0, "note": "x", "flow_m3h": float("inf")}))
    assert json.loads(json.dumps(m)) == {
        "hardwareId": str(device), "type": "DeviceMeasurements",
        "request": {"measurements": {"heating.energy": 10, "heating.errors": 0}, "eventDate": "2026-03-29T00:59:00Z",
                    "metadata": {"device": "heat", "kind": "heat_mbus"}}}
    a = flexmeter.alert(Event(t, "config_rolled_back", "Shout", "rolled back", {"at": t, "why": {1, 2}}), "site")
    assert a["type"] == "DeviceAlert" and a["hardwareId"] == "site"
    assert a["request"]["level"] == "Info"  # unknown levels are not passed on
    assert json.loads(json.dumps(a))["request"]["metadata"]["at"] == "2026-03-29T00:59:00Z"
    ack = flexmeter.acknowledgement("site", "e1", "rejected", "why", t)
    assert (ack["type"], ack["originatingEventId"], ack["request"]["response"]) == ("Acknowledgement", "e1", "why")
