"""The uploader's daemon components end to end: bus -> outbox -> sink -> the cloud stand-in -> PostgreSQL.

Runs the real Daemon with the uploader's components (through the daemon's adapter) and a producer
component that publishes one battery and one meter reading per simulated minute, on an accelerated clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from controller.config import SiteConfig
from controller.core.bus import Event
from controller.core.clock import Clock, ScaledClock
from controller.core.component import STOP_POLLERS, ComponentSpec
from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast
from controller.daemon import Daemon
from controller.runtime import Runtime
from controller.wiring import uploader as uploader_components
from simulator.cloud import CloudStandIn
from tests.conftest import ROOT
from tests.helpers import eventually
from tests.uploader.fixtures import BESS_ID, METER_ID, T0, bess, meter
from uploader.migrate import ensure_database, migrate
from uploader.outbox import outbox_path

KEY = "svc-key"


def site_yaml(buffer: Path, cloud_url: str, *, max_bytes: int = 64 << 20, coverage_s: float = 3600,
              batch_size: int = 1000, gather_s: float = 3.0, child_drain_rows: int = 20_000) -> str:
    return f"""\
site: {{id: svc, name: Service test}}
devices:
  - {{type: powerpack, name: bess, id: "{BESS_ID}", host: 127.0.0.1, port: 15020,
     nameplate_power_kw: 250, nameplate_energy_kwh: 1000}}
  - {{type: acuvim2, name: site-meter, id: "{METER_ID}", host: 127.0.0.1, port: 15021}}
buffer: {{path: "{buffer}/{{site}}", max_bytes: {max_bytes}}}
uploader:
  coverage_check_interval_s: {coverage_s}
  sinks:
    - {{type: postgrest, name: cloud, url: "{cloud_url}", api_key: {KEY}, batch_size: {batch_size},
       backoff_max_s: 300, gather_s: {gather_s}, child_drain_rows: {child_drain_rows}}}
