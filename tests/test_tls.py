"""Every HTTPS client of the daemon verifies with the one process-wide TLS context (controller.core.tls)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import httpx

from controller.core.clock import ManualClock
from controller.core.tls import client_context
from controller.market.axle import AxleClient
from controller.market.config import AxleConfig, ModoConfig
from controller.market.modo import ModoClient
from uploader.config import PostgrestSinkConfig
from uploader.postgrest import PostgrestSink


def _context(client: httpx.AsyncClient) -> ssl.SSLContext:
    # httpx keeps the context on its connection pool (httpx 0.28, httpcore 1.0).
    context = client._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert isinstance(context, ssl.SSLContext)
    return context


async def test_the_sink_and_the_market_clients_share_one_verifying_context() -> None:
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    sink = PostgrestSink(PostgrestSinkConfig(type="postgrest", name="cloud", url="https://example.invalid",
                                             api_key="k"))
    modo = ModoClient(ModoConfig(base_url="https://example.invalid"), clock)
    axle = AxleClient(AxleConfig.model_validate(
        {"base_url": "https://example.invalid", "asset_id": "a", "username": "u", "password": "p"}), clock)
    try:
        contexts = {id(_context(c)) for c in (sink._client, modo._client(), axle._client())}
        assert contexts == {id(client_context())}
        assert client_context().verify_mode is ssl.CERT_REQUIRED and client_context().check_hostname
    finally:
        await sink.close()
        await modo.close()
        await axle.close()
