"""Metrics scraped over HTTP from a runtime populated with real health records, state and decisions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx

from controller.config import load_site
from controller.core.bus import DecisionRecord
from controller.core.clock import ManualClock
from controller.core.reading import Reading
from controller.daemon import Daemon
from controller.ops.metrics import MetricsServer
from controller.runtime import Runtime
from devices.base import DeviceHealth
from tests.helpers import eventually, free_port
from tests.ops.clients import samples
from tests.ops.conftest import BESS_ID, METER_ID, write_site

NOW = datetime(2026, 6, 3, 12, 0, 30, tzinfo=UTC)


async def scrape(port: int) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_cover_devices_control_reloads_and_mqtt(tmp_path: Path) -> None:
    port = free_port()
    site = write_site(tmp_path / "site.yaml", metrics={"enabled": True, "port": port},
                      mqtt={"host": "127.0.0.1", "port": free_port()})
    clock = ManualClock(NOW)
    runtime = Runtime(site=load_site(site), clock=clock)
    daemon = Daemon(str(site), clock)
    daemon.reloads_ok, daemon.reloads_failed = 3, 1
    runtime.daemon = daemon

    bess = DeviceHealth()
    for latency in (0.004, 0.02, 0.03, 0.7):
        bess.observe_latency(latency)
        bess.record_success(NOW)
    meter = DeviceHealth()
    meter.record_success(NOW)
    meter.record_failure("timeout")
    runtime.health.update({"bess": bess, "site-meter": meter})
    runtime.state.update(Reading(UUID(BESS_ID), "bess", "powerpack", NOW, {"soe_kwh": 640.0},
                                 NOW - timedelta(seconds=4)))
    runtime.state.update(Reading(UUID(METER_ID), "site-meter", "acuvim2", NOW, {"power_total_active": 37.5},
                                 NOW - timedelta(seconds=2)))

    tally = runtime.tally()
    tally_task = asyncio.create_task(tally.run(runtime.bus))
    server = MetricsServer(runtime, tally, "127.0.0.1", port)
    server_task = asyncio.create_task(server.run())
    await asyncio.sleep(0)
    for constraints in (["bess_power"], ["bess_power", "soe_min"], []):
        runtime.bus.decisions.publish(DecisionRecord(NOW, {
            "target_kw": -120.0, "active_modes": ["export_avoidance", "overnight"],
            "effective_modes": ["export_avoidance"], "constraints": constraints}))
    await eventually(lambda: tally.ticks == 3)
    try:
        await asyncio.wait_for(server.endpoint.listening.wait(), 10)
        got = samples(await scrape(port))
    finally:
        server_task.cancel()
        tally_task.cancel()
        await asyncio.gather(server_task, tally_task, return_exceptions=True)

    assert got[("flux_edge_device_polls_total", (("device", "bess"), ("kind", "powerpack"), ("result", "ok")))] == 4
    assert got[("flux_edge_device_polls_total", (("device", "site-meter"), ("kind", "acuvim2"),
                                                 ("result", "failed")))] == 1
    assert got[("flux_edge_device_health", (("device", "site-meter"), ("state", "degraded")))] == 1
    assert got[("flux_edge_device_health", (("device", "bess"), ("state", "ok")))] == 1
    assert got[("flux_edge_device_poll_latency_seconds_bucket", (("device", "bess"), ("le", "0.005")))] == 1
    assert got[("flux_edge_device_poll_latency_seconds_bucket", (("device", "bess"), ("le", "0.05")))] == 3
    assert got[("flux_edge_device_poll_latency_seconds_count", (("device", "bess"),))] == 4
    assert abs(got[("flux_edge_device_poll_latency_seconds_sum", (("device", "bess"),))] - 0.754) < 1e-9
    assert got[("flux_edge_device_reading_age_seconds", (("device", "bess"),))] == 4.0
    assert got[("flux_edge_device_reading_age_seconds", (("device", "site-meter"),))] == 2.0
    assert got[("flux_edge_battery_setpoint_kw", ())] == -120.0
    assert got[("flux_edge_battery_soe_kwh", ())] == 640.0
    assert got[("flux_edge_site_power_kw", ())] == 37.5
    assert got[("flux_edge_mode_active", (("mode", "overnight"),))] == 1
    assert got[("flux_edge_mode_effective", (("mode", "overnight"),))] == 0
    assert got[("flux_edge_mode_effective", (("mode", "export_avoidance"),))] == 1
    assert got[("flux_edge_constraint_hits_total", (("constraint", "bess_power"),))] == 2
    assert got[("flux_edge_constraint_hits_total", (("constraint", "soe_min"),))] == 1
    assert got[("flux_edge_config_reloads_total", (("result", "ok"),))] == 3
    assert got[("flux_edge_config_reloads_total", (("result", "failed"),))] == 1
    assert got[("flux_edge_mqtt_connected", ())] == 0  # configured, no bridge connected
    assert got[("flux_edge_dry_run", ())] == 0
    assert not any(name.startswith("flux_edge_outbox") for name, _ in got)  # no outbox here: nothing invented


async def test_metrics_endpoint_answers_only_metrics(tmp_path: Path) -> None:
    port = free_port()
    site = write_site(tmp_path / "site.yaml", metrics={"enabled": True, "port": port})
    runtime = Runtime(site=load_site(site), clock=ManualClock(NOW))
    server = MetricsServer(runtime, None, "127.0.0.1", port)
    task = asyncio.create_task(server.run())
    try:
        await asyncio.wait_for(server.endpoint.listening.wait(), 10)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/nothing")).status_code == 404
            assert (await client.post(f"http://127.0.0.1:{port}/metrics")).status_code == 405
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    got = samples(text)
    assert got[("flux_edge_device_health", (("device", "bess"), ("state", "pending")))] == 1
    assert ("flux_edge_battery_soe_kwh", ()) not in got
