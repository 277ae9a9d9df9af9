"""The Modo client against the simulator's Modo stand-in on a real socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from controller.core.clock import ManualClock
from controller.market.config import ModoConfig
from controller.market.modo import ModoClient
from simulator.http import HttpServer
from simulator.market import ModoStandIn, load_day
from tests.helpers import free_port

DAY = load_day()


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@contextlib.asynccontextmanager
async def modo(now: datetime) -> AsyncIterator[tuple[ModoStandIn, ModoClient, ManualClock]]:
    clock = ManualClock(now)
    stand_in = ModoStandIn(clock)
    async with HttpServer(stand_in.handle, "127.0.0.1", free_port()) as server:
        client = ModoClient(ModoConfig(base_url=server.url, timeout_s=10), clock)
        try:
            yield stand_in, client, clock
        finally:
            await client.close()


SP_ROWS = [
    # (why, now, SP start UTC, SP number)
    ("summer SP33 (16:00 BST)", "2026-06-03T15:15", "2026-06-03T15:00", 33),
    ("winter SP1", "2026-12-02T00:10", "2026-12-02T00:00", 1),
    ("spring-forward day, last of 46", "2026-03-29T22:45", "2026-03-29T22:30", 46),
    ("fall-back day, SP6 in the repeated hour", "2026-10-25T01:40", "2026-10-25T01:30", 6),
    ("fall-back day, last of 50", "2026-10-25T23:45", "2026-10-25T23:30", 50),
]


@pytest.mark.parametrize(("why", "now", "start", "number"), SP_ROWS, ids=[r[0] for r in SP_ROWS])
async def test_price_and_volume_tagged_with_their_settlement_period(why: str, now: str, start: str,
                                                                     number: int) -> None:
    async with modo(Z(now)) as (_, client, _clock):
        price = await client.fetch("price")
        volume = await client.fetch("volume")
    price_mwh, niv = DAY[(number - 1) % 48]
    assert price is not None and volume is not None
    assert price.settlement_period == volume.settlement_period == Z(start)
    assert price.value == pytest.approx(price_mwh / 10)  # £/MWh -> p/kWh
    assert volume.value == pytest.approx(niv)
    assert client.price == price and client.volume == volume


async def test_scripted_value_is_converted_to_p_per_kwh() -> None:
    async with modo(Z("2026-06-03T15:15")) as (stand_in, client, _):
        stand_in.script[(date(2026, 6, 3), 33)] = (95.0, -120.0)
        await client.fetch("price")
        await client.fetch("volume")
        assert client.price is not None and client.price.value == pytest.approx(9.5)
        assert client.volume is not None and client.volume.value == -120.0


FAULTS = [
    # (fault knobs, counter that must move)
    ({"fail_status": 503}, "errors"),
    ({"malformed": True}, "malformed"),
    ({"empty": True}, "empty"),
    ({"drop": True}, "errors"),
]


@pytest.mark.parametrize(("knobs", "counter"), FAULTS, ids=["http_503", "malformed", "empty", "dropped"])
async def test_errors_keep_the_previous_value_and_are_counted(knobs: dict[str, object], counter: str) -> None:
    async with modo(Z("2026-06-03T15:15")) as (stand_in, client, clock):
        good = await client.fetch("price")
        assert good is not None
        await clock.advance(1800)  # the next SP
        stand_in.faults.update(knobs)
        assert await client.fetch("price") is None
        assert client.price == good
        assert client.counts[counter] == 1


async def test_a_future_settlement_period_is_rejected_and_counted() -> None:
    async with modo(Z("2026-06-03T15:15")) as (stand_in, client, _):
        stand_in.future_periods = 2
        value = await client.fetch("volume")
        assert value is not None and value.settlement_period == Z("2026-06-03T15:00")
        assert client.counts["future_rejected"] == 2


async def test_nothing_published_yet_today_is_empty() -> None:
    async with modo(Z("2026-06-02T23:00")) as (stand_in, client, _):
        stand_in.publish_delay_s = 600  # SP1 of 3 June is not out yet
        assert await client.fetch("price") is None
        assert client.counts["empty"] == 1


async def test_admin_endpoint_sets_fault_knobs_over_http() -> None:
    import httpx

    async with modo(Z("2026-06-03T15:15")) as (stand_in, client, _):
        assert client._http is None
        base = str(client.config.base_url)
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.post("/_sim/faults", json={"fail_status": 500})
            assert r.status_code == 200
            bad = await http.post("/_sim/faults", json={"no_such_knob": 1})
            assert bad.status_code == 422
        assert stand_in.faults.fail_status == 500
        assert await client.fetch("price") is None
        assert client.counts["errors"] == 1
