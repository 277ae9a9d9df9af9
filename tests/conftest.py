"""Fixtures for the real services the tests talk to.

PostgreSQL: the running server (127.0.0.1:5432, trust auth; FLUX_TEST_PG_DSN overrides); each test
that asks for `pg_dsn` gets a database of its own, dropped afterwards. Mosquitto: 127.0.0.1:1883
(FLUX_TEST_MQTT overrides as host:port). `make test` starts both where they are not running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from controller.core.logs import forget_secrets
from tests.helpers import port_open

# The suite's fixtures write throw-away secrets inline; the daemon refuses that (controller/core/config.py).
os.environ.setdefault("FLUX_ALLOW_INLINE_SECRETS", "1")
# ... and send unsigned commands: authentication is tested on its own (tests/ops/test_authenticated_control.py).
os.environ.setdefault("FLUX_COMMAND_AUTH", "off")
# The demo site's secrets, which `flux-edge demo` sets for its children (tests/test_demo_secrets.py runs it without).
os.environ.setdefault("FLUX_DEMO_AXLE_PASSWORD", "test-axle-password")
os.environ.setdefault("FLUX_DEMO_CLOUD_API_KEY", "sim-anon-key")

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("FLUX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
MQTT_ADDR = os.environ.get("FLUX_TEST_MQTT", "127.0.0.1:1883")


def _dsn_for(dbname: str) -> str:
    conninfo = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_DSN)
    conninfo["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**conninfo)  # type: ignore[arg-type]


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty database on the real PostgreSQL server; dropped after the test."""
    name = f"flux_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _dsn_for(name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mqtt_addr() -> tuple[str, int]:
    host, _, port = MQTT_ADDR.rpartition(":")
    if not port_open(host, int(port)):
        pytest.fail(f"Mosquitto is not reachable at {MQTT_ADDR}: run `make services`")
    return host, int(port)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Secrets registered for redaction are process-wide; a test starts with none."""
    forget_secrets()
    yield
    forget_secrets()
