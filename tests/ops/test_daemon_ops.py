"""Field operations on the whole daemon: simulator -> pollers -> control loop -> outbox -> PostgreSQL, with
sd_notify, metrics, the admin endpoint and MQTT running. Sentinel secrets go through a full config load
and must not appear in any log line, metric, status answer, MQTT message or systemd state line."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import structlog
import yaml

from controller.cli import main as cli
from controller.config import load_site
from controller.core.clock import RealClock
from controller.core.logs import configure_logging
from controller.daemon import Daemon
from controller.ops.provider import ops_components
from controller.wiring import control
from controller.wiring import devices as pollers
from controller.wiring import uploader as outbox
from simulator.modbus_devices import ModbusSite
from tests.helpers import eventually, free_port
from tests.ops.clients import samples, subscriber
from tests.ops.conftest import NotifySocket, site_dict
from uploader.migrate import migrate

MQTT_SECRET = "S3NTINEL-mqtt-a41c9e"
DSN_SECRET = "S3NTINEL-dsn-77d02b"
SENTINELS = (MQTT_SECRET, DSN_SECRET)


@pytest.fixture
def captured_logs() -> Any:
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()


async def test_ops_on_the_full_daemon_without_leaking_secrets(
        tmp_path: Path, pg_dsn: str, mqtt_addr: tuple[str, int], notify_socket: NotifySocket,
        captured_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate(pg_dsn)
    mqtt_host, mqtt_port = mqtt_addr
    ports = {"bess": free_port(), "meter": free_port(), "metrics": free_port(), "admin": free_port()}
    prefix = f"ops{ports['admin']}"
    site = site_dict(
        bess_port=ports["bess"], meter_port=ports["meter"],
        metrics={"enabled": True, "port": ports["metrics"]},
        ops={"admin": {"enabled": True, "port": ports["admin"]},
             "watchdog": {"ping_interval_s": 0.2, "ready_timeout_s": 30}},
        mqtt={"host": mqtt_host, "port": mqtt_port, "username": "flux", "password": "${FLUX_MQTT_PASSWORD}",
              "topic_prefix": prefix},
        buffer={"path": str(tmp_path / "outbox")},
        uploader={"sinks": [
            {"type": "postgres", "name": "cloud", "dsn": "${FLUX_CLOUD_DSN}", "interval_s": 1},
            # A sink that cannot connect, its DSN carrying the same secret: errors must not echo it.
            {"type": "postgres", "name": "backup", "dsn": "${FLUX_BACKUP_DSN}", "interval_s": 1,
             "timeout_s": 2, "backoff_max_s": 2}]},
        simulator={"seed": 5, "site_model": {"initial_soe_kwh": 450}})
    site["devices"][1].update({"ct1": 800, "ct2": 5})
    # The battery starts above the SoE ceiling: the envelope must refuse any charge, manual or not.
    site["controller"]["soe_max_kwh"] = 400
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    env = {"FLUX_MQTT_PASSWORD": MQTT_SECRET, "FLUX_CLOUD_DSN": f"{pg_dsn} password={DSN_SECRET}",
           "FLUX_BACKUP_DSN": f"postgresql://flux:{DSN_SECRET}@127.0.0.1:{free_port()}/nowhere"}

    clock = RealClock()
    # As under systemd: the secrets are in the process environment (EnvironmentFile=), for the first load,
    # for reloads and for validating a pushed config alike.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    daemon = Daemon(str(path), clock, builders=[pollers, control, outbox, ops_components])
    base = f"{prefix}/testsite"
    async with ModbusSite(load_site(path, env).config, clock), \
            subscriber(mqtt_host, mqtt_port, f"{base}/#") as sub:
        task = asyncio.create_task(daemon.run())
        try:
            await eventually(lambda: daemon.runtime is not None)
            runtime = daemon.runtime
            assert runtime is not None
            await eventually(lambda: notify_socket.count("READY=1") == 1, timeout=40)
            await eventually(lambda: notify_socket.count("WATCHDOG=1") >= 3, timeout=40)
            await eventually(lambda: getattr(runtime.services.sinks.get("cloud"), "successes", 0) > 0,
                             timeout=60)
            await eventually(lambda: runtime.services.mqtt is not None and runtime.services.mqtt.connected, timeout=30)
            await sub.wait_for("/bess/measurements", timeout=30)
            await sub.wait_for("/site-meter/measurements", timeout=30)

            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=30)).text
                status_json = (await client.get(f"http://127.0.0.1:{ports['admin']}/status", timeout=30)).text
            decisions: list[dict[str, Any]] = []
            runtime.bus.decisions.on(lambda record: decisions.append(dict(record.body)))
            ack = await sub.command(base, {"eventId": "manual", "type": "setpoint", "kw": -150, "duration_s": 600,
                                           "source": "ops"})
            assert ack["request"]["status"] == "accepted"
            await eventually(lambda: any((d.get("override") or {}).get("manual_setpoint_kw") == -150
                                         for d in decisions), timeout=30)
            manual = next(d for d in decisions if (d.get("override") or {}).get("manual_setpoint_kw") == -150)
            assert manual["requested_kw"] == -150
            assert manual["target_kw"] >= 0 and "soe_max" in manual["constraints"]  # clamped by the envelope

            ack = await sub.command(base, {"eventId": "e2e", "type": "dry_run", "enabled": True, "source": "ops"})
            assert ack["request"]["status"] == "accepted"
            assert runtime.overrides.dry_run is True
            since = (clock.now() - timedelta(minutes=10)).isoformat()
            ack = await sub.command(base, {"eventId": "gap", "type": "backfill", "since": since}, timeout=60)
            assert ack["request"]["status"] == "accepted", ack
            assert ack["request"]["response"].startswith("backfill done:")
            assert "backup" in ack["request"]["response"]  # the unreachable sink is reported, not hidden
            code = await asyncio.to_thread(cli, ["status", "--site", str(path)])
            assert code == 0

            # A config push: applied, verified, and its record reaches the cloud through the outbox.
            site["devices"][0]["timeout_s"] = 0.9
            new = yaml.safe_dump(site, sort_keys=False).encode()
            async with httpx.AsyncClient() as client:
                response = await client.post(f"http://127.0.0.1:{ports['admin']}/config/apply", content=new,
                                             headers={"X-Flux-Actor": "ssh:dave@10.8.0.9"}, timeout=90)
            assert response.json()["status"] == "applied", response.text

            def cloud_has_the_apply() -> bool:
                with psycopg.connect(pg_dsn) as conn:
                    row = conn.execute("SELECT data->>'actor', data->>'sha256' FROM flux.mg_controller_events "
                                       "WHERE kind = 'config_applied'").fetchone()
                return row == ("ssh:dave@10.8.0.9", hashlib.sha256(new).hexdigest())

            await eventually(cloud_has_the_apply, timeout=60)
        finally:
            daemon.request_stop()
            assert await asyncio.wait_for(task, timeout=60) == 0

    got = samples(metrics)
    assert got[("flux_edge_device_polls_total", (("device", "bess"), ("kind", "powerpack"), ("result", "ok")))] > 0
    assert got[("flux_edge_battery_soe_kwh", ())] > 0
    assert ("flux_edge_site_power_kw", ()) in got
    assert ("flux_edge_battery_setpoint_kw", ()) in got
    assert got[("flux_edge_uploads_total", (("result", "ok"), ("sink", "cloud")))] > 0
    assert ("flux_edge_outbox_pending_rows", (("sink", "cloud"),)) in got
    assert ("flux_edge_outbox_pending_rows", (("sink", "backup"),)) in got
    assert got[("flux_edge_outbox_bytes", ())] > 0
    assert ("flux_edge_upload_latency_seconds_count", (("sink", "cloud"),)) in got
    assert got[("flux_edge_mqtt_connected", ())] == 1
    assert got[("flux_edge_mqtt_dropped_messages_total", ())] == 0
    assert {labels for name, labels in got if name == "flux_edge_heartbeat_age_seconds"} == {
        (("component", "control"),), (("component", "outbox"),)}
    assert got[("flux_edge_outbox_dropped_rows_total", ())] == 0
    assert any(name == "flux_edge_mode_active" for name, _ in got)

    status = json.loads(status_json)
    assert {d["name"]: d["state"] for d in status["devices"]} == {"bess": "ok", "site-meter": "ok"}
    assert {s["name"] for s in status["sinks"]} == {"cloud", "backup"}
    assert next(s for s in status["sinks"] if s["name"] == "cloud")["last_upload"] is not None

    assert notify_socket.count("STOPPING=1") == 1
    logs = captured_logs.getvalue()
    assert '"event": "mqtt_connected"' in logs and '"event": "config_applied"' in logs
    assert "backup" in logs  # the failing sink was logged ...
    mqtt_text = json.dumps(sub.received)
    for secret in SENTINELS:  # ... and nothing anywhere carries a secret
        assert secret not in logs
        assert secret not in metrics
        assert secret not in status_json
        assert secret not in mqtt_text
        assert all(secret not in m for m in notify_socket.messages)
