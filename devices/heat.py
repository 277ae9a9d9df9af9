"""What both heat-meter kinds (M-Bus and Modbus) record alike: the fields, their cloud table, their MQTT ids."""

from __future__ import annotations

from devices.kind import CloudRoute, same_names

HEAT_FIELDS = (
    "energy_kwh", "volume_m3", "power_kw", "flow_m3h",
    "flow_temperature_c", "return_temperature_c", "temperature_difference_k", "error_flags",
)

HEAT_CLOUD = CloudRoute("mg_heat_readings", same_names(*HEAT_FIELDS))

HEAT_MEASUREMENTS: dict[str, str] = {
    "energy_kwh": "heating.energy",
    "volume_m3": "heating.volume",
    "power_kw": "heating.power",
    "flow_m3h": "heating.flow",
    "flow_temperature_c": "heating.temperature.flow",
    "return_temperature_c": "heating.temperature.return",
    "temperature_difference_k": "heating.temperature.difference",
    "error_flags": "heating.errors",
}
