"""A large backlog is uploaded by a child process (uploader/drain.py), and nothing is lost or doubled when
that child is killed, when the daemon stops under it, or while the daemon's writer keeps committing.

The real daemon with the uploader's components, the real cloud stand-in (PostgREST over PostgreSQL), the
real child process; the outbox is filled before the daemon starts, as after an outage.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from controller.core.clock import RealClock
from controller.daemon import Daemon
from controller.ops.metrics import render
from controller.ops.status import take_view
from controller.runtime import Runtime
from controller.wiring import uploader as uploader_components
from devices.catalog import CLOUD_ROUTING
from simulator.cloud import CloudStandIn
from tests.helpers import eventually
from tests.uploader.fixtures import BESS_ID, METER_ID, T0, bess, meter
from uploader.delivery import SinkCounters
from uploader.outbox import Outbox, outbox_path
from uploader.tables import map_reading
from uploader.upload import PROBE_ROWS

KEY = "drain-key"
BATCH = 100
THRESHOLD = 500


@pytest.fixture
async def cloud(pg_dsn: str) -> AsyncIterator[CloudStandIn]:
    async with CloudStandIn(pg_dsn, KEY) as standin:
        yield standin


def _site(tmp: Path, url: str, child_drain_rows: int = THRESHOLD) -> Path:
    path = tmp / "site.yaml"
    path.write_text(f"""\
site: {{id: drain, name: Drain test}}
devices:
  - {{type: powerpack, name: bess, id: "{BESS_ID}", host: 127.0.0.1, port: 15020,
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000}}
  - {{type: acuvim2, name: site-meter, id: "{METER_ID}", host: 127.0.0.1, port: 15021}}
buffer: {{path: "{tmp}/var/{{site}}"}}
uploader:
  coverage_check_interval_s: 86400
  sinks:
    - {{type: postgrest, name: cloud, url: "{url}", api_key: {KEY}, batch_size: {BATCH}, interval_s: 0.5,
       gather_s: 0, child_drain_rows: {child_drain_rows}}}
""")
    return path


def _fill(tmp: Path, minutes: int) -> None:
    """`minutes` of battery and meter readings pending, as the outbox holds them after an outage."""
    box = Outbox.open(tmp / "var" / "drain")
    try:
        box.register_sinks(["cloud"])
        times = [T0 + timedelta(minutes=i) for i in range(minutes)]
        rows = [map_reading(r, CLOUD_ROUTING) for t in times for r in (bess(t, soe=400 + t.minute), meter(t))]
        box.add([r for r in rows if r is not None])
    finally:
        box.close()


def _cursor(tmp: Path) -> int:
    conn = sqlite3.connect(outbox_path(tmp / "var" / "drain"))
    try:
        return int(conn.execute("SELECT seq FROM cursors WHERE sink = 'cloud'").fetchone()[0])
    finally:
        conn.close()


def _left(tmp: Path) -> int:
    """Rows past the sink's cursor, counted in the file."""
    conn = sqlite3.connect(outbox_path(tmp / "var" / "drain"))
    try:
        return int(conn.execute("SELECT count(*) FROM rows WHERE seq > (SELECT seq FROM cursors WHERE sink = "
                                "'cloud')").fetchone()[0])
    finally:
        conn.close()


def _cloud(dsn: str) -> tuple[int, int]:
    """(battery rows, meter rows) in the cloud: each (device, time) is one row, so a resent row is not a second."""
    with psycopg.connect(dsn) as conn:
        return tuple(int(conn.execute(f"SELECT count(*) FROM flux.{t}").fetchone()[0])  # type: ignore[return-value]
                     for t in ("mg_bess_readings", "mg_meter_readings"))


async def _start(site: Path) -> tuple[Daemon, asyncio.Task[None], Runtime, SinkCounters]:
    # Real time: the sink loop's pauses between caught-up batches are real, as is the child's work.
    daemon = Daemon(str(site), RealClock(), builders=[uploader_components])
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: daemon.runtime is not None and "cloud" in daemon.runtime.services.sinks)
    runtime: Runtime = daemon.runtime  # type: ignore[assignment]
    return daemon, task, runtime, runtime.services.sinks["cloud"]


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _pending(runtime: Runtime) -> int | None:
    """What the status reports pending (the counters the file's triggers keep); None before the writer opens it."""
    service = runtime.services.outbox
    if service is None or service.outbox is None:
        return None
    return service.outbox.sink_stats("cloud").pending


