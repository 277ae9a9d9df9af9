"""The Axle client against the simulator's Axle stand-in on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from controller.core.clock import ManualClock
from controller.core.reading import Reading
from controller.core.state import StateStore
from controller.market.axle import AxleClient, TelemetrySource
from controller.market.config import AxleConfig
from simulator.http import HttpServer
from simulator.market import AxleStandIn
from tests.helpers import eventually, free_port

T0 = datetime(2026, 6, 3, 16, 45, tzinfo=UTC)  # 17:45 BST: the default schedule says avoid_import
SITE, BMETER, BESS = (UUID(int=i) for i in (1, 2, 3))
SOURCES = [TelemetrySource("boundary_import_kw", SITE, "power_total_active"),
           TelemetrySource("battery_inverter_import_kw", BMETER, "power_total_active", negate=True),
           TelemetrySource("battery_stored_energy_kwh", BESS, "soe_kwh")]


@contextlib.asynccontextmanager
async def axle(password: str = "pw") -> AsyncIterator[tuple[AxleStandIn, AxleClient, ManualClock, StateStore]]:
    clock = ManualClock(T0)
    stand_in = AxleStandIn(clock, username="site", password="pw")
    state = StateStore()
    async with HttpServer(stand_in.handle, "127.0.0.1", free_port()) as server:
        cfg = AxleConfig.model_validate({"base_url": server.url, "asset_id": "asset-1", "username": "site",
                                         "password": password, "max_schedule_age_s": 60})
        client = AxleClient(cfg, clock, state, SOURCES)
        try:
            yield stand_in, client, clock, state
        finally:
            await client.close()


def read(state: StateStore, device: UUID, at: datetime, **fields: float) -> None:
    state.update(Reading(device, "d", "k", at, fields, at))


async def test_login_and_schedule() -> None:
    async with axle() as (_stand_in, client, clock, _):
        assert await client.fetch_schedule()
        assert client.counts["logins"] == 1
        now = clock.now()
        covering = [s for s in client.schedule if s.covers(now)]
        assert [s.action for s in covering] == ["avoid_import"]
        assert covering[0].start == datetime(2026, 6, 3, 16, 30, tzinfo=UTC)


async def test_wrong_credentials_mean_no_schedule() -> None:
    async with axle(password="wrong") as (_, client, _clock, _state):
        assert not await client.fetch_schedule()
        assert client.schedule == ()
        assert client.counts["schedule_errors"] == 1


async def test_an_expired_token_is_renewed_once() -> None:
    async with axle() as (stand_in, client, _, _state):
        assert await client.fetch_schedule()
        stand_in.expire_tokens()
        assert await client.fetch_schedule()
        assert client.counts["logins"] == 2


async def test_unknown_actions_pass_through_and_malformed_steps_are_skipped() -> None:
    async with axle() as (stand_in, client, _, _state):
        start, end = T0 - timedelta(minutes=5), T0 + timedelta(minutes=25)
        stand_in.steps = [
            {"start_timestamp": start.isoformat(), "end_timestamp": end.isoformat(), "action": "boost"},
            {"start_timestamp": "yesterday", "end_timestamp": end.isoformat(), "action": "charge_max"},
            {"end_timestamp": end.isoformat(), "action": "charge_max"},
        ]
        assert await client.fetch_schedule()
        assert [s.action for s in client.schedule] == ["boost"]  # the axle mode logs and counts it
        assert client.counts["malformed_steps"] == 2


async def test_a_schedule_not_refreshed_is_no_schedule() -> None:
    async with axle() as (stand_in, client, clock, _):
        assert await client.fetch_schedule()
        stand_in.faults.fail_status = 503
        await clock.advance(30)
        assert not await client.fetch_schedule()
        assert client.schedule != ()  # still within max_schedule_age_s
        await clock.advance(31)
        assert client.schedule == ()


async def test_telemetry_sends_only_fresh_values_once() -> None:
    async with axle() as (stand_in, client, clock, state):
        read(state, SITE, T0, power_total_active=42.0)
        read(state, BMETER, T0, power_total_active=-30.0)  # the battery charging at 30 kW
        read(state, BESS, T0, soe_kwh=512.5)
        assert await client.upload() == 3
        got = {r["label"]: r for r in stand_in.readings}
        assert got["boundary_import_kw"]["value"] == 42.0
        assert got["battery_inverter_import_kw"]["value"] == 30.0
        assert got["battery_stored_energy_kwh"]["value"] == 512.5
        assert got["boundary_import_kw"]["start_timestamp"] == got["boundary_import_kw"]["end_timestamp"] \
            == T0.isoformat()
        assert all(r["asset_id"] == "asset-1" for r in stand_in.readings)
        await clock.advance(10)
        assert await client.upload() == 0  # nothing new: old values are never re-sent
        read(state, SITE, clock.now(), power_total_active=44.0)
        assert await client.upload() == 1
        assert stand_in.readings[-1]["value"] == 44.0
        await clock.advance(60)
        read(state, BESS, clock.now() - timedelta(seconds=31), soe_kwh=500.0)  # newer than sent, but too old
        assert await client.upload() == 0


async def test_a_failed_upload_is_counted_and_sent_next_time() -> None:
    async with axle() as (stand_in, client, _, state):
        read(state, SITE, T0, power_total_active=42.0)
        stand_in.faults.fail_status = 500
        assert await client.upload() == 0
        assert client.counts["upload_errors"] == 1
        stand_in.faults.fail_status = None
        assert await client.upload() == 1


async def test_run_polls_and_uploads_on_its_cadences() -> None:
    async with axle() as (stand_in, client, clock, state):
        read(state, SITE, T0, power_total_active=42.0)
        task = asyncio.create_task(client.run())
        try:
            await eventually(lambda: client.schedule != () and len(stand_in.readings) == 1)
            await clock.advance(client.config.schedule_poll_interval_s)
            await eventually(lambda: client.counts["schedule_requests"] >= 2)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert len(stand_in.readings) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_telemetry_refused_is_counted(status: int) -> None:
    async with axle() as (stand_in, client, _, state):
        read(state, SITE, T0, power_total_active=1.0)
        stand_in.faults.fail_status = status
        assert await client.upload() == 0
        assert client.counts["upload_errors"] == 1