"""


@dataclass
class Producer:
    """Publishes a battery and a meter reading per simulated minute until `end`."""

    end: datetime
    start: datetime = T0  # slots already past when the daemon is up are published at once (catch-up)
    slots: list[datetime] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def provider(self, config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
        return [ComponentSpec("producer", "producer", lambda: self.run(runtime), stop_order=STOP_POLLERS)]

    async def run(self, runtime: Runtime) -> None:
        clock = runtime.clock
        t = self.start
        while t < self.end:
            await clock.sleep_until(t)
            runtime.bus.readings.publish(bess(t, soe=float(len(self.slots) % 1000)))
            runtime.bus.readings.publish(meter(t, power=float(len(self.slots))))
            self.slots.append(t)
            t += timedelta(minutes=1)
        self.done.set()


@dataclass
class Harness:
    daemon: Daemon
    task: asyncio.Task[int]
    producer: Producer
    cloud: CloudStandIn
    dsn: str
    buffer: Path

    @property
    def runtime(self) -> Runtime:
        assert self.daemon.runtime is not None
        return self.daemon.runtime

    def cloud_slots(self, table: str) -> list[datetime]:
        with psycopg.connect(self.dsn) as conn:
            return [r[0] for r in conn.execute(f"SELECT time FROM flux.{table} ORDER BY time")]

    def outbox_bytes(self) -> int:
        p = outbox_path(self.buffer / "svc")
        return sum(os.path.getsize(f"{p}{s}") for s in ("", "-wal") if os.path.exists(f"{p}{s}"))

    async def stop(self) -> int:
        self.daemon.request_stop()
        return await asyncio.wait_for(self.task, 60)


@pytest.fixture
async def cloud(pg_dsn: str) -> AsyncIterator[CloudStandIn]:
    async with CloudStandIn(pg_dsn, KEY) as standin:
        yield standin


async def start(tmp_path: Path, cloud: CloudStandIn, pg_dsn: str, clock: Clock, end: datetime,
                **site: Any) -> Harness:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(site_yaml(tmp_path / "var", cloud.url, **site))
    producer = Producer(end)
    daemon = Daemon(str(site_file), clock, builders=[uploader_components, producer.provider])
    task = asyncio.create_task(daemon.run())
    return Harness(daemon, task, producer, cloud, pg_dsn, tmp_path / "var")


async def test_readings_reach_the_cloud_once_and_registry_is_filled(tmp_path: Path, cloud: CloudStandIn,
                                                                    pg_dsn: str) -> None:
    clock = ScaledClock(T0, speed=600)
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(minutes=30))
    try:
        await asyncio.wait_for(h.producer.done.wait(), 60)
        await eventually(lambda: len(h.cloud_slots("mg_meter_readings")) == len(h.producer.slots), timeout=60)
        assert h.cloud_slots("mg_bess_readings") == h.producer.slots
        assert h.runtime.heartbeats.get("outbox") is not None
        counters = h.runtime.services.sinks["cloud"]
        assert counters.successes > 0 and counters.latency_count > 0 and counters.last_success is not None
    finally:
        assert await h.stop() == 0
    with psycopg.connect(pg_dsn) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM flux.mg_device_registry WHERE site = 'svc'")}
    assert names == {"bess", "site-meter", "svc"}


async def test_rows_that_arrive_one_commit_at_a_time_go_up_together(tmp_path: Path, cloud: CloudStandIn,
                                                                   pg_dsn: str) -> None:
    """A site's readings arrive spread over the minute, one outbox commit each. Once the uploader has
    caught up it waits for the next commit and gathers, rather than send a request per commit."""
    clock = ScaledClock(T0, speed=300)  # a reading pair every 0.2 s of real time, one commit each
    cloud.faults.latency_s = 0.3  # a site's cloud over 4G: commits arrive while a request is out
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(minutes=40), gather_s=300.0)  # 1 s real
    try:
        await asyncio.wait_for(h.producer.done.wait(), 60)
        await eventually(lambda: len(h.cloud_slots("mg_meter_readings")) == len(h.producer.slots), timeout=60)
    finally:
        assert await h.stop() == 0
    posts = [r for r in cloud.log if r.method == "POST" and r.table == "mg_meter_readings" and r.status == 201]
    assert sum(r.rows for r in posts) == 40
    # Seen: gathering, 8 readings a request (5 requests); chasing the commits, 3 a request (13 requests).
    assert len(posts) <= 9, [r.rows for r in posts]


@pytest.mark.parametrize("child_drain_rows", [5_000, 0], ids=["from-a-child", "in-the-daemon"])
async def test_seven_days_without_the_cloud_then_complete_ordered_recovery(
        tmp_path: Path, cloud: CloudStandIn, pg_dsn: str, capsys: pytest.CaptureFixture[str],
        child_drain_rows: int) -> None:
    cloud.faults.down = True
    max_bytes = 32 << 20
    clock = ScaledClock(T0, speed=40000)  # the week in 15 s
    end = T0 + timedelta(days=7)
    h = await start(tmp_path, cloud, pg_dsn, clock, end, max_bytes=max_bytes, child_drain_rows=child_drain_rows)
    try:
        peak = 0
        while not h.producer.done.is_set():
            peak = max(peak, h.outbox_bytes())
            assert h.task.done() is False
            await asyncio.sleep(0.2)
        assert len(h.producer.slots) == 7 * 1440
        assert h.cloud_slots("mg_bess_readings") == []
        cloud.keep_log = True
        cloud.log.clear()
        cloud.faults.down = False
        # Both tables: their rows go up in batches of their own, so one can finish a batch before the other.
        await eventually(lambda: all(len(h.cloud_slots(t)) == len(h.producer.slots)
                                     for t in ("mg_meter_readings", "mg_bess_readings")), timeout=180, interval=0.5)
        assert h.cloud_slots("mg_bess_readings") == h.producer.slots
        peak = max(peak, h.outbox_bytes())
        assert peak <= max_bytes
        firsts = [e.first_time for e in cloud.log if e.table == "mg_meter_readings"]
        assert firsts == sorted(firsts)  # delivered in order, oldest first
        assert h.runtime.services.outbox.dropped_pending == 0
        counters = h.runtime.services.sinks["cloud"]
        if child_drain_rows:  # the week's 20 160 rows are well over the threshold, 10-row tries included
            try:  # the readings up, it answers soon
                await eventually(lambda: counters.child_drains + counters.child_failures >= 1, timeout=120)
            except AssertionError as exc:
                raise AssertionError(f"no answer from a child: {counters}") from exc
            assert (counters.child_drains, counters.child_failures) == (1, 0), counters
            return
        assert counters.child_drains == 0
        # The week's 20 160 rows are over GIVE_BACK_AFTER_ROWS: once caught up, the batches' memory is given back.
        logged: list[str] = []

        def given_back() -> bool:
            out = capsys.readouterr()  # the daemon's log lines (stdout under pytest); each read takes them
            logged.append(out.out + out.err)
            return "backlog of" in "".join(logged)

        await eventually(given_back, timeout=30)
    finally:
        assert await h.stop() == 0


async def test_full_outbox_drops_oldest_pending_with_an_alert(tmp_path: Path, cloud: CloudStandIn,
                                                              pg_dsn: str) -> None:
    cloud.faults.down = True
    clock = ScaledClock(T0, speed=20000)
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(days=3), max_bytes=1 << 20)
    alerts: list[Event] = []
    await eventually(lambda: h.daemon.runtime is not None, timeout=10)
    h.runtime.bus.events.on(lambda e: alerts.append(e) if e.kind == "outbox_full_dropped" else None)
    try:
        await asyncio.wait_for(h.producer.done.wait(), 120)
        await eventually(lambda: h.runtime.services.outbox.queued == 0, timeout=30)
        dropped = h.runtime.services.outbox.dropped_pending
        assert dropped > 0
        assert sum(e.data["rows"] for e in alerts) == dropped
        assert h.outbox_bytes() <= 1 << 20
    finally:
        assert await h.stop() == 0


async def test_rows_the_cloud_lost_are_restored_by_the_coverage_check(tmp_path: Path, cloud: CloudStandIn,
                                                                      pg_dsn: str) -> None:
    clock = ScaledClock(T0, speed=3000)
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(hours=3), coverage_s=1800)
    try:
        await asyncio.wait_for(h.producer.done.wait(), 60)
        n = len(h.producer.slots)
        await eventually(lambda: len(h.cloud_slots("mg_meter_readings")) == n, timeout=60)
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("DELETE FROM flux.mg_meter_readings WHERE time >= %s AND time < %s",
                         (T0 + timedelta(minutes=30), T0 + timedelta(minutes=90)))
        assert len(h.cloud_slots("mg_meter_readings")) == n - 60
        await eventually(lambda: len(h.cloud_slots("mg_meter_readings")) == n, timeout=60, interval=0.2)
        assert h.cloud_slots("mg_meter_readings") == h.producer.slots
        await eventually(lambda: h.runtime.services.sinks["cloud"].rows_recovered >= 60, timeout=10)
    finally:
        assert await h.stop() == 0


async def test_a_corrupt_outbox_is_moved_aside_with_an_alert_and_the_daemon_keeps_running(
        tmp_path: Path, cloud: CloudStandIn, pg_dsn: str) -> None:
    box = outbox_path(tmp_path / "var" / "svc")
    box.parent.mkdir(parents=True)
    box.write_bytes(b"\x00garbage, not SQLite" * 1000)
    clock = ScaledClock(T0, speed=600)
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(minutes=10))
    try:
        await asyncio.wait_for(h.producer.done.wait(), 60)
        await eventually(lambda: len(h.cloud_slots("mg_bess_readings")) == len(h.producer.slots), timeout=60)
        assert not h.task.done()
        assert h.daemon.supervisor.restarts("outbox") == 0
        aside = list(box.parent.glob("outbox.sqlite3.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"\x00garbage")
        with psycopg.connect(pg_dsn) as conn:
            kinds = [r[0] for r in conn.execute("SELECT kind FROM flux.mg_controller_events")]
        assert "outbox_corrupt" in kinds  # the alert went out as an event, through the fresh outbox
    finally:
        assert await h.stop() == 0


async def test_outbox_stats_command(tmp_path: Path, cloud: CloudStandIn, pg_dsn: str) -> None:
    clock = ScaledClock(T0, speed=600)
    cloud.faults.down = True
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(minutes=5))
    try:
        await asyncio.wait_for(h.producer.done.wait(), 60)
        await eventually(lambda: h.runtime.services.outbox.rows_written >= 2 * len(h.producer.slots), timeout=30)
    finally:
        assert await h.stop() == 0
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "controller", "outbox", "stats", "--site", str(tmp_path / "site.yaml")],
        check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["pending"] >= 2 * len(h.producer.slots) and stats["uploaded"] == 0
    assert stats["oldest_pending"] == T0.isoformat()
    assert stats["bytes"] > 0


async def test_reload_restarts_only_the_changed_sink_and_loses_nothing(tmp_path: Path, cloud: CloudStandIn,
                                                                       pg_dsn: str) -> None:
    clock = ScaledClock(T0, speed=300)
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(minutes=20))
    try:
        await eventually(lambda: len(h.cloud_slots("mg_bess_readings")) >= 3, timeout=60)
        (tmp_path / "site.yaml").write_text(site_yaml(tmp_path / "var", cloud.url, batch_size=7))
        assert await h.daemon.reload()
        await asyncio.wait_for(h.producer.done.wait(), 60)
        await eventually(lambda: h.cloud_slots("mg_meter_readings") == h.producer.slots, timeout=60)
        assert h.cloud_slots("mg_bess_readings") == h.producer.slots
        assert h.runtime.services.sinks["cloud"].batch_size == 7
        assert h.runtime.services.outbox.writer_starts == 1  # the writer's config did not change
    finally:
        assert await h.stop() == 0


@pytest.fixture
def second_dsn(pg_dsn: str) -> Iterator[str]:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    name = f"{info['dbname']}_b"
    info["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    ensure_database(dsn)
    migrate(dsn)
    try:
        yield dsn
    finally:
        info["dbname"] = "postgres"
        with psycopg.connect(psycopg.conninfo.make_conninfo(**info), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_sinks_advance_independently(tmp_path: Path, cloud: CloudStandIn, pg_dsn: str,
                                               second_dsn: str) -> None:
    cloud.faults.down = True
    site = site_yaml(tmp_path / "var", cloud.url) + f'    - {{type: postgres, name: warehouse, dsn: "{second_dsn}"}}\n'
    (tmp_path / "site.yaml").write_text(site)
    producer = Producer(T0 + timedelta(minutes=30))
    clock = ScaledClock(T0, speed=600)
    daemon = Daemon(str(tmp_path / "site.yaml"), clock, builders=[uploader_components, producer.provider])
    h = Harness(daemon, asyncio.create_task(daemon.run()), producer, cloud, pg_dsn, tmp_path / "var")
    warehouse = Harness(daemon, h.task, producer, cloud, second_dsn, tmp_path / "var")
    try:
        await asyncio.wait_for(producer.done.wait(), 60)
        await eventually(lambda: warehouse.cloud_slots("mg_meter_readings") == producer.slots, timeout=60)
        assert h.cloud_slots("mg_meter_readings") == []  # the other sink's cloud is down: its rows wait
        stats = h.runtime.services.outbox.outbox.stats()
        assert stats["sinks"]["warehouse"]["pending"] == 0 and stats["sinks"]["cloud"]["pending"] > 0
        cloud.faults.down = False
        await eventually(lambda: h.cloud_slots("mg_meter_readings") == producer.slots, timeout=120)
        assert h.cloud_slots("mg_bess_readings") == producer.slots
    finally:
        assert await h.stop() == 0


def _forecast(made_at: datetime, net_kw: float) -> Forecast:
    periods = tuple(PeriodForecast(made_at + timedelta(minutes=30 * i), {
        NET_LOAD: Band(net_kw, net_kw - 10, net_kw + 10), PRICE: Band(12.0, 8.0, 15.0)}) for i in range(3))
    return Forecast(made_at, periods, {NET_LOAD: "profile", PRICE: "persistence"}, ("price: 2 days of history",))


def _plan(plan_id: str, created_at: datetime) -> dict[str, Any]:
    return {"plan_id": plan_id, "created_at": created_at.isoformat(), "status": "optimal", "breaches": [],
            "expected_value_gbp": 12.5, "periods": [
                {"start": created_at.isoformat(), "battery_kw": -250.0, "soe_end_kwh": 625.0,
                 "price_p_per_kwh": 8.0, "net_load_kw": float("nan")}]}


async def test_plans_and_forecasts_reach_their_cloud_tables_once(tmp_path: Path, cloud: CloudStandIn,
                                                                 pg_dsn: str) -> None:
    from uploader.tables import site_device_id

    clock = ScaledClock(T0, speed=600)
    h = await start(tmp_path, cloud, pg_dsn, clock, T0 + timedelta(minutes=2))
    try:
        await eventually(lambda: h.daemon.runtime is not None and h.runtime.services.outbox is not None, timeout=10)
        await asyncio.wait_for(h.producer.done.wait(), 60)
        t1, t2 = T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)
        for plan in (_plan("p1", t1), _plan("p1", t1), _plan("p2", t2)):  # the first twice: one row
            h.runtime.alert("plan_made", "info", f"plan {plan['plan_id']}", plan=plan)
        for f in (_forecast(t1, 40.0), _forecast(t1, 40.0), _forecast(t2, -5.0)):
            h.runtime.bus.forecasts.publish(f)
        await eventually(lambda: len(h.cloud_slots("mg_controller_plans")) == 2
                         and len(h.cloud_slots("mg_controller_forecasts")) == 2, timeout=60)
        # Resent (as after a crash before the cursor moved): still one row per key.
        h.runtime.alert("plan_made", "info", "plan p1", plan=_plan("p1", t1))
        h.runtime.bus.forecasts.publish(_forecast(t2, -5.0))
        await eventually(lambda: h.runtime.services.outbox.queued == 0, timeout=10)
    finally:
        assert await h.stop() == 0
    site = str(site_device_id("svc"))
    with psycopg.connect(pg_dsn) as conn:
        plans = conn.execute("SELECT plan_id, inputs_hash, time, device_id::text, status, expected_value_gbp, "
                             "periods FROM flux.mg_controller_plans ORDER BY time").fetchall()
        forecasts = conn.execute("SELECT time, device_id::text, body, forecasters, notes "
                                 "FROM flux.mg_controller_forecasts ORDER BY time").fetchall()
        planned = conn.execute("SELECT count(*) FROM flux.mg_controller_events WHERE kind = 'plan_made'").fetchone()
    assert [(p[0], p[1], p[2], p[3], p[4], p[5]) for p in plans] == [
        ("p1", "p1", t1, site, "optimal", 12.5), ("p2", "p2", t2, site, "optimal", 12.5)]
    assert plans[0][6][0]["battery_kw"] == -250.0 and plans[0][6][0]["net_load_kw"] is None
    assert planned is not None and planned[0] >= 2  # each plan_made is still an event (at its own time)
    assert [(f[0], f[1]) for f in forecasts] == [(t1, site), (t2, site)]
    assert forecasts[0][2] == _forecast(t1, 40.0).as_json()
    assert forecasts[1][2]["periods"][0]["net_load_kw"] == {"value": -5.0, "lower": -15.0, "upper": 5.0}
    assert forecasts[0][3] == {"net_load_kw": "profile", "price_p_per_kwh": "persistence"}
    assert forecasts[0][4] == ["price: 2 days of history"]