async def test_a_large_backlog_goes_up_from_a_child_and_a_small_one_from_the_daemon(
        tmp_path: Path, cloud: CloudStandIn, pg_dsn: str) -> None:
    _fill(tmp_path, 1000)  # 2000 rows: a few from the daemon, then the rest from one child
    _, task, runtime, counters = await _start(_site(tmp_path, cloud.url))
    try:
        await eventually(lambda: _pending(runtime) == 0 and counters.child_drains == 1, timeout=60)
        assert _cloud(pg_dsn) == (1000, 1000)
        # The daemon itself sent only the few rows that showed the cloud answers; its alerts (upload_backlog)
        # are rows of the events table, uploaded too.
        assert counters.child_rows >= 2000 - PROBE_ROWS
        assert counters.rows_uploaded >= 2000
        assert counters.child_failures == 0
        assert counters.drain_pid is None
        # Operators see it: the status's sink and the metrics.
        view = await take_view(runtime)
        sink = json.loads(json.dumps(view.to_json()))["sinks"][0]
        assert (sink["child_drains"], sink["child_failures"], sink["child_pid"]) == (1, 0, None)
        assert 'flux_edge_upload_children_total{result="ok",sink="cloud"} 1.0' in render(view, None).decode()
        # A backlog below the threshold (an hour's outage) stays in the daemon.
        for i in range(200):
            runtime.bus.readings.publish(bess(T0 + timedelta(days=1, minutes=i)))
        uploaded = counters.rows_uploaded
        await eventually(lambda: _pending(runtime) == 0 and counters.rows_uploaded >= uploaded + 200, timeout=60)
        assert counters.child_drains == 1
        assert _cloud(pg_dsn) == (1200, 1000)
    finally:
        await _stop(task)


async def test_a_child_killed_mid_backlog_leaves_the_rest_to_the_daemon_and_loses_or_doubles_nothing(
        tmp_path: Path, cloud: CloudStandIn, pg_dsn: str) -> None:
    _fill(tmp_path, 20_000)  # 40,000 rows: 400 batches, seconds of work for the child
    _, task, runtime, counters = await _start(_site(tmp_path, cloud.url))
    try:
        await eventually(lambda: counters.drain_pid is not None and _cursor(tmp_path) >= 5 * BATCH, timeout=60)
        pid = counters.drain_pid
        assert pid is not None
        # While the child acknowledges batches, the daemon's writer commits new readings to the same file.
        service = runtime.services.outbox
        assert service is not None
        written = service.rows_written
        for i in range(50):
            runtime.bus.readings.publish(bess(T0 + timedelta(days=30, minutes=i)))
        await eventually(lambda: service.rows_written >= written + 50)
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: counters.child_failures == 1, timeout=30)
        at_kill = _cursor(tmp_path)
        assert at_kill < 40_000  # killed mid-backlog: the daemon has work left
        await eventually(lambda: _pending(runtime) == 0, timeout=180)
        assert _cloud(pg_dsn) == (20_050, 20_000)
        assert counters.child_drains == 0  # no answer from the one child; the daemon did not start another
        assert counters.rows_uploaded >= 40_050 - at_kill
        assert counters.child_rows == 0
        # The counts the status and metrics read agree with the rows themselves after two processes acked (the
        # alert that the backlog cleared is a row of its own, uploaded soon after).
        await eventually(lambda: _pending(runtime) == 0 == _left(tmp_path), timeout=30)
    finally:
        await _stop(task)


async def test_stopping_the_daemon_stops_its_child(tmp_path: Path, cloud: CloudStandIn, pg_dsn: str) -> None:
    _fill(tmp_path, 10_000)
    _, task, _, counters = await _start(_site(tmp_path, cloud.url))
    await eventually(lambda: counters.drain_pid is not None and _cursor(tmp_path) >= 2 * BATCH, timeout=60)
    pid = counters.drain_pid
    assert pid is not None
    await _stop(task)
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left uploading behind a stopped daemon
        os.kill(pid, 0)
    # What it had acknowledged is in the cloud; the next start sends the rest.
    delivered = _cursor(tmp_path)
    battery, meters = _cloud(pg_dsn)
    assert battery + meters >= delivered
    _, task, runtime, counters = await _start(_site(tmp_path, cloud.url))
    try:
        await eventually(lambda: _pending(runtime) == 0, timeout=120)
        assert _cloud(pg_dsn) == (10_000, 10_000)
    finally:
        await _stop(task)


async def test_a_threshold_of_zero_keeps_every_upload_in_the_daemon(
        tmp_path: Path, cloud: CloudStandIn, pg_dsn: str) -> None:
    _fill(tmp_path, 1000)
    _, task, runtime, counters = await _start(_site(tmp_path, cloud.url, child_drain_rows=0))
    try:
        await eventually(lambda: _pending(runtime) == 0, timeout=60)
        assert _cloud(pg_dsn) == (1000, 1000)
        assert (counters.child_drains, counters.child_rows) == (0, 0)
        assert counters.rows_uploaded >= 2000
    finally:
        await _stop(task)
