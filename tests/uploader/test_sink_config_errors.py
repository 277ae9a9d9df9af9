"""A PostgreSQL sink whose DSN cannot work (no such database, login refused, malformed, an option libpq
refuses, a host it cannot parse) is a configuration error: alerted once, data kept, retried slowly; and its
password reaches no log line, alert or error text. Against the real PostgreSQL server, logs captured."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog

from controller.core.clock import ManualClock
from controller.core.logs import configure_logging, forget_secrets, redact_text
from devices.catalog import CLOUD_ROUTING
from tests.uploader.fixtures import T0, bess, minutes
from uploader.config import PostgresSinkConfig
from uploader.delivery import Delivery, SinkCounters
from uploader.outbox import Outbox
from uploader.postgres import PostgresSink
from uploader.tables import map_reading

PASSWORD = "Pg-s3cret-pw"
SHORT = "sh0rt"  # too short for the log redaction net: only the sink's own scrubbing keeps it out


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("json", stream=out)
    yield out
    structlog.reset_defaults()


def _with(pg_dsn: str, **changes: str) -> dict[str, Any]:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    info.update(changes)
    return info


def _uri(info: dict[str, Any], password: str) -> str:
    return f"postgresql://{info['user']}:{password}@{info['host']}:{info['port']}/{info['dbname']}"


CASES = {
    # name: (the DSN from the test database's, the kind, the password it holds)
    "no_such_database": (lambda d: _uri(_with(d, dbname="flux_no_such_db"), PASSWORD), "config", PASSWORD),
    "role_refused": (lambda d: _uri(_with(d, user="flux_no_such_role"), SHORT), "auth", SHORT),
    "malformed_uri": (lambda d: _uri(_with(d), f"{PASSWORD} x"), "config", f"{PASSWORD} x"),
    "malformed_keywords": (lambda d: f"host=127.0.0.1 dbname=x {PASSWORD}", "config", PASSWORD),
    "invalid_option": (lambda d: psycopg.conninfo.make_conninfo(**_with(d, sslmode="bogus", password=SHORT)),
                       "config", SHORT),
    "unparsable_host": (lambda d: f"postgresql://postgres:{PASSWORD}@[::1/flux", "config", PASSWORD),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_dsn_that_cannot_work_is_alerted_once_and_never_shows_its_password(
        case: str, tmp_path: Path, pg_dsn: str, logs: io.StringIO) -> None:
    make, kind, password = CASES[case]
    config = PostgresSinkConfig(type="postgres", name="warehouse", dsn=make(pg_dsn), backoff_max_s=600)
    if len(password) >= 8 and case != "malformed_keywords":  # a bare token there: nothing says it is a password
        assert redact_text(f"x {password} y") == "x *** y"  # the password alone is registered, not only the DSN
    # The redaction net is dropped: what the sink itself writes must already be free of the password.
    forget_secrets()
    box = Outbox.open(tmp_path)
    box.add([map_reading(bess(t), CLOUD_ROUTING) for t in minutes(10)])
    alerts: list[dict[str, Any]] = []
    sink = PostgresSink(config)
    delivery = Delivery(sink, box, ManualClock(T0), batch_size=100, backoff_max_s=600, counters=SinkCounters(),
                        alert=lambda k, level, message, **data: alerts.append(
                            {"kind": k, "level": level, "message": message, **data}))
    try:
        for _ in range(3):
            assert await delivery.step() == (0, 600)  # retried slowly, not backed off as a transient
    finally:
        await sink.close()
    assert [(a["kind"], a["level"]) for a in alerts] == [(f"upload_{kind}_error", "Error")]  # once per episode
    assert delivery.counters.errors_by_kind == {kind: 3}
    assert len(box.pending("warehouse", 100)) == 10  # the data is kept
    box.close()
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["kind"] for line in lines if line["event"] == "upload_failed"] == [kind] * 3
    said = logs.getvalue() + json.dumps(alerts) + str(delivery.counters.last_error)
    assert password not in said
    assert "sh0rt" not in said and "s3cret" not in said
