"""Both sinks against real servers: the PostgREST stand-in over a real PostgreSQL, and PostgreSQL itself.

Idempotency (every batch twice -> one row per slot) and the error classes of cloud.md, driven
through the Delivery loop with the stand-in's fault knobs.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from controller.core.bus import Event
from controller.core.clock import ManualClock
from controller.core.reading import Reading
from devices.catalog import CLOUD_ROUTING
from simulator.cloud import CloudStandIn
from tests.uploader.fixtures import BESS_ID, METER_ID, T0, bess, meter, minutes
from uploader.config import PostgresSinkConfig, PostgrestSinkConfig
from uploader.delivery import BackoffState, Delivery, SinkCounters
from uploader.migrate import migrate
from uploader.outbox import Outbox
from uploader.postgres import PostgresSink
from uploader.postgrest import PAGE_ROWS, PostgrestSink
from uploader.sink import ErrorKind, SinkError
from uploader.tables import map_event, map_reading

KEY = "test-anon-key"
HEAT_ID = uuid.UUID("7b0d0c6e-5d2a-4c43-9a57-000000000201")


@pytest.fixture
async def cloud(pg_dsn: str) -> AsyncIterator[CloudStandIn]:
    async with CloudStandIn(pg_dsn, KEY) as standin:
        yield standin


def _postgrest(cloud: CloudStandIn, **kw: Any) -> PostgrestSink:
    return PostgrestSink(PostgrestSinkConfig(type="postgrest", name="cloud", url=cloud.url, api_key=KEY, **kw))


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM flux.{table}").fetchone()
        assert row is not None
        return int(row[0])


class Alerts(list[tuple[str, str]]):
    def __call__(self, kind: str, level: str, message: str, **data: Any) -> None:
        self.append((kind, level))


def _delivery(sink: Any, box: Outbox, alerts: Alerts, batch_size: int = 100) -> Delivery:
    return Delivery(sink, box, ManualClock(T0), batch_size=batch_size, backoff_max_s=300, alert=alerts,
                    counters=SinkCounters(), run=_now)


async def _now(fn: Any) -> Any:
    return fn()


async def test_postgrest_every_batch_twice_leaves_one_row_per_slot(cloud: CloudStandIn, pg_dsn: str) -> None:
    sink = _postgrest(cloud)
    try:
        for table, rows in (("mg_bess_readings", [map_reading(bess(t), CLOUD_ROUTING) for t in minutes(50)]),
                            ("mg_meter_readings", [map_reading(meter(t), CLOUD_ROUTING) for t in minutes(50)])):
            bodies = [r.body() for r in rows if r is not None]
            await sink.upload_bodies(table, bodies)
            await sink.upload_bodies(table, bodies)
            await sink.upload_bodies(table, bodies[10:20])
            assert _count(pg_dsn, table) == 50
        assert len(await sink.slots("mg_bess_readings", str(BESS_ID), T0, T0 + timedelta(minutes=20))) == 20
    finally:
        await sink.close()


async def test_postgres_every_batch_twice_leaves_one_row_per_slot(pg_dsn: str) -> None:
    migrate(pg_dsn)
    sink = PostgresSink(PostgresSinkConfig(type="postgres", name="pg", dsn=pg_dsn))
    try:
        rows = [map_reading(meter(t, power=float(i)), CLOUD_ROUTING) for i, t in enumerate(minutes(300))]
        bodies = [r.body() for r in rows if r is not None]
        await sink.upload_bodies("mg_meter_readings", bodies)
        await sink.upload_bodies("mg_meter_readings", bodies)
        assert _count(pg_dsn, "mg_meter_readings") == 300
        with psycopg.connect(pg_dsn) as conn:
            row = conn.execute("SELECT power_total_active, frequency FROM flux.mg_meter_readings "
                               "WHERE time = %s", (T0 + timedelta(minutes=7),)).fetchone()
        assert row == (7.0, 50.0)
        held = await sink.slots("mg_meter_readings", str(METER_ID), T0, T0 + timedelta(hours=1))
        assert held == set(minutes(60))
    finally:
        await sink.close()


async def test_nan_fields_arrive_as_null(cloud: CloudStandIn, pg_dsn: str) -> None:
    sink = _postgrest(cloud)
    try:
        row = map_reading(bess(T0, soe=float("nan"), target=float("inf")), CLOUD_ROUTING)
        assert row is not None
        await sink.upload_bodies("mg_bess_readings", [row.body()])
    finally:
        await sink.close()
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT soe, target_power FROM flux.mg_bess_readings").fetchall() == [(None, None)]


async def test_auth_failure_is_alerted_and_keeps_the_data(cloud: CloudStandIn, tmp_path: Path, pg_dsn: str) -> None:
    box = Outbox.open(tmp_path)
    box.add([map_reading(bess(t), CLOUD_ROUTING) for t in minutes(30)])
    alerts = Alerts()
    sink = _postgrest(cloud)
    delivery = _delivery(sink, box, alerts)
    try:
        cloud.faults.unauthorized = True
        n, delay = await delivery.step()
        assert (n, delay) == (0, 300)  # a configuration error: retried slowly
        assert alerts == [("upload_auth_error", "Error")]
        await delivery.step()
        assert len(alerts) == 1  # once per episode
        assert len(box.pending("cloud", 100)) == 30
        cloud.faults.unauthorized = False
        n, delay = await delivery.step()
        assert (n, delay) == (30, 0.0)
        assert alerts[-1] == ("upload_recovered", "Info")
        assert _count(pg_dsn, "mg_bess_readings") == 30
    finally:
        await sink.close()


async def test_a_wrong_key_is_an_auth_error(cloud: CloudStandIn) -> None:
    sink = PostgrestSink(PostgrestSinkConfig(type="postgrest", name="c", url=cloud.url, api_key="wrong-key"))
    try:
        with pytest.raises(SinkError) as err:
            await sink.upload("mg_bess_readings", [])
        assert err.value.kind is ErrorKind.AUTH and err.value.status == 401
    finally:
        await sink.close()


async def test_413_halves_the_batch_until_it_fits(cloud: CloudStandIn, tmp_path: Path, pg_dsn: str) -> None:
    box = Outbox.open(tmp_path)
    box.add([map_reading(bess(t), CLOUD_ROUTING) for t in minutes(200)])
    cloud.faults.max_body_bytes = 4000  # about 35 rows
    sink = _postgrest(cloud)
    delivery = _delivery(sink, box, Alerts(), batch_size=200)
    try:
        n, delay = await delivery.step()
        assert (n, delay) == (200, 0.0)
        assert delivery.batch_size < 40
        assert _count(pg_dsn, "mg_bess_readings") == 200
        assert box.pending("cloud", 10) == []
    finally:
        await sink.close()


async def test_server_errors_back_off_with_jitter_and_lose_nothing(cloud: CloudStandIn, tmp_path: Path,
                                                                   pg_dsn: str) -> None:
    box = Outbox.open(tmp_path)
    box.add([map_reading(bess(t), CLOUD_ROUTING) for t in minutes(20)])
    cloud.faults.down = True
    sink = _postgrest(cloud)
    alerts = Alerts()
    delivery = _delivery(sink, box, alerts)
    try:
        delays = [(await delivery.step())[1] for _ in range(6)]
        assert all(d > 0 for d in delays)
        assert delays[5] > delays[0]  # exponential
        assert delivery.counters.errors_by_kind == {"transient": 6}
        assert alerts == []  # transient trouble is not an operator alert
        assert len(box.pending("cloud", 100)) == 20
        cloud.faults.down = False
        assert await delivery.step() == (20, 0.0)
        assert _count(pg_dsn, "mg_bess_readings") == 20
    finally:
        await sink.close()


async def test_a_timeout_is_transient(cloud: CloudStandIn) -> None:
    cloud.faults.timeout_probability = 1.0
    cloud.faults.timeout_hold_s = 5.0
    sink = _postgrest(cloud, timeout_s=0.3)
    try:
        with pytest.raises(SinkError) as err:
            await sink.upload("mg_bess_readings", [map_reading(bess(T0), CLOUD_ROUTING).values])  # type: ignore[union-attr]
        assert err.value.kind is ErrorKind.TRANSIENT
    finally:
        await sink.close()


def _heat(t: Any, flags: int) -> Reading:
    return Reading(HEAT_ID, "heat", "heat_mbus", t, {"energy_kwh": 10.0, "error_flags": flags})


@pytest.mark.parametrize("sink_type", ["postgrest", "postgres"])
async def test_one_bad_row_is_bisected_out_and_quarantined(sink_type: str, cloud: CloudStandIn, tmp_path: Path,
                                                           pg_dsn: str) -> None:
    box = Outbox.open(tmp_path)
    times = minutes(40)
    # 2**40 does not fit the integer column: PostgreSQL refuses that one row (22003).
    box.add([map_reading(_heat(t, 2**40 if i == 23 else 0), CLOUD_ROUTING) for i, t in enumerate(times)])
    sink: Any = (_postgrest(cloud) if sink_type == "postgrest"
                 else PostgresSink(PostgresSinkConfig(type="postgres", name="cloud", dsn=pg_dsn)))
    alerts = Alerts()
    delivery = _delivery(sink, box, alerts)
    try:
        assert await delivery.step() == (40, 0.0)
        assert _count(pg_dsn, "mg_heat_readings") == 39
        (quarantined, reason), = box.quarantined("cloud")
        assert quarantined.time == times[23] and "22003" in reason
        assert alerts == [("upload_row_quarantined", "Error")]
        assert box.pending("cloud", 10) == []
    finally:
        await sink.close()


async def test_conflict_handling_not_applied_is_a_configuration_error(cloud: CloudStandIn) -> None:
    cloud.faults.strip_preference_applied = True
    sink = _postgrest(cloud)
    try:
        with pytest.raises(SinkError) as err:
            await sink.upload("mg_bess_readings", [map_reading(bess(T0), CLOUD_ROUTING).values])  # type: ignore[union-attr]
        assert err.value.kind is ErrorKind.CONFIG
    finally:
        await sink.close()


async def test_postgres_refused_password_is_an_auth_error(pg_dsn: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    info["user"] = "no_such_role_flux"
    sink = PostgresSink(PostgresSinkConfig(type="postgres", name="pg",
                                           dsn=psycopg.conninfo.make_conninfo(**info)))  # type: ignore[arg-type]
    with pytest.raises(SinkError) as err:
        await sink.upload("mg_bess_readings", [])
    assert err.value.kind is ErrorKind.AUTH


async def test_postgres_overlapping_batches_and_text_rows(pg_dsn: str) -> None:
    """A batch partly in the cloud already falls back to the temporary table; events (text and JSON columns,
    tabs and backslashes) take the general COPY path."""
    migrate(pg_dsn)
    sink = PostgresSink(PostgresSinkConfig(type="postgres", name="pg", dsn=pg_dsn))
    try:
        rows = [map_reading(bess(t, soe=float(i)), CLOUD_ROUTING) for i, t in enumerate(minutes(150))]
        bodies = [r.body() for r in rows if r is not None]
        await sink.upload_bodies("mg_bess_readings", bodies[:100])
        await sink.upload_bodies("mg_bess_readings", bodies[50:])
        await sink.upload_bodies("mg_bess_readings", bodies[140:])
        assert _count(pg_dsn, "mg_bess_readings") == 150
        event = map_event(Event(T0, "note", "Info", "tab\there, back\\slash", {"nan": float("nan"), "n": [1]}),
                          "site")
        await sink.upload_bodies("mg_controller_events", [event.body()])
        await sink.upload_bodies("mg_controller_events", [event.body()])
        with psycopg.connect(pg_dsn) as conn:
            got = conn.execute("SELECT message, data FROM flux.mg_controller_events").fetchall()
        assert got == [("tab\there, back\\slash", {"nan": None, "n": [1]})]
    finally:
        await sink.close()


async def test_slots_are_read_in_pages_beyond_postgrests_row_limit(cloud: CloudStandIn) -> None:
    sink = _postgrest(cloud)
    try:
        rows = [map_reading(bess(t), CLOUD_ROUTING) for t in minutes(2500)]
        await sink.upload_bodies("mg_bess_readings", [r.body() for r in rows if r is not None])
        held = await sink.slots("mg_bess_readings", str(BESS_ID), T0, T0 + timedelta(days=2))
        assert PAGE_ROWS < 2500 and held == set(minutes(2500))
    finally:
        await sink.close()


def test_backoff_stays_at_its_maximum_through_days_of_retries() -> None:
    backoff = BackoffState(1.0, 300.0)
    rng = random.Random(1)
    delays = [backoff.next_delay(rng) for _ in range(5000)]  # about two weeks of 300 s retries
    assert min(delays[20:]) >= 150.0 and max(delays) <= 300.0
