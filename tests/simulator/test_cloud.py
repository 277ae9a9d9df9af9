"""The PostgREST stand-in behaves like PostgREST v12 where flux-edge depends on it (over a real PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controller.config import SiteConfig, parse_site
from controller.core.clock import RealClock
from simulator.cloud import CloudStandIn, serve
from simulator.context import SimContext
from tests.helpers import free_port

KEY = "stand-in-key"
ROW = {"device_id": "7b0d0c6e-5d2a-4c43-9a57-000000000001", "time": "2026-06-01T00:00:00+00:00", "soe": 500.0,
       "target_power": 0.0}
WRITE = {"apikey": KEY, "Authorization": f"Bearer {KEY}", "Content-Profile": "flux"}
READ = {"apikey": KEY, "Authorization": f"Bearer {KEY}", "Accept-Profile": "flux"}


@pytest.fixture
async def client(pg_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with CloudStandIn(pg_dsn, KEY) as cloud, httpx.AsyncClient(base_url=cloud.url + "/rest/v1") as c:
        yield c


async def test_conflict_handling_needs_both_on_conflict_and_the_resolution(client: httpx.AsyncClient) -> None:
    first = await client.post("/mg_bess_readings", json=[ROW], headers=WRITE)
    assert first.status_code == 201
    # Either alone: a plain insert, so the resend fails with 409 / 23505.
    only_param = await client.post("/mg_bess_readings?on_conflict=device_id,time", json=[ROW], headers=WRITE)
    assert only_param.status_code == 409 and only_param.json()["code"] == "23505"
    only_prefer = await client.post("/mg_bess_readings", json=[ROW],
                                    headers={**WRITE, "Prefer": "resolution=ignore-duplicates"})
    assert only_prefer.status_code == 409
    both = await client.post("/mg_bess_readings?on_conflict=device_id,time", json=[ROW],
                             headers={**WRITE, "Prefer": "resolution=ignore-duplicates,return=minimal"})
    assert both.status_code == 201 and both.content == b""
    assert "resolution=ignore-duplicates" in both.headers["preference-applied"]


async def test_select_with_filters_order_and_paging(client: httpx.AsyncClient) -> None:
    rows = [{**ROW, "time": f"2026-06-01T00:{m:02d}:00+00:00", "soe": float(m)} for m in range(10)]
    assert (await client.post("/mg_bess_readings", json=rows, headers=WRITE)).status_code == 201
    params = {"select": "time,soe", "device_id": f"eq.{ROW['device_id']}", "order": "time.desc", "limit": "3",
              "offset": "1"}
    got = await client.get("/mg_bess_readings", params=[*params.items(), ("time", "gte.2026-06-01T00:02:00Z"),
                                                         ("time", "lt.2026-06-01T00:08:00Z")], headers=READ)
    assert got.status_code == 200
    assert got.json() == [{"time": "2026-06-01T00:06:00+00:00", "soe": 6.0},
                          {"time": "2026-06-01T00:05:00+00:00", "soe": 5.0},
                          {"time": "2026-06-01T00:04:00+00:00", "soe": 4.0}]


async def test_schema_profile_and_unknown_names(client: httpx.AsyncClient) -> None:
    no_profile = await client.get("/mg_bess_readings", headers={"apikey": KEY})
    assert no_profile.status_code == 404 and no_profile.json()["code"] == "PGRST205"
    other = await client.get("/mg_bess_readings", headers={**READ, "Accept-Profile": "api"})
    assert other.status_code == 406 and other.json()["code"] == "PGRST106"
    missing = await client.get("/nope", headers=READ)
    assert missing.status_code == 404
    bad_column = await client.post("/mg_bess_readings", json=[{**ROW, "colour": 1}], headers=WRITE)
    assert bad_column.status_code == 400 and bad_column.json()["code"] == "PGRST204"
    bad_value = await client.post("/mg_bess_readings", json=[{**ROW, "soe": "lots"}], headers=WRITE)
    assert bad_value.status_code == 400 and bad_value.json()["code"].startswith("22")
    bad_json = await client.post("/mg_bess_readings", content=b"[{", headers=WRITE)
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "PGRST102"


async def test_keys_are_checked(client: httpx.AsyncClient) -> None:
    assert (await client.get("/mg_bess_readings", headers={"Accept-Profile": "flux"})).status_code == 401
    wrong = await client.get("/mg_bess_readings", headers={**READ, "apikey": "other"})
    assert wrong.status_code == 401
    bad_jwt = await client.get("/mg_bess_readings", headers={**READ, "Authorization": "Bearer forged"})
    assert bad_jwt.status_code == 401 and bad_jwt.json()["code"] == "PGRST301"


async def test_fault_knobs(pg_dsn: str) -> None:
    async with CloudStandIn(pg_dsn, KEY) as cloud, httpx.AsyncClient(base_url=cloud.url + "/rest/v1") as c:
        cloud.faults.max_body_bytes = 100
        big = await c.post("/mg_bess_readings", json=[ROW] * 5, headers=WRITE)
        assert big.status_code == 413
        cloud.faults.max_body_bytes = None
        cloud.faults.unauthorized = True
        expired = await c.get("/mg_bess_readings", headers=READ)
        assert expired.status_code == 401 and expired.json()["code"] == "PGRST301"
        cloud.faults.unauthorized = False
        cloud.faults.error_5xx_probability = 1.0
        assert (await c.get("/mg_bess_readings", headers=READ)).status_code == 503
        cloud.faults.error_5xx_probability = 0.0
        cloud.faults.timeout_probability = 1.0
        cloud.faults.timeout_hold_s = 0.1
        with pytest.raises(httpx.HTTPError):
            await c.get("/mg_bess_readings", headers=READ)


async def test_simulate_serves_the_cloud_the_site_file_asks_for(pg_dsn: str) -> None:
    port = free_port()
    site = SiteConfig.model_validate({
        "site": {"id": "sim", "name": "Sim"},
        "devices": [{"type": "acuvim2", "name": "m", "id": ROW["device_id"], "host": "127.0.0.1", "port": 15021}],
        "simulator": {"devices": [], "cloud": {"port": port, "dsn": pg_dsn, "api_key": KEY}},
    })
    ctx = SimContext(site, RealClock())
    task = asyncio.create_task(serve(ctx))
    try:
        await asyncio.wait_for(ctx.ready("cloud").wait(), 60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/rest/v1") as c:
            answer = await c.get("/mg_device_registry", headers=READ)
        assert answer.status_code == 200 and json.loads(answer.content) == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_get_returns_at_most_max_rows(client: httpx.AsyncClient) -> None:
    rows = [{**ROW, "time": f"2026-06-0{1 + m // 1440}T{m % 1440 // 60:02d}:{m % 60:02d}:00+00:00"}
            for m in range(1200)]
    assert (await client.post("/mg_bess_readings", json=rows, headers=WRITE)).status_code == 201
    got = await client.get("/mg_bess_readings", params={"select": "time"}, headers=READ)
    assert len(got.json()) == 1000


async def test_without_postgresql_the_stand_in_steps_aside_and_the_simulator_runs_on(root: Path) -> None:
    """`make run` on a machine with no PostgreSQL: no cloud, but no crashed simulator either."""
    text = (root / "config" / "sites" / "demo.yaml").read_text()
    site = parse_site(text.replace("postgresql://postgres@127.0.0.1:5432/flux_demo",
                                   f"postgresql://postgres@127.0.0.1:{free_port()}/flux_demo"))
    ctx = SimContext(site, RealClock())
    await asyncio.wait_for(serve(ctx), 30)  # returns instead of raising
    assert "cloud" not in ctx.shared


async def test_requests_are_read_by_h11_with_keep_alive(pg_dsn: str) -> None:
    """The stand-in serves through the daemon's h11 core: several requests on one connection, and a malformed
    one answered 400 and the connection closed (the hand-written parser took `Bad Header` as a header)."""
    async with CloudStandIn(pg_dsn, KEY) as cloud:
        reader, writer = await asyncio.open_connection("127.0.0.1", cloud.port)
        try:
            get = (f"GET /rest/v1/mg_bess_readings?select=time HTTP/1.1\r\nHost: x\r\napikey: {KEY}\r\n"
                   "Accept-Profile: flux\r\n\r\n").encode()
            for _ in range(2):
                writer.write(get)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))
                assert await reader.readexactly(length) == b"[]"
            writer.write(b"GET /rest/v1/mg_bess_readings HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            # To the end: the server closes after a malformed request (the bound only keeps a regression from hanging).
            answer = await asyncio.wait_for(reader.read(), 60)
            assert answer.startswith(b"HTTP/1.1 400 ")
        finally:
            writer.close()
