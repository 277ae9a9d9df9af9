"""Convert a site file of the reference Go controller into our site file (`flux-edge import-legacy`).

The reference's keys (see ../shared/spec/legacy-example.yaml): `meters.acuvim2`, `bess.powerPack`,
`dataPlatforms`, `axle`, and `controller.*` with its `controlComponents`. Periods there read
`days: weekdays:Europe/London`, `start: 16:00:00:Europe/London`; "23:59:59" means the end of the day;
volume cut-offs are in kWh (ours in MWh); every secret is the name of an environment variable
(ours: `${NAME}` in a secret field).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from controller.core.config import DEFAULT_TIMEZONE


class LegacyError(ValueError):
    """The file is not a reference site file we can convert; the message names the key."""


def _get(data: Any, path: str, default: Any = ..., at: str = "") -> Any:
    node = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            if default is ...:
                raise LegacyError(f"{at}.{path}: required" if at else f"{path}: required")
            return default
        node = node[key]
    return node


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "device"


def _host_port(value: Any, where: str, default_port: int = 502) -> tuple[str, int]:
    if not isinstance(value, str) or not value:
        raise LegacyError(f"{where}: expected host[:port]")
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return value, default_port


def _split_tz(value: Any, where: str) -> tuple[str, str]:
    """`weekdays:Europe/London` or `16:00:00:Europe/London` -> (value, timezone)."""
    if not isinstance(value, str):
        raise LegacyError(f"{where}: expected text like 'weekdays:Europe/London'")
    m = re.fullmatch(r"(.*?):([A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+|UTC)", value.strip())
    if m:
        return m.group(1), m.group(2)
    return value.strip(), DEFAULT_TIMEZONE


def _clock(value: Any, where: str) -> tuple[str, str]:
    text, tz = _split_tz(value, where)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
    if not m:
        raise LegacyError(f"{where}: expected HH:MM:SS[:timezone], got {value!r}")
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    if (h, mi, s) == (23, 59, 59):
        return "24:00", tz
    return (f"{h:02d}:{mi:02d}" if s == 0 else f"{h:02d}:{mi:02d}:{s:02d}"), tz


def period(p: Any, where: str) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise LegacyError(f"{where}: expected a period {{days, start, end}}")
    days, tz_days = _split_tz(p.get("days", "all"), f"{where}.days")
    start, tz_start = _clock(p.get("start"), f"{where}.start")
    end, tz_end = _clock(p.get("end"), f"{where}.end")
    if len({tz_days, tz_start, tz_end}) != 1:
        raise LegacyError(f"{where}: days, start and end name different timezones")
    day_list = [d.strip() for d in days.split(",")] if "," in days else days
    return {"days": day_list, "start": start, "end": end, "timezone": tz_start}


def periods(items: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise LegacyError(f"{where}: expected a list of periods")
    return [period(p, f"{where}.{i}") for i, p in enumerate(items)]


def prediction(p: Any, where: str) -> dict[str, Any]:
    if p is None:
        return {"allow_prediction": False, "volume_cutoff_mwh": 0, "time_cutoff_s": 0}
    if not isinstance(p, dict):
        raise LegacyError(f"{where}: expected {{allowPrediction, volumeCutoff, timeCutoffSecs}}")
    return {"allow_prediction": bool(p.get("allowPrediction", False)),
            "volume_cutoff_mwh": float(p.get("volumeCutoff", 0)) / 1000,  # kWh -> MWh
            "time_cutoff_s": float(p.get("timeCutoffSecs", 0))}


def rates(items: Any, where: str) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(items or []):
        if not isinstance(r, dict) or "rate" not in r:
            raise LegacyError(f"{where}.{i}: expected {{rate, periods}}")
        out.append({"rate": float(r["rate"]), "periods": periods(r.get("periods"), f"{where}.{i}.periods")})
    return out


def curve(c: Any, where: str) -> list[dict[str, float]]:
    points = c.get("points") if isinstance(c, dict) else None
    if not isinstance(points, list):
        raise LegacyError(f"{where}.points: expected a list of {{x, y}}")
    return [{"price": float(p["x"]), "soe_kwh": float(p["y"])} for p in points]


def _entries(cc: dict[str, Any], key: str) -> Iterable[tuple[str, dict[str, Any]]]:
    items = cc.get(key) or []
    if not isinstance(items, list):
        raise LegacyError(f"controller.controlComponents.{key}: expected a list")
    for i, item in enumerate(items):
        where = f"controller.controlComponents.{key}.{i}"
        if not isinstance(item, dict):
            raise LegacyError(f"{where}: expected a mapping")
        yield where, item


def modes(cc: dict[str, Any], has_axle: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if has_axle:
        out.append({"type": "axle"})
    for where, m in _entries(cc, "dischargeToSoe"):
        out.append({"type": "discharge_to_soe", "periods": periods(m.get("period"), f"{where}.period"),
                    "params": {"soe_kwh": float(_get(m, "soe", at=where))}})
    for where, m in _entries(cc, "dynamicPeakDischarge"):
        out.append({"type": "dynamic_peak_discharge", "periods": periods(m.get("period"), f"{where}.period"),
                    "params": {"target_soe_kwh": float(_get(m, "targetSoe", at=where)),
                               "prioritise_residual_load": bool(m.get("prioritiseResidualLoad", False)),
                               "target_short_periods": bool(m.get("targetShortPeriods", True)),
                               "short_prediction": prediction(m.get("shortPrediction"), f"{where}.shortPrediction")}})
    for where, m in _entries(cc, "nivChase"):
        niv = _get(m, "niv", at=where)
        pp = niv.get("pricePrediction") or {}
        out.append({"type": "niv_chase", "periods": periods(m.get("period"), f"{where}.period"),
                    "params": {"charge_curve": curve(niv.get("chargeCurve"), f"{where}.niv.chargeCurve"),
                               "discharge_curve": curve(niv.get("dischargeCurve"), f"{where}.niv.dischargeCurve"),
                               "curve_shift_long": float(niv.get("curveShiftLong", 0)),
                               "curve_shift_short": float(niv.get("curveShiftShort", 0)),
                               "default_pricing": rates(niv.get("defaultPricing"), f"{where}.niv.defaultPricing"),
                               "prediction": {
                                   "when_short": prediction(pp.get("whenShort"), f"{where}.pricePrediction.whenShort"),
                                   "when_long": prediction(pp.get("whenLong"), f"{where}.pricePrediction.whenLong")}}})
    for where, m in _entries(cc, "chargeToSoe"):
        out.append({"type": "charge_to_soe", "periods": periods(m.get("period"), f"{where}.period"),
                    "params": {"soe_kwh": float(_get(m, "soe", at=where))}})
    for where, m in _entries(cc, "dynamicPeakApproach"):
        out.append({"type": "dynamic_peak_approach", "periods": periods(m.get("peakPeriod"), f"{where}.peakPeriod"),
                    "params": {"to_soe_kwh": float(_get(m, "toSoe", at=where)),
                               "encourage_to_soe_kwh": float(m.get("encourageToSoe", _get(m, "toSoe", at=where))),
                               "assumed_charge_power_kw": float(_get(m, "assumedChargePower", at=where)),
                               "force_charge_duration_factor": float(m.get("forceChargeDurationFactor", 1)),
                               "encourage_charge_duration_factor": float(m.get("encourageChargeDurationFactor", 1)),
                               "charge_cushion_min": float(m.get("chargeCushionMins", 0)),
                               "long_prediction": prediction(m.get("longPrediction"), f"{where}.longPrediction")}})
    for key, kind in (("importAvoidance", "import_avoidance"), ("exportAvoidance", "export_avoidance")):
        plist = cc.get(key) or []
        if plist:
            out.append({"type": kind, "periods": periods(plist, f"controller.controlComponents.{key}")})
    for where, m in _entries(cc, "importAvoidanceWhenShort"):
        out.append({"type": "import_avoidance_when_short", "periods": periods(m.get("period"), f"{where}.period"),
                    "params": {"short_prediction": prediction(m.get("shortPrediction"), f"{where}.shortPrediction")}})
    return out


def _env(name: Any, where: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise LegacyError(f"{where}: expected the name of an environment variable")
    return "${" + name + "}"


def convert(data: Any, site_id: str = "imported", site_name: str | None = None) -> dict[str, Any]:
    """The reference site file (parsed YAML) as our site file (a dict ready to dump)."""
    if not isinstance(data, dict):
        raise LegacyError("(document): expected a mapping")
    devices: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # legacy id -> our device name
    used: set[str] = set()

    def name_for(wanted: str) -> str:
        base = slug(wanted)
        n, i = base, 2
        while n in used:
            n, i = f"{base}-{i}", i + 1
        used.add(n)
        return n

    for label, m in (_get(data, "meters.acuvim2", {}) or {}).items():
        where = f"meters.acuvim2.{label}"
        host, port = _host_port(_get(m, "host", at=where), f"{where}.host")
        name = name_for(str(label))
        names[str(_get(m, "id", at=where))] = name
        devices.append({"type": "acuvim2", "name": name, "id": str(_get(m, "id", at=where)), "host": host, "port": port,
                        "poll_interval_s": float(m.get("pollIntervalSecs", 60)),
                        **{k: float(m[k]) for k in ("pt1", "pt2", "ct1", "ct2") if k in m}})
    pp = _get(data, "bess.powerPack")
    host, port = _host_port(_get(pp, "host", at="bess.powerPack"), "bess.powerPack.host")
    battery = name_for("battery")
    names[str(_get(pp, "id", at="bess.powerPack"))] = battery
    tesla = pp.get("teslaOptions") or {}
    bess: dict[str, Any] = {"type": "powerpack", "name": battery, "id": str(_get(pp, "id", at="bess.powerPack")),
                            "host": host,
                            "port": port, "poll_interval_s": float(pp.get("pollIntervalSecs", 2)),
                            "nameplate_power_kw": float(_get(pp, "nameplatePower", at="bess.powerPack")),
                            "nameplate_energy_kwh": float(_get(pp, "nameplateEnergy", at="bess.powerPack"))}
    if "inverterRampRateUp" in tesla:
        bess["ramp_up_kw_per_s"] = float(tesla["inverterRampRateUp"])
    if "inverterRampRateDown" in tesla:
        bess["ramp_down_kw_per_s"] = float(tesla["inverterRampRateDown"])
    if "alwaysActive" in tesla:
        bess["always_active"] = bool(tesla["alwaysActive"])
    devices.insert(0, bess)

    c = _get(data, "controller")

    def device_name(key: str) -> str:
        ref = str(_get(c, key, at="controller"))
        if ref not in names:
            raise LegacyError(f"controller.{key}: no meter with id {ref}")
        return names[ref]

    has_axle = isinstance(data.get("axle"), dict)
    mode_list = modes(c.get("controlComponents") or {}, has_axle)
    controller: dict[str, Any] = {
        "site_meter": device_name("siteMeter"), "battery": battery,
        **({"battery_meter": device_name("bessMeter")} if c.get("bessMeter") else {}),
        "emulation": bool(_get(c, "emulation.bessIsEmulated", False)),
        "charge_efficiency": float(c.get("bessChargeEfficiency", 0.92)),
        "soe_min_kwh": float(_get(c, "bessSoeMin", at="controller")),
        "soe_max_kwh": float(_get(c, "bessSoeMax", at="controller")),
        "battery_charge_limit_kw": float(_get(c, "bessChargePowerLimit", at="controller")),
        "battery_discharge_limit_kw": float(_get(c, "bessDischargePowerLimit", at="controller")),
        "site_import_limit_kw": float(_get(c, "siteImportPowerLimit", at="controller")),
        "site_export_limit_kw": float(_get(c, "siteExportPowerLimit", at="controller")),
        "modes": mode_list,
        "import_rates": rates(c.get("ratesImport"), "controller.ratesImport"),
        "export_rates": rates(c.get("ratesExport"), "controller.ratesExport"),
    }
    market: dict[str, Any] = {}
    if any(m["type"] in ("niv_chase", "import_avoidance_when_short", "dynamic_peak_discharge",
                         "dynamic_peak_approach") for m in mode_list):
        market["modo"] = {"base_url": "https://api.modoenergy.com"}
    if has_axle:
        a = data["axle"]
        market["axle"] = {"base_url": str(_get(a, "host", at="axle")), "asset_id": str(_get(a, "assetId", at="axle")),
                          "username": _env(a.get("usernameEnvVar"), "axle.usernameEnvVar"),
                          "password": _env(a.get("passwordEnvVar"), "axle.passwordEnvVar")}
        for ours, theirs in (("telemetry_upload_interval_s", "telemetryUploadIntervalSecs"),
                             ("schedule_poll_interval_s", "schedulePollIntervalSecs")):
            if theirs in a:
                market["axle"][ours] = float(a[theirs])
    sinks = []
    for i, platform in enumerate(data.get("dataPlatforms") or []):
        sb = platform.get("supabase") if isinstance(platform, dict) else None
        if not isinstance(sb, dict):
            raise LegacyError(f"dataPlatforms.{i}: only supabase platforms are known")
        sink: dict[str, Any] = {"type": "postgrest", "name": "cloud" if i == 0 else f"cloud-{i + 1}",
                                "url": str(_get(sb, "url", at=f"dataPlatforms.{i}.supabase")),
                                "schema": str(sb.get("schema", "flux"))}
        if sb.get("anonKeyEnvVar"):
            sink["api_key"] = _env(sb["anonKeyEnvVar"], f"dataPlatforms.{i}.supabase.anonKeyEnvVar")
        if sb.get("userKeyEnvVar"):
            sink["bearer_token"] = _env(sb["userKeyEnvVar"], f"dataPlatforms.{i}.supabase.userKeyEnvVar")
        if "uploadIntervalSecs" in platform:
            sink["interval_s"] = float(platform["uploadIntervalSecs"])
        sinks.append(sink)
    tz = next((p["timezone"] for m in mode_list for p in m.get("periods", [])), DEFAULT_TIMEZONE)
    out: dict[str, Any] = {"site": {"id": site_id, "name": site_name or site_id, "timezone": tz},
                           "devices": devices, "controller": controller}
    if market:
        out["market"] = market
    if sinks:
        out["uploader"] = {"sinks": sinks}
    return out


def site_id_from(path: str | Path) -> str:
    s = slug(Path(path).stem)[:63]
    return s if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", s) else "imported"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Clock times must stay strings: YAML 1.1 would read an unquoted 16:00 as the number 960.
    style = '"' if re.fullmatch(r"[\d:]+", value) or value.startswith("${") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(site: dict[str, Any], source: str) -> str:
    head = (f"# Converted by `flux-edge import-legacy` from {source}.\n"
            "# Secrets are ${ENV_NAME} references resolved when the file loads.\n")
    return head + yaml.dump(site, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
