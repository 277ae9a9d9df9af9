"""The Grafana dashboards: every panel's SQL, Grafana macros expanded, runs against the real schema that
`flux-edge cloud migrate` creates (with a few rows in it), so a renamed column breaks the build."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from uploader.tables import site_device_id

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
FROM, TO = "2026-11-23T00:00:00+00:00", "2026-11-24T00:00:00+00:00"
BESS, METER, HOME, HEAT = (f"7b0d0c6e-5d2a-4c43-9a57-00000000000{i}" for i in (1, 2, 3, 4))


def expand(sql: str) -> str:
    """Grafana's PostgreSQL macros and the dashboards' `$site` variable, as Grafana expands them."""
    sql = re.sub(r"\$__timeGroupAlias\(([^,()]+),\s*\$__interval\)",
                 r'to_timestamp(floor(extract(epoch from \1) / 300) * 300) AS "time"', sql)
    sql = re.sub(r"\$__timeFilter\(([^()]+)\)", rf"\1 BETWEEN '{FROM}'::timestamptz AND '{TO}'::timestamptz", sql)
    sql = sql.replace("$site", "demo")
    assert "$" not in sql, f"unexpanded macro in: {sql}"
    return sql


def panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in DASHBOARDS:
        for p in json.loads(path.read_text())["panels"]:
            out.append((f"{path.stem}: {p['title']}", p))
    return out


def test_every_dashboard_is_shipped_and_current() -> None:
    assert [p.stem for p in DASHBOARDS] == ["battery-and-decisions", "emlite-homes", "heat-meters", "plans",
                                            "site-meters", "site-overview"]
    before = {p: p.read_text() for p in DASHBOARDS}
    done = subprocess.run([sys.executable, "scripts/gen_dashboards.py"], cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0
    assert {p: p.read_text() for p in DASHBOARDS} == before, "dashboards are stale: run scripts/gen_dashboards.py"
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/flux-edge.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"
    source = yaml.safe_load((ROOT / "grafana/provisioning/datasources/flux-cloud.yaml").read_text())
    uids = {p["datasource"]["uid"] for _, p in panels()}
    assert uids == {source["datasources"][0]["uid"]}


@pytest.fixture
def cloud(pg_dsn: str) -> str:
    done = subprocess.run([sys.executable, "-m", "controller", "cloud", "migrate", "--dsn", pg_dsn], cwd=ROOT,
                          capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    t = "2026-11-23T16:16:00+00:00"
    body = {"time": t, "target_kw": 250.0, "constraints": ["bess_power"], "effective_modes": ["dynamic_peak_discharge"],
            "reason": "dynamic_peak_discharge set the target; limited by bess_power", "dry_run": False,
            "explanation": "discharging 250 kW: system short, NIV +184 MWh for SP 16:00, peak discharge"}
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for device, name, kind in ((BESS, "bess", "powerpack"), (METER, "site-meter", "acuvim2"),
                                   (HOME, "home-01", "emlite"), (HEAT, "heat-plant", "heat_modbus")):
            conn.execute("INSERT INTO flux.mg_device_registry (device_id, site, name, type) VALUES (%s, 'demo', %s, %s)",
                         (device, name, kind))
        conn.execute("INSERT INTO flux.mg_bess_readings (time, device_id, soe, target_power) VALUES (%s, %s, 600, 250)",
                     (t, BESS))
        conn.execute("INSERT INTO flux.mg_meter_readings (time, device_id, power_total_active, energy_imported_active, "
                     "energy_exported_active, frequency, voltage_line_average, power_total_reactive) "
                     "VALUES (%s, %s, -200, 1000, 50, 50.0, 415, 3)", (t, METER))
        conn.execute("INSERT INTO flux.mg_emlite_readings (time, device_id, import_a_kwh, export_a_kwh, power_kw, "
                     "balance_gbp, signal_csq, clock_drift_s) VALUES (%s, %s, 12, 0, 0.4, 9.5, 20, -2)", (t, HOME))
        conn.execute("INSERT INTO flux.mg_heat_readings (time, device_id, energy_kwh, volume_m3, power_kw, "
                     "flow_temperature_c, return_temperature_c, temperature_difference_k, error_flags) "
                     "VALUES (%s, %s, 500, 10, 12, 70, 40, 30, 0)", (t, HEAT))
        conn.execute("INSERT INTO flux.mg_controller_decisions (time, device_id, target_kw, body) VALUES (%s, %s, 250, %s)",
                     (t, BESS, json.dumps(body)))
        conn.execute("INSERT INTO flux.mg_controller_events (time, device_id, event_id, kind, level, message) "
                     "VALUES (%s, %s, gen_random_uuid(), 'battery_write_failed', 'Error', 'setpoint write failed')",
                     (t, BESS))
        conn.execute("INSERT INTO flux.market_data (time, type, value) VALUES (%s, 1, 45.2), (%s, 2, 184)", (t, t))
        # Two plans filed under the site's own id (registered as type 'site', as the uploader does).
        site = str(site_device_id("demo"))
        conn.execute("INSERT INTO flux.mg_device_registry (device_id, site, name, type) VALUES (%s, 'demo', 'demo', "
                     "'site')", (site,))
        for made, plan_id, status, soe in (("2026-11-23T15:30:00+00:00", "old", "breaches", 500.0),
                                           ("2026-11-23T16:00:00+00:00", "new", "optimal", 600.0)):
            periods = [{"start": f"2026-11-23T{16 + k // 2:02d}:{30 * (k % 2):02d}:00+00:00", "battery_kw": 250.0,
                        "soe_end_kwh": soe - 125 * k, "price_p_per_kwh": 45.2, "net_load_kw": 100.0} for k in range(4)]
            conn.execute("INSERT INTO flux.mg_controller_plans (time, device_id, plan_id, inputs_hash, status, "
                         "expected_value_gbp, periods) VALUES (%s, %s, %s, %s, %s, 12.5, %s)",
                         (made, site, plan_id, plan_id, status, json.dumps(periods)))
    return pg_dsn


def test_every_panel_query_runs_on_the_migrated_schema(cloud: str) -> None:
    found = panels()
    assert len(found) >= 25
    with psycopg.connect(cloud, autocommit=True) as conn:
        variable = json.loads(DASHBOARDS[0].read_text())["templating"]["list"][0]["query"]
        assert conn.execute(variable).fetchall() == [("demo",)]
        for title, panel in found:
            for target in panel["targets"]:
                try:
                    cur = conn.execute(expand(target["rawSql"]))
                except psycopg.Error as exc:
                    pytest.fail(f"{title}: {exc}")
                rows = cur.fetchall()
                columns = [c.name for c in cur.description or []]
                assert rows, f"{title}: no rows from the sample data"
                if target["format"] == "time_series":
                    assert columns[0] == "time", f"{title}: a time series must return time first, got {columns}"
        decisions = conn.execute(expand(next(p for t, p in found if t.endswith(": Decisions"))["targets"][0]["rawSql"]))
        assert decisions.fetchone()[2].startswith("discharging 250 kW: system short")

        def rows_of(title: str) -> list[tuple[Any, ...]]:
            panel = next(p for t, p in found if t == title)
            return list(conn.execute(expand(panel["targets"][0]["rawSql"])).fetchall())

        # The latest plan's periods (not the older one's), and every plan in the table, newest first.
        soe = rows_of("plans: Latest plan: SoE at each period's end")
        assert [(r[0].isoformat(), r[1]) for r in soe] == [
            ("2026-11-23T16:00:00+00:00", 600.0), ("2026-11-23T16:30:00+00:00", 475.0),
            ("2026-11-23T17:00:00+00:00", 350.0), ("2026-11-23T17:30:00+00:00", 225.0)]
        assert [r[1:3] for r in rows_of("plans: Plans")] == [("new", "optimal"), ("old", "breaches")]
        assert sorted(r[1] for r in rows_of("plans: Plan status (plans per interval)")) == ["breaches", "optimal"]
