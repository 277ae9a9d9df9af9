"""The `emlite` kind: Emlite prepayment meters over EMOP/TCP, sharing a 4G router's sockets per link."""

from __future__ import annotations

from devices.emlite.config import EmliteConfig
from devices.emlite.driver import EmliteMeter
from devices.kind import CloudRoute, DeviceKind, Role, same_names

CLOUD = CloudRoute("mg_emlite_readings", same_names(
    "import_a_kwh", "export_a_kwh", "import_b_kwh", "export_b_kwh",
    "reactive_import_a_kvarh", "reactive_export_a_kvarh", "reactive_import_b_kvarh", "reactive_export_b_kvarh",
    "power_kw", "balance_gbp", "voltage_v", "signal_csq", "clock_drift_s"))

MEASUREMENTS: dict[str, str] = {
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

# Half-hourly profile logs on the meter: slots nobody recorded are read back from them.
KIND = DeviceKind(EmliteConfig, EmliteMeter, Role.OTHER, cloud=CLOUD, measurements=MEASUREMENTS, profile_log=True)
