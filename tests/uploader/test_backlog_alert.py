"""A cloud outage is alerted once its backlog is older than `outage_alert_after_s`, and cleared once it drains.

The real daemon with the uploader's components, on a ManualClock: the sink points at a port where nothing
listens (connection refused: transient, only warnings), then the cloud stand-in comes up on that port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from controller.core.bus import Event
from controller.core.clock import ManualClock
from controller.daemon import Daemon
from controller.runtime import Runtime
from controller.wiring import uploader as uploader_components
from simulator.cloud import CloudStandIn
from tests.helpers import eventually, free_port
from tests.uploader.fixtures import BESS_ID, METER_ID, T0, bess, meter
from uploader.config import PostgrestSinkConfig

KEY = "backlog-key"
LIMIT_S = 3600
RETRY_S = 300  # backoff_max_s: no retry pause is longer, so each advance of this wakes the sink loop


def site_yaml(buffer: Path, port: int) -> str:
    return f"""\
site: {{id: outage, name: Outage test}}
devices:
  - {{type: powerpack, name: bess, id: "{BESS_ID}", host: 127.0.0.1, port: 15020,
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000}}
  - {{type: acuvim2, name: site-meter, id: "{METER_ID}", host: 127.0.0.1, port: 15021}}
buffer: {{path: "{buffer}/{{site}}"}}
uploader:
  coverage_check_interval_s: 86400
  sinks:
    - {{type: postgrest, name: cloud, url: "http://127.0.0.1:{port}", api_key: {KEY},
       backoff_max_s: {RETRY_S}, outage_alert_after_s: {LIMIT_S}}}
"""


def backlog_alerts(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind.startswith("upload_backlog")]


async def test_an_outage_alerts_once_after_the_configured_age_and_clears_when_drained(
        tmp_path: Path, pg_dsn: str) -> None:
    port = free_port()
    (tmp_path / "site.yaml").write_text(site_yaml(tmp_path / "var", port))
    clock = ManualClock(T0)
    daemon = Daemon(str(tmp_path / "site.yaml"), clock, builders=[uploader_components])
    task = asyncio.create_task(daemon.run())
    events: list[Event] = []
    try:
        await eventually(lambda: daemon.runtime is not None and daemon.runtime.services.outbox is not None
                         and daemon.runtime.services.outbox.ready.is_set())
        runtime: Runtime = daemon.runtime  # type: ignore[assignment]
        runtime.bus.events.on(events.append)
        runtime.bus.readings.publish(bess(T0))
        runtime.bus.readings.publish(meter(T0))
        await eventually(lambda: runtime.services.outbox.rows_written == 2)  # type: ignore[union-attr]
        counters = runtime.services.sinks["cloud"]

        async def retry_pause() -> None:
            # A retry pause on the clock, then real time for the loop's real socket and outbox thread to answer.
            await clock.advance(RETRY_S)
            await asyncio.sleep(0.01)

        async def until(check: Callable[[], bool]) -> None:
            for _ in range(1000):
                if check():
                    return
                await retry_pause()
            raise AssertionError("never happened")

        while clock.now() < T0 + timedelta(hours=5):
            await retry_pause()
            if clock.now() <= T0 + timedelta(seconds=LIMIT_S):
                assert backlog_alerts(events) == [], clock.now()  # warnings only, until the backlog is that old
        await until(lambda: backlog_alerts(events) != [])
        failures = counters.failures
        await until(lambda: counters.failures >= failures + 5)
        alerts = backlog_alerts(events)
        assert [(e.kind, e.level) for e in alerts] == [("upload_backlog", "Error")]  # once in the episode
        data = alerts[0].data
        assert data["sink"] == "cloud" and data["rows"] == 2 and data["oldest"] == T0.isoformat()
        assert data["age_s"] > LIMIT_S
        assert abs((alerts[0].time - T0).total_seconds() - data["age_s"]) <= 0.05  # measured on the daemon's clock
        assert counters.errors_by_kind.keys() == {"transient"}

        async with CloudStandIn(pg_dsn, KEY, port=port):
            await until(lambda: len(backlog_alerts(events)) > 1)
            cleared = backlog_alerts(events)[1]
            assert (cleared.kind, cleared.level, cleared.data["sink"]) == ("upload_backlog_cleared", "Info", "cloud")
            assert counters.backlog_alerted is False
            with psycopg.connect(pg_dsn) as conn:
                assert conn.execute("SELECT count(*) FROM flux.mg_bess_readings").fetchone() == (1,)
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 60) == 0


@pytest.mark.parametrize("value", [0, -60, float("inf"), float("nan")])
def test_the_alert_age_is_a_finite_positive_number(value: float) -> None:
    with pytest.raises(ValidationError, match="outage_alert_after_s"):
        PostgrestSinkConfig(type="postgrest", name="c", url="http://127.0.0.1:1", outage_alert_after_s=value)
