"""Plans and forecasts as cloud rows: the mapping, and gap recovery over the forecasts table
(real outbox, real PostgreSQL sink). The daemon path (bus -> outbox -> cloud) is in test_components.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg

from controller.core.bus import Event
from controller.core.forecast import NET_LOAD, Band, Forecast, PeriodForecast
from tests.uploader.fixtures import T0
from uploader.config import BufferConfig, PostgresSinkConfig, UploaderConfig
from uploader.coverage import resend_missing, streams
from uploader.migrate import migrate
from uploader.outbox import Outbox
from uploader.postgres import PostgresSink
from uploader.site import UploaderSite
from uploader.tables import FORECASTS, PLANS, map_forecast, map_plan, plan_of, site_device_id


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
