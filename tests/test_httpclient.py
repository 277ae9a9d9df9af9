"""Every HTTP client of the daemon shares the process-wide TLS context and keep-alive (controller.core.httpclient)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import httpx

from controller.core.clock import ManualClock
from controller.core.httpclient import KEEPALIVE_S, client_context
from controller.market.axle import AxleClient
from controller.market.config import AxleConfig, ModoConfig
from controller.market.modo import ModoClient
from uploader.config import PostgrestSinkConfig
from uploader.postgrest import PostgrestSink


def _pool(client: httpx.AsyncClient) -> tuple[ssl.SSLContext, float]:
    # httpx keeps both on its connection pool (httpx 0.28, httpcore 1.0).
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool._ssl_context, ssl.SSLContext)
    return pool._ssl_context, pool._keepalive_expiry


async def test_the_sink_and_the_market_clients_share_one_verifying_context_and_keep_alive() -> None:
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    sink = PostgrestSink(PostgrestSinkConfig(type="postgrest", name="cloud", url="https://example.invalid",
                                             api_key="k"))
    modo = ModoClient(ModoConfig(base_url="https://example.invalid"), clock)
    axle = AxleClient(AxleConfig.model_validate(
        {"base_url": "https://example.invalid", "asset_id": "a", "username": "u", "password": "p"}), clock)
    try:
        pools = {(id(context), expiry) for context, expiry in map(_pool, (sink._client, modo._client(), axle._client()))}
        assert pools == {(id(client_context()), KEEPALIVE_S)}
        assert client_context().verify_mode is ssl.CERT_REQUIRED and client_context().check_hostname
    finally:
        await sink.close()
        await modo.close()
        await axle.close()
