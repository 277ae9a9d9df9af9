"""Cloud schema migrations against a real PostgreSQL (plain, no TimescaleDB)."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from tests.conftest import ROOT
from uploader.migrate import migrate, migrations
from uploader.tables import TABLES


def _columns(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = 'flux' AND table_name = %s", (table,)).fetchall()
    return {r[0]: r[1] for r in rows}


def test_migrate_creates_the_schema_and_is_idempotent(pg_dsn: str) -> None:
    assert migrate(pg_dsn) == [m.version for m in migrations()]
    assert migrate(pg_dsn) == []
    with psycopg.connect(pg_dsn) as conn:
        bess = _columns(conn, "mg_bess_readings")
        assert bess == {"time": "timestamp with time zone", "device_id": "uuid", "id": "uuid",
                        "created_at": "timestamp with time zone", "soe": "real", "target_power": "real"}
        meter = _columns(conn, "mg_meter_readings")
        assert meter["energy_exported_apparent"] == "real" and len(meter) == 4 + 25
        assert _columns(conn, "mg_device_registry") == {"device_id": "uuid", "site": "text", "name": "text",
                                                         "type": "text"}
        assert set(_columns(conn, "market_data")) == {"time", "type", "created_at", "value"}
        assert set(_columns(conn, "market_data_types")) == {"id", "name"}
        for table in TABLES.values():  # every column the uploader writes exists
            assert set(table.all_columns) <= set(_columns(conn, table.name)), table.name


def test_every_reading_table_has_a_unique_device_time_key(pg_dsn: str) -> None:
    migrate(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        for table in ("mg_bess_readings", "mg_meter_readings", "mg_emlite_readings", "mg_heat_readings",
                      "mg_controller_decisions", "mg_controller_forecasts"):
            insert = (f"INSERT INTO flux.{table} (device_id, time, body) VALUES (%s, %s, '{{}}')"
                      if table in ("mg_controller_decisions", "mg_controller_forecasts") else
                      f"INSERT INTO flux.{table} (device_id, time) VALUES (%s, %s)")
            key = ("7b0d0c6e-5d2a-4c43-9a57-000000000001", "2026-01-01T00:00Z")
            conn.execute(insert, key)
            with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
                conn.execute(insert, key)


def test_the_controller_role_may_insert_and_select_but_not_update_or_delete(pg_dsn: str) -> None:
    migrate(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        privs = {r[0] for r in conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'flux_controller' "
            "AND table_schema = 'flux' AND table_name = 'mg_meter_readings'")}
        assert privs == {"INSERT", "SELECT"}
        market = {r[0] for r in conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'flux_controller' "
            "AND table_schema = 'flux' AND table_name = 'market_data'")}
        assert market == {"SELECT"}
        forecasts = {r[0] for r in conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'flux_controller' "
            "AND table_schema = 'flux' AND table_name = 'mg_controller_forecasts'")}
        assert forecasts == {"INSERT", "SELECT"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], check=False, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_cloud_migrate_command(pg_dsn: str) -> None:
    first = _cli("cloud", "migrate", "--dsn", pg_dsn)
    assert first.returncode == 0, first.stderr
    assert f"applied {[m.version for m in migrations()]}" in first.stdout
    second = _cli("cloud", "migrate", "--dsn", pg_dsn)
    assert second.returncode == 0 and "up to date" in second.stdout
