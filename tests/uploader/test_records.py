"""Plans and forecasts as cloud rows: the mapping, and gap recovery over the forecasts, events and plans
tables (real outbox, real PostgreSQL sink or the PostgREST stand-in). The daemon path (bus -> outbox ->
cloud) is in test_components.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from controller.core.bus import Event
from controller.core.forecast import NET_LOAD, Band, Forecast, PeriodForecast
from simulator.cloud import CloudStandIn
from tests.uploader.fixtures import T0
from uploader.config import BufferConfig, PostgresSinkConfig, PostgrestSinkConfig, UploaderConfig
from uploader.coverage import resend_missing, streams
from uploader.migrate import migrate
from uploader.outbox import Outbox
from uploader.postgres import PostgresSink
from uploader.postgrest import PostgrestSink
from uploader.sink import Sink
from uploader.site import UploaderSite
from uploader.tables import EVENTS, FORECASTS, PLANS, map_event, map_forecast, map_plan, plan_of, site_device_id


def forecast(minutes: int, kw: float = 10.0) -> Forecast:
    made = T0 + timedelta(minutes=minutes)
    return Forecast(made, (PeriodForecast(made, {NET_LOAD: Band(kw, kw - 1, kw + 2)}),),
                    {NET_LOAD: "profile"}, ("note",))


def test_a_forecast_is_filed_under_the_site_at_its_made_at() -> None:
    row = map_forecast(forecast(30), "demo")
    assert row.table == FORECASTS.name and FORECASTS.conflict == ("device_id", "time")
    assert row.key == row.values["device_id"] == str(site_device_id("demo"))
    assert row.time == T0 + timedelta(minutes=30) and row.values["time"] == (T0 + timedelta(minutes=30)).isoformat()
    assert row.values["body"] == forecast(30).as_json()
    assert row.values["forecasters"] == {NET_LOAD: "profile"} and row.values["notes"] == ["note"]
    assert map_forecast(forecast(30), "demo").body() == row.body()  # the same forecast: the same row


def test_only_plan_made_events_with_a_plan_body_are_plans() -> None:
    plan = {"plan_id": "ab", "created_at": T0.isoformat(), "status": "optimal", "periods": []}
    assert plan_of(Event(T0, "plan_made", "info", "m", {"plan": plan})) == plan
    assert plan_of(Event(T0, "plan_failed", "info", "m", {"plan": plan})) is None
    assert plan_of(Event(T0, "plan_made", "info", "m", {"plan": {"plan_id": "ab"}})) is None
    assert map_plan(plan, "demo").table == PLANS.name


def _site(tmp_path: Path) -> UploaderSite:
    return UploaderSite("rec", BufferConfig(path=str(tmp_path / "{site}")), UploaderConfig(), (), None, {})


async def test_gap_recovery_resends_forecasts_the_cloud_lost(tmp_path: Path, pg_dsn: str) -> None:
    migrate(pg_dsn)
    site = _site(tmp_path)
    assert ("forecasts", FORECASTS.name, str(site_device_id("rec"))) in [(s.label, s.table, s.key)
                                                                        for s in streams(site)]
    sink = PostgresSink(PostgresSinkConfig(type="postgres", name="pg", dsn=pg_dsn))
    box = Outbox.open(tmp_path / "rec")
    try:
        box.register_sinks(["pg"])
        plan = {"plan_id": "ab", "created_at": T0.isoformat(), "status": "optimal", "periods": []}
        rows = [map_forecast(forecast(30 * i), "rec") for i in range(4)] + [map_plan(plan, "rec")]
        box.add(rows)
        for table in (FORECASTS.name, PLANS.name):
            await sink.upload_bodies(table, [r.body() for r in rows if r.table == table])
        box.ack("pg", box.pending("pg", 100)[-1].seq)
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("DELETE FROM flux.mg_controller_forecasts WHERE time = %s", (T0 + timedelta(minutes=30),))
        resent = await resend_missing(sink, box, site, T0, T0 + timedelta(days=1))
        assert resent == {"forecasts": 1}
        assert await resend_missing(sink, box, site, T0, T0 + timedelta(days=1)) == {}
        with psycopg.connect(pg_dsn) as conn:
            times = [r[0] for r in conn.execute("SELECT time FROM flux.mg_controller_forecasts ORDER BY time")]
            plans = conn.execute("SELECT count(*) FROM flux.mg_controller_plans").fetchone()
        assert times == [T0 + timedelta(minutes=30 * i) for i in range(4)] and plans == (1,)
    finally:
        box.close()
        await sink.close()


def _cloud(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.parametrize("sink_type", ["postgres", "postgrest"])
async def test_gap_recovery_resends_events_and_plans_the_cloud_lost(sink_type: str, tmp_path: Path,
                                                                    pg_dsn: str) -> None:
    migrate(pg_dsn)
    site = _site(tmp_path)
    assert {(s.label, s.table, s.key, s.id_column) for s in streams(site)} >= {
        ("events", EVENTS.name, str(site_device_id("rec")), "event_id"),
        ("plans", PLANS.name, str(site_device_id("rec")), "plan_id")}
    async with CloudStandIn(pg_dsn, "rec-key") as cloud:
        sink: Sink = (PostgresSink(PostgresSinkConfig(type="postgres", name="cloud", dsn=pg_dsn))
                      if sink_type == "postgres" else
                      PostgrestSink(PostgrestSinkConfig(type="postgrest", name="cloud", url=cloud.url, api_key="rec-key")))
        box = Outbox.open(tmp_path / "rec")
        try:
            box.register_sinks(["cloud"])
            t = T0 + timedelta(minutes=10, microseconds=123456)
            # Three events at one time, told apart by their ids alone (a time held is not each event held).
            events = [Event(t, "mode_changed", "Info", f"event {i}", {"i": i}) for i in range(3)]
            events.append(Event(T0 + timedelta(minutes=20), "upload_backlog", "Error", "event 3", {}))
            plans = [{"plan_id": pid, "created_at": t.isoformat(), "status": "optimal", "periods": []}
                     for pid in ("pa", "pb")]
            rows = [map_event(e, "rec") for e in events] + [map_plan(p, "rec") for p in plans]
            box.add(rows)
            for table in (EVENTS.name, PLANS.name):
                await sink.upload_bodies(table, [r.body() for r in rows if r.table == table])
            box.ack("cloud", box.pending("cloud", 100)[-1].seq)
            with psycopg.connect(pg_dsn) as conn:
                conn.execute("DELETE FROM flux.mg_controller_events WHERE message IN ('event 1', 'event 3')")
                conn.execute("DELETE FROM flux.mg_controller_plans WHERE plan_id = 'pb'")
            resent = await resend_missing(sink, box, site, T0, T0 + timedelta(days=1))
            assert resent == {"events": 2, "plans": 1}
            assert await resend_missing(sink, box, site, T0, T0 + timedelta(days=1)) == {}
        finally:
            box.close()
            await sink.close()
    assert _cloud(pg_dsn, "SELECT message, time FROM flux.mg_controller_events ORDER BY message") == [
        ("event 0", t), ("event 1", t), ("event 2", t), ("event 3", T0 + timedelta(minutes=20))]
    assert _cloud(pg_dsn, "SELECT plan_id FROM flux.mg_controller_plans ORDER BY plan_id") == [("pa",), ("pb",)]
