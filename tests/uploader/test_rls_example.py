"""The Supabase row-level-security example works: one site's key cannot write or read another site's devices.

Supabase's `auth.jwt()` returns the request's JWT claims (PostgREST puts them in `request.jwt.claims`);
the same one-line function stands in for it here, on plain PostgreSQL.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from uploader.migrate import MIGRATIONS_DIR, migrate

SITE_A_DEVICE = "7b0d0c6e-5d2a-4c43-9a57-00000000000a"
SITE_B_DEVICE = "7b0d0c6e-5d2a-4c43-9a57-00000000000b"
AUTH_JWT = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;
GRANT USAGE ON SCHEMA auth TO flux_controller;
"""


def _as_site(conn: psycopg.Connection, site: str) -> None:
    conn.execute("SET ROLE flux_controller")
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"site": site}),))


def test_one_site_cannot_write_or_read_another_sites_devices(pg_dsn: str) -> None:
    migrate(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(AUTH_JWT)
        conn.execute((MIGRATIONS_DIR / "examples" / "supabase_rls.sql").read_text().encode())
        conn.execute("INSERT INTO flux.mg_device_registry VALUES (%s, 'a', 'bess', 'powerpack'), "
                     "(%s, 'b', 'bess', 'powerpack')", (SITE_A_DEVICE, SITE_B_DEVICE))
        conn.execute("INSERT INTO flux.mg_bess_readings (device_id, time, soe) VALUES (%s, '2026-01-01Z', 1)",
                     (SITE_B_DEVICE,))

        _as_site(conn, "a")
        conn.execute("INSERT INTO flux.mg_bess_readings (device_id, time, soe) VALUES (%s, '2026-01-01Z', 2) "
                     "ON CONFLICT (device_id, time) DO NOTHING", (SITE_A_DEVICE,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO flux.mg_bess_readings (device_id, time, soe) VALUES (%s, '2026-01-02Z', 3)",
                         (SITE_B_DEVICE,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO flux.mg_device_registry VALUES (gen_random_uuid(), 'b', 'x', 'acuvim2')")
        seen = conn.execute("SELECT device_id::text FROM flux.mg_bess_readings").fetchall()
        assert seen == [(SITE_A_DEVICE,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # no UPDATE grant at all
            conn.execute("UPDATE flux.mg_bess_readings SET soe = 0")
