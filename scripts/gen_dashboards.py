"""Writes the Grafana dashboards for the cloud schema (`grafana/dashboards/*.json`) from the panel
definitions below (`make docs`). Every panel's SQL is run against the schema `flux-edge cloud migrate`
creates by tests/uploader/test_dashboards.py, so a renamed column breaks the build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "grafana" / "dashboards"
DS = {"type": "grafana-postgresql-datasource", "uid": "flux-cloud"}

# Devices of the chosen site, by kind (`mg_device_registry.type` is the device kind).
SITE_DEVICES = "SELECT device_id FROM flux.mg_device_registry WHERE site = '$site'"


def devices(kind: str) -> str:
    return f"SELECT device_id, name FROM flux.mg_device_registry WHERE site = '$site' AND type = '{kind}'"


def ts(title: str, sql: str, unit: str = "kwatt", w: int = 12, h: int = 8) -> dict[str, Any]:
    return {"type": "timeseries", "title": title, "datasource": DS, "fieldConfig": {"defaults": {"unit": unit},
            "overrides": []}, "targets": [{"refId": "A", "datasource": DS, "format": "time_series",
                                          "rawQuery": True, "editorMode": "code", "rawSql": sql}],
            "gridPos": {"w": w, "h": h}}


def stat(title: str, sql: str, unit: str = "kwatth", w: int = 6, h: int = 4) -> dict[str, Any]:
    p = ts(title, sql, unit, w, h)
    p["type"] = "stat"
    p["targets"][0]["format"] = "table"
    return p


def table(title: str, sql: str, w: int = 24, h: int = 9) -> dict[str, Any]:
    p = ts(title, sql, "none", w, h)
    p["type"] = "table"
    p["targets"][0]["format"] = "table"
    return p


def counter_delta(table_name: str, column: str, kind: str) -> str:
    """Energy over the range from a cumulative register: max - min per device, summed."""
    return (f"SELECT sum(d) AS value FROM (SELECT max(m.{column}) - min(m.{column}) AS d FROM flux.{table_name} m "
            f"JOIN ({devices(kind)}) r USING (device_id) WHERE $__timeFilter(m.time) GROUP BY m.device_id) x")


SITE_METER_POWER = (
    "SELECT $__timeGroupAlias(m.time, $__interval), r.name AS metric, avg(m.power_total_active) AS value "
    f"FROM flux.mg_meter_readings m JOIN ({devices('acuvim2')}) r USING (device_id) "
    "WHERE $__timeFilter(m.time) GROUP BY 1, 2 ORDER BY 1")
SOE = ("SELECT $__timeGroupAlias(b.time, $__interval), avg(b.soe) AS \"SoE\" FROM flux.mg_bess_readings b "
       f"WHERE b.device_id IN ({SITE_DEVICES}) AND $__timeFilter(b.time) GROUP BY 1 ORDER BY 1")
SETPOINT = ("SELECT $__timeGroupAlias(d.time, $__interval), avg(d.target_kw) AS \"setpoint\" "
            f"FROM flux.mg_controller_decisions d WHERE d.device_id IN ({SITE_DEVICES}) AND $__timeFilter(d.time) "
            "GROUP BY 1 ORDER BY 1")
MARKET = ("SELECT $__timeGroupAlias(m.time, $__interval), t.name AS metric, avg(m.value) AS value "
          "FROM flux.market_data m JOIN flux.market_data_types t ON t.id = m.type "
          "WHERE $__timeFilter(m.time) GROUP BY 1, 2 ORDER BY 1")
DECISIONS = (
    "SELECT d.time, d.target_kw, d.body->>'explanation' AS reason, d.body->>'reason' AS engine_reason, "
    "d.body->'effective_modes' AS effective_modes, d.body->'constraints' AS constraints, "
    "(d.body->>'dry_run')::boolean AS dry_run FROM flux.mg_controller_decisions d "
    f"WHERE d.device_id IN ({SITE_DEVICES}) AND $__timeFilter(d.time) ORDER BY d.time DESC LIMIT 200")
EVENTS = ("SELECT e.time, e.level, e.kind, e.message FROM flux.mg_controller_events e "
          f"WHERE e.device_id IN ({SITE_DEVICES}) AND $__timeFilter(e.time) ORDER BY e.time DESC LIMIT 100")

# The planner's plans (migration 0004): filed under the site's own id, which the registry lists as type 'site'.
PLANS = f"flux.mg_controller_plans pl WHERE pl.device_id IN ({SITE_DEVICES})"
LATEST_PLAN = f"(SELECT pl.periods FROM {PLANS} ORDER BY pl.time DESC LIMIT 1) latest"


def latest_plan(column: str, label: str) -> str:
    """One column of the newest plan's periods, as a series over the periods' starts (ahead of now)."""
    return (f"SELECT (p->>'start')::timestamptz AS time, (p->>'{column}')::real AS \"{label}\" "
            f"FROM {LATEST_PLAN} CROSS JOIN LATERAL jsonb_array_elements(latest.periods) p ORDER BY 1")


DASHBOARDS: dict[str, tuple[str, list[dict[str, Any]]] | tuple[str, list[dict[str, Any]], dict[str, str]]] = {
    "site-overview": ("flux-edge: site overview", [
        ts("Site meters (+ import)", SITE_METER_POWER),
        ts("Battery setpoint (+ discharge)", SETPOINT),
        ts("Battery SoE", SOE, "kwatth"),
        ts("Imbalance price (p/kWh) and volume (MWh)", MARKET, "none"),
        stat("Imported", counter_delta("mg_meter_readings", "energy_imported_active", "acuvim2")),
        stat("Exported", counter_delta("mg_meter_readings", "energy_exported_active", "acuvim2")),
        stat("Homes imported", counter_delta("mg_emlite_readings", "import_a_kwh", "emlite")),
        stat("Heat delivered", counter_delta("mg_heat_readings", "energy_kwh", "heat_mbus")),
        table("Latest decisions: why the battery does what it does", DECISIONS.replace("LIMIT 200", "LIMIT 10"),
              h=6),
        table("Alerts and events", EVENTS, h=6),
    ]),
    "battery-and-decisions": ("flux-edge: battery and decisions", [
        ts("Setpoint (+ discharge)", SETPOINT),
        ts("SoE", SOE, "kwatth"),
        ts("Battery reported target (powerpack)",
           "SELECT $__timeGroupAlias(b.time, $__interval), avg(b.target_power) AS \"reported target\" "
           f"FROM flux.mg_bess_readings b JOIN ({devices('powerpack')}) r USING (device_id) "
           "WHERE $__timeFilter(b.time) GROUP BY 1 ORDER BY 1"),
        ts("Constraints binding (ticks per interval)",
           "SELECT $__timeGroupAlias(d.time, $__interval), c.value AS metric, count(*) AS value "
           "FROM flux.mg_controller_decisions d CROSS JOIN LATERAL jsonb_array_elements_text(d.body->'constraints') c "
           f"WHERE d.device_id IN ({SITE_DEVICES}) AND $__timeFilter(d.time) GROUP BY 1, 2 ORDER BY 1", "none"),
        ts("Effective mode (ticks per interval)",
           "SELECT $__timeGroupAlias(d.time, $__interval), coalesce(d.body->'effective_modes'->>0, 'idle') AS metric, "
           "count(*) AS value FROM flux.mg_controller_decisions d "
           f"WHERE d.device_id IN ({SITE_DEVICES}) AND $__timeFilter(d.time) GROUP BY 1, 2 ORDER BY 1", "none", w=24),
        table("Decisions", DECISIONS),
    ]),
    "site-meters": ("flux-edge: site meters", [
        ts("Active power (+ import)", SITE_METER_POWER),
        ts("Reactive power",
           "SELECT $__timeGroupAlias(m.time, $__interval), r.name AS metric, avg(m.power_total_reactive) AS value "
           f"FROM flux.mg_meter_readings m JOIN ({devices('acuvim2')}) r USING (device_id) "
           "WHERE $__timeFilter(m.time) GROUP BY 1, 2 ORDER BY 1", "kvar"),
        ts("Voltage (line average)",
           "SELECT $__timeGroupAlias(m.time, $__interval), r.name AS metric, avg(m.voltage_line_average) AS value "
           f"FROM flux.mg_meter_readings m JOIN ({devices('acuvim2')}) r USING (device_id) "
           "WHERE $__timeFilter(m.time) GROUP BY 1, 2 ORDER BY 1", "volt"),
        ts("Frequency",
           "SELECT $__timeGroupAlias(m.time, $__interval), r.name AS metric, avg(m.frequency) AS value "
           f"FROM flux.mg_meter_readings m JOIN ({devices('acuvim2')}) r USING (device_id) "
           "WHERE $__timeFilter(m.time) GROUP BY 1, 2 ORDER BY 1", "hertz"),
        table("Energy over the range per meter",
              "SELECT r.name, max(m.energy_imported_active) - min(m.energy_imported_active) AS imported_kwh, "
              "max(m.energy_exported_active) - min(m.energy_exported_active) AS exported_kwh, "
              "count(*) AS readings, max(m.time) AS last_reading "
              f"FROM flux.mg_meter_readings m JOIN ({devices('acuvim2')}) r USING (device_id) "
              "WHERE $__timeFilter(m.time) GROUP BY r.name ORDER BY r.name", h=6),
    ]),
    "emlite-homes": ("flux-edge: Emlite homes", [
        ts("Power per home",
           "SELECT $__timeGroupAlias(e.time, $__interval), r.name AS metric, avg(e.power_kw) AS value "
           f"FROM flux.mg_emlite_readings e JOIN ({devices('emlite')}) r USING (device_id) "
           "WHERE $__timeFilter(e.time) GROUP BY 1, 2 ORDER BY 1"),
        ts("Prepayment balance",
           "SELECT $__timeGroupAlias(e.time, $__interval), r.name AS metric, min(e.balance_gbp) AS value "
           f"FROM flux.mg_emlite_readings e JOIN ({devices('emlite')}) r USING (device_id) "
           "WHERE $__timeFilter(e.time) GROUP BY 1, 2 ORDER BY 1", "currencyGBP"),
        table("Homes over the range",
              "SELECT r.name, max(e.import_a_kwh) - min(e.import_a_kwh) AS import_kwh, "
              "max(e.export_a_kwh) - min(e.export_a_kwh) AS export_kwh, "
              "(array_agg(e.balance_gbp ORDER BY e.time DESC))[1] AS balance_gbp, "
              "avg(e.signal_csq) AS signal_csq, max(abs(e.clock_drift_s)) AS worst_clock_drift_s, "
              "max(e.time) AS last_reading "
              f"FROM flux.mg_emlite_readings e JOIN ({devices('emlite')}) r USING (device_id) "
              "WHERE $__timeFilter(e.time) GROUP BY r.name ORDER BY r.name"),
    ]),
    "heat-meters": ("flux-edge: heat meters", [
        ts("Heat power",
           "SELECT $__timeGroupAlias(h.time, $__interval), r.name AS metric, avg(h.power_kw) AS value "
           "FROM flux.mg_heat_readings h JOIN (SELECT device_id, name FROM flux.mg_device_registry "
           "WHERE site = '$site') r USING (device_id) WHERE $__timeFilter(h.time) GROUP BY 1, 2 ORDER BY 1"),
        ts("Flow and return temperature",
           "SELECT $__timeGroupAlias(h.time, $__interval), r.name || ' ' || x.which AS metric, avg(x.c) AS value "
           "FROM flux.mg_heat_readings h JOIN (SELECT device_id, name FROM flux.mg_device_registry "
           "WHERE site = '$site') r USING (device_id) CROSS JOIN LATERAL (VALUES ('flow', h.flow_temperature_c), "
           "('return', h.return_temperature_c)) x(which, c) WHERE $__timeFilter(h.time) GROUP BY 1, 2 ORDER BY 1",
           "celsius"),
        table("Heat meters over the range",
              "SELECT r.name, max(h.energy_kwh) - min(h.energy_kwh) AS heat_kwh, "
              "max(h.volume_m3) - min(h.volume_m3) AS volume_m3, avg(h.temperature_difference_k) AS mean_dt_k, "
              "bit_or(h.error_flags) AS error_flags, max(h.time) AS last_reading "
              "FROM flux.mg_heat_readings h JOIN (SELECT device_id, name FROM flux.mg_device_registry "
              "WHERE site = '$site') r USING (device_id) WHERE $__timeFilter(h.time) GROUP BY r.name ORDER BY r.name"),
    ]),
    "plans": ("flux-edge: plans", [
        ts("Latest plan: SoE at each period's end", latest_plan("soe_end_kwh", "planned SoE"), "kwatth"),
        ts("Latest plan: battery power per period (+ discharge)", latest_plan("battery_kw", "planned battery")),
        ts("Latest plan: price per period (p/kWh)", latest_plan("price_p_per_kwh", "price"), "none"),
        ts("Expected value of each plan", "SELECT pl.time AS time, pl.expected_value_gbp AS \"expected value\" "
           f"FROM {PLANS} AND $__timeFilter(pl.time) ORDER BY 1", "currencyGBP"),
        ts("Plan status (plans per interval)",
           "SELECT $__timeGroupAlias(pl.time, $__interval), pl.status AS metric, count(*) AS value "
           f"FROM {PLANS} AND $__timeFilter(pl.time) GROUP BY 1, 2 ORDER BY 1", "none", w=24),
        table("Plans",
              "SELECT pl.time, pl.plan_id, pl.status, pl.expected_value_gbp, "
              "jsonb_array_length(pl.periods) AS periods, "
              "(pl.periods->0->>'battery_kw')::real AS first_battery_kw, "
              "(pl.periods->0->>'soe_end_kwh')::real AS first_soe_end_kwh "
              f"FROM {PLANS} AND $__timeFilter(pl.time) ORDER BY pl.time DESC LIMIT 100"),
    ], {"from": "now-12h", "to": "now+36h"}),
}

SITE_VARIABLE = {"name": "site", "label": "Site", "type": "query", "datasource": DS,
                 "query": "SELECT DISTINCT site FROM flux.mg_device_registry WHERE site IS NOT NULL ORDER BY 1",
                 "definition": "SELECT DISTINCT site FROM flux.mg_device_registry WHERE site IS NOT NULL ORDER BY 1",
                 "refresh": 1, "includeAll": False, "multi": False}


def dashboard(uid: str, title: str, panels: list[dict[str, Any]],
              time: dict[str, str] | None = None) -> dict[str, Any]:
    x = y = row_h = 0
    laid = []
    for i, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        laid.append({**p, "id": i, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x, row_h = x + w, max(row_h, h)
    return {"uid": f"flux-edge-{uid}", "title": title, "tags": ["flux-edge"], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "editable": True, "refresh": "1m",
            "time": time or {"from": "now-24h", "to": "now"}, "templating": {"list": [SITE_VARIABLE]}, "panels": laid}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for uid, (title, panels, *time) in DASHBOARDS.items():
        (OUT / f"{uid}.json").write_text(json.dumps(dashboard(uid, title, panels, *time), indent=2) + "\n")


if __name__ == "__main__":
    main()
