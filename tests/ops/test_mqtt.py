"""MQTT against real Mosquitto: Flexmeter measurements and alerts out, commands in, one ack per command,
and a broker restart in the middle (our own mosquitto process on a free port)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from controller.config import load_site
from controller.core.bus import DecisionRecord, Event
from controller.core.clock import ManualClock
from controller.core.reading import Reading
from controller.ops.mqtt import MqttBridge, run_bridge
from controller.runtime import Runtime
from tests.helpers import eventually, free_port, wait_for_port
from tests.ops.clients import subscriber
from tests.ops.conftest import BESS_ID, METER_ID, write_site

NOW = datetime(2026, 6, 3, 12, 0, 0, tzinfo=UTC)
MOSQUITTO = "/usr/sbin/mosquitto"


def make_runtime(tmp_path: Path, host: str, port: int, **mqtt: Any) -> Runtime:
    prefix = f"t{uuid.uuid4().hex[:10]}"  # a topic tree of its own on the shared broker
    site = write_site(tmp_path / "site.yaml", mqtt={"host": host, "port": port, "topic_prefix": prefix,
                                                     "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, **mqtt})
    return Runtime(site=load_site(site), clock=ManualClock(NOW))


def meter_reading(power_kw: float, minute: int = 0) -> Reading:
    t = NOW + timedelta(minutes=minute)
    return Reading(UUID(METER_ID), "site-meter", "acuvim2", t,
                   {"power_total_active": power_kw, "energy_imported_active": 1234.5, "frequency": 50.01,
                    "voltage_line_average": float("nan")}, t)


async def start_bridge(runtime: Runtime) -> tuple[MqttBridge, asyncio.Task[None]]:
    assert runtime.config.mqtt is not None
    task = asyncio.create_task(run_bridge(runtime, runtime.config.mqtt))
    await eventually(lambda: runtime.services.mqtt is not None)
    bridge: MqttBridge = runtime.services.mqtt
    await eventually(lambda: bridge.connected, 15)
    return bridge, task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_measurements_alerts_commands_and_acks(tmp_path: Path, mqtt_addr: tuple[str, int]) -> None:
    host, port = mqtt_addr
    runtime = make_runtime(tmp_path, host, port)
    base = f"{runtime.config.mqtt.topic_prefix}/testsite"  # type: ignore[union-attr]
    async with subscriber(host, port, f"{base}/#") as sub:
        # Left retained on the broker before we connect: it would run again on every reconnect.
        sticky = {"eventId": "sticky", "type": "setpoint", "kw": 10, "duration_s": 60}
        await sub.client.publish(f"{base}/commands", json.dumps(sticky).encode(), qos=1, retain=True)
        bridge, task = await start_bridge(runtime)
        try:
            await sub.wait_for("/status")
            assert sub.on("/status")[-1] == "online"
            await eventually(lambda: any(a["originatingEventId"] == "sticky" for a in sub.on("/acks")))
            refused = next(a for a in sub.on("/acks") if a["originatingEventId"] == "sticky")
            assert refused["request"]["status"] == "rejected"
            assert refused["request"]["response"].startswith("retained commands are not executed")
            assert runtime.overrides.manual_setpoint_kw is None

            runtime.bus.readings.publish(meter_reading(37.5))
            runtime.bus.readings.publish(Reading(UUID(BESS_ID), "bess", "powerpack", NOW,
                                                 {"soe_kwh": 640.0, "command_source": "modbus"}, NOW))
            meter = (await sub.wait_for("/site-meter/measurements"))[0]
            assert meter["hardwareId"] == METER_ID
            assert meter["type"] == "DeviceMeasurements"
            assert meter["request"]["eventDate"] == "2026-06-03T12:00:00Z"
            assert meter["request"]["measurements"] == {
                "electricity.power.active.consumed.total": 37.5,
                "electricity.energy.active.consumed.total": 1234.5,
                "electricity.frequency": 50.01}  # NaN voltage left out, not sent as invalid JSON
            bess = (await sub.wait_for("/bess/measurements"))[0]
            assert bess["request"]["measurements"] == {"battery.energy.stored": 640.0}

            runtime.alert("poll_failed", "Warning", "site-meter did not answer", device="site-meter")
            # (the retained command above was alerted too: command_refused)
            await eventually(lambda: any(a["request"]["type"] == "poll_failed" for a in sub.on("/alerts")))
            alert = next(a for a in sub.on("/alerts") if a["request"]["type"] == "poll_failed")
            assert any(a["request"]["type"] == "command_refused" for a in sub.on("/alerts"))
            assert alert["type"] == "DeviceAlert"
            assert alert["hardwareId"] == METER_ID  # the device it is about
            assert alert["request"]["level"] == "Warning"
            assert alert["request"]["message"] == "site-meter did not answer"
            assert alert["request"]["type"] == "poll_failed"

            ack = await sub.command(base, {"eventId": "c1", "type": "setpoint", "kw": -150, "duration_s": 900,
                                           "source": "alice"})
            assert ack["type"] == "Acknowledgement"
            assert ack["request"]["status"] == "accepted", ack
            assert runtime.overrides.manual_setpoint_kw == -150
            assert runtime.overrides.until == NOW + timedelta(seconds=900)
            assert runtime.overrides.source == "mqtt:alice"

            ack = await sub.command(base, {"eventId": "c2", "type": "setpoint", "kw": 500, "duration_s": 60})
            assert ack["request"]["status"] == "rejected"
            assert "outside the battery limits [-200, 220]" in ack["request"]["response"]
            assert runtime.overrides.manual_setpoint_kw == -150  # unchanged

            ack = await sub.command(base, {"eventId": "c3", "type": "launch", "kw": 1})
            assert ack["request"]["status"] == "rejected"
            assert "unknown command type 'launch'" in ack["request"]["response"]

            ack = await sub.command(base, {"eventId": "c4", "type": "setpoint", "kw": "lots", "duration_s": 60})
            assert ack["request"]["status"] == "rejected"
            assert ack["request"]["response"].startswith("kw:")

            ack = await sub.command(base, b"{not json")
            assert ack["originatingEventId"] is None
            assert "not JSON" in ack["request"]["response"]

            ack = await sub.command(base, {"eventId": "c5", "type": "mode", "mode": "niv_chase", "duration_s": 60})
            assert ack["request"]["status"] == "rejected"
            assert "not configured" in ack["request"]["response"]
            ack = await sub.command(base, {"eventId": "c6", "type": "mode", "mode": "overnight", "duration_s": 60})
            assert ack["request"]["status"] == "accepted"
            # 12:00 is outside overnight's 01:00-04:00 (BST): the acknowledgement says it cannot act now.
            assert ack["request"]["response"].endswith(
                "; it cannot act now: outside its periods; its next period starts at 2026-06-04T00:00:00+00:00; "
                "the battery idles meanwhile"), ack
            assert (runtime.overrides.mode, runtime.overrides.manual_setpoint_kw) == ("overnight", None)

            ack = await sub.command(base, {"eventId": "c7", "type": "mode", "mode": "overnight",
                                           "duration_s": 10 * 24 * 3600})
            assert ack["request"]["status"] == "rejected"
            assert "duration_s must be at most" in ack["request"]["response"]

            ack = await sub.command(base, {"eventId": "c8", "type": "dry_run", "enabled": True})
            assert ack["request"]["status"] == "accepted"
            assert runtime.overrides.dry_run is True

            ack = await sub.command(base, {"eventId": "c9", "type": "clear_override"})
            assert ack["request"]["status"] == "accepted"
            assert runtime.overrides.mode is None and runtime.overrides.until is None

            ack = await sub.command(base, {"eventId": "c10", "type": "backfill"})
            assert ack["request"]["status"] == "failed"
            assert "unavailable" in ack["request"]["response"]

            assert bridge.commands == 12  # the retained one included
        finally:
            await stop(task)
            await sub.client.publish(f"{base}/commands", b"", qos=1, retain=True)  # clears the retained one
        assert runtime.services.mqtt is None


async def test_decision_topic_rate_limited_newest_first(tmp_path: Path, mqtt_addr: tuple[str, int]) -> None:
    host, port = mqtt_addr
    runtime = make_runtime(tmp_path, host, port, decision_interval_s=0.5)
    base = f"{runtime.config.mqtt.topic_prefix}/testsite"  # type: ignore[union-attr]
    async with subscriber(host, port, f"{base}/decision") as sub:
        bridge, task = await start_bridge(runtime)
        try:
            for i, kw in enumerate((250.0, 200.0, 150.0)):  # three at once: the first, then only the newest
                runtime.bus.decisions.publish(DecisionRecord(NOW, {
                    "time": NOW.isoformat(), "target_kw": kw, "constraints": [], "effective_modes": ["niv_chase"],
                    "explanation": f"discharging {kw:g} kW: NIV chase #{i}"}))
            first = (await sub.wait_for("/decision"))[0]
            assert (first["target_kw"], first["reason"]) == (250.0, "discharging 250 kW: NIV chase #0")
            await eventually(lambda: len(sub.on("/decision")) >= 2, 15)
            newest = sub.on("/decision")[1]
            assert (newest["target_kw"], newest["reason"]) == (150.0, "discharging 150 kW: NIV chase #2")
            assert bridge.decisions_published == 2
            # A record without an explanation (an older part) still gets a reason line.
            runtime.bus.decisions.publish(DecisionRecord(NOW, {"time": NOW.isoformat(), "target_kw": 0.0,
                                                               "constraints": ["stale_data"]}))
            await eventually(lambda: len(sub.on("/decision")) >= 3, 15)
            assert sub.on("/decision")[2]["reason"].startswith("idle at 0 kW: stale data")
        finally:
            await stop(task)


def mosquitto_conf(tmp_path: Path, port: int) -> Path:
    data = tmp_path / "mosquitto-data"
    data.mkdir(exist_ok=True)
    conf = tmp_path / "mosquitto.conf"
    # Persistence keeps the test subscriber's session across the restart, so what the bridge
    # flushes after reconnecting reaches it whichever of the two reconnects first.
    # As root, mosquitto would drop to its own user and then fail to save into the test's private tmp.
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {data}/\n{user}")
    return conf


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    conf = mosquitto_conf(tmp_path, port)
    state: dict[str, Any] = {"port": port}

    def start() -> None:
        state["proc"] = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", port, timeout=15)

    def kill() -> None:
        proc: subprocess.Popen[bytes] = state["proc"]
        proc.terminate()  # SIGTERM: mosquitto saves its persistence file on the way out
        proc.wait(timeout=15)

    state["start"], state["kill"] = start, kill
    start()
    try:
        yield state
    finally:
        if state["proc"].poll() is None:
            kill()


async def test_broker_restart_queues_bounded_and_resumes(tmp_path: Path, broker: dict[str, Any]) -> None:
    port = broker["port"]
    runtime = make_runtime(tmp_path, "127.0.0.1", port, queue_size=10)
    base = f"{runtime.config.mqtt.topic_prefix}/testsite"  # type: ignore[union-attr]
    identity = {"identifier": f"sub-{uuid.uuid4().hex[:8]}", "clean_session": False}
    bridge, task = await start_bridge(runtime)
    try:
        async with subscriber("127.0.0.1", port, f"{base}/#", **identity) as sub:
            runtime.bus.readings.publish(meter_reading(1.0, minute=0))
            await sub.wait_for("/measurements")
        broker["kill"]()
        await eventually(lambda: not bridge.connected, 15)

        # The outage: publishing stays instant, the queue stays bounded, oldest telemetry goes first.
        for minute in range(1, 26):
            runtime.bus.readings.publish(meter_reading(float(minute), minute=minute))
        runtime.alert("broker_test", "Info", "raised during the outage")
        await eventually(lambda: bridge.dropped == 15)

        broker["start"]()
        async with subscriber("127.0.0.1", port, f"{base}/#", **identity) as sub:
            await eventually(lambda: bridge.connected, 20)
            # QoS 1 is at-least-once: the broker may hand this persistent session the pre-outage reading
            # (power 1.0) again. What is checked is the outage: exactly the newest ten, oldest dropped.
            def outage_powers() -> list[float]:
                return sorted(p for m in sub.on("/measurements")
                              if (p := m["request"]["measurements"]["electricity.power.active.consumed.total"]) != 1.0)

            await eventually(lambda: len(outage_powers()) >= 10, 20)
            assert outage_powers() == [float(m) for m in range(16, 26)]
            outage_alert = (await sub.wait_for("/alerts"))[0]
            assert outage_alert["request"]["message"] == "raised during the outage"
            assert outage_alert["hardwareId"] == "testsite"  # a site-wide event
            # Commands are subscribed again after the reconnect.
            ack = await sub.command(base, {"eventId": "after-restart", "type": "dry_run", "enabled": False})
            assert ack["request"]["status"] == "accepted"
            assert runtime.overrides.dry_run is False
        assert bridge.connects >= 2
    finally:
        await stop(task)


def tls_material(tmp_path: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl command line."""
    d = tmp_path / "tls"
    d.mkdir()
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=flux-ca"],
        ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "san.ext"],
        ["mosquitto_passwd", "-b", "-c", "passwd", "flux", "right-password"],
    ):
        subprocess.run(cmd, cwd=d, check=True, capture_output=True, timeout=60)
    return {name: d / name for name in ("ca.crt", "server.crt", "server.key", "passwd")}


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[dict[str, Any]]:
    files = tls_material(tmp_path)
    port = free_port()
    user = "user root\n" if os.geteuid() == 0 else ""
    conf = tmp_path / "tls.conf"
    conf.write_text(f"listener {port} 127.0.0.1\ncafile {files['ca.crt']}\ncertfile {files['server.crt']}\n"
                    f"keyfile {files['server.key']}\nallow_anonymous false\npassword_file {files['passwd']}\n{user}")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, timeout=15)
        yield {"port": port, "ca": files["ca.crt"]}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_tls_with_username_and_password(tmp_path: Path, tls_broker: dict[str, Any]) -> None:
    import ssl

    port, ca = tls_broker["port"], str(tls_broker["ca"])
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = make_runtime(tmp_path / "good", "127.0.0.1", port, username="flux", password="right-password",
                        tls={"ca_file": ca})
    bad = make_runtime(tmp_path / "bad", "127.0.0.1", port, username="flux", password="wrong-password",
                       tls={"ca_file": ca})
    base = f"{good.config.mqtt.topic_prefix}/testsite"  # type: ignore[union-attr]
    context = ssl.create_default_context(cafile=ca)
    async with subscriber("127.0.0.1", port, f"{base}/#", username="flux", password="right-password",
                          tls_context=context) as sub:
        bridge, task = await start_bridge(good)
        assert bad.config.mqtt is not None
        bad_task = asyncio.create_task(run_bridge(bad, bad.config.mqtt))
        try:
            good.bus.readings.publish(meter_reading(12.5))
            got = await sub.wait_for("/measurements")
            assert got[0]["request"]["measurements"]["electricity.power.active.consumed.total"] == 12.5
            await eventually(lambda: bad.services.mqtt is not None and bad.services.mqtt.connect_failures >= 2, 20)
            assert bad.services.mqtt.connects == 0 and not bad.services.mqtt.connected
            bad.bus.readings.publish(meter_reading(1.0))  # refused by the broker: queued, never blocking
            await eventually(lambda: bad.services.mqtt.queued == 1)
        finally:
            await stop(task)
            await stop(bad_task)
    assert bridge.connects == 1


def test_the_telemetry_queue_is_bounded_by_bytes_not_messages(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, "127.0.0.1", 1, queue_bytes=16 * 1024, queue_size=100_000)
    assert runtime.config.mqtt is not None
    bridge = MqttBridge(runtime, runtime.config.mqtt)  # never connected: everything stays queued
    for minute in range(500):
        bridge.publish_reading(meter_reading(float(minute), minute=minute))
    assert 0 < bridge.queued_bytes <= 16 * 1024
    assert bridge.queued_bytes == sum(bridge.message_cost(t, p) for t, p in bridge._bulk)
    assert bridge.dropped == 500 - bridge.queued
    newest = json.loads(bridge._bulk[-1][1])
    assert newest["request"]["measurements"]["electricity.power.active.consumed.total"] == 499.0
    # Alerts and acknowledgements are kept apart and never pushed out by telemetry.
    bridge.publish_alert(Event(NOW, "queue_test", "Info", "kept", {}))
    assert len(bridge._urgent) == 1 and bridge.queued_bytes <= 16 * 1024


async def test_each_forecast_is_published_not_retained(tmp_path: Path, mqtt_addr: tuple[str, int]) -> None:
    from controller.core.forecast import NET_LOAD, PRICE, Band, Forecast, PeriodForecast

    host, port = mqtt_addr
    runtime = make_runtime(tmp_path, host, port)
    base = f"{runtime.config.mqtt.topic_prefix}/testsite"  # type: ignore[union-attr]
    forecasts = [Forecast(NOW + timedelta(minutes=30 * i), (PeriodForecast(NOW, {
        NET_LOAD: Band(40.0 + i, 30.0, 55.0), PRICE: Band(12.5, 9.0, 16.0)}),), {NET_LOAD: "profile"},
        ("price: 3 days of history",)) for i in range(2)]
    async with subscriber(host, port, f"{base}/forecast") as sub:
        bridge, task = await start_bridge(runtime)
        try:
            for f in forecasts:
                runtime.bus.forecasts.publish(f)
            got = await sub.wait_for("/forecast", 2)
            assert got == [{"site": "testsite", **f.as_json()} for f in forecasts]
            assert got[1]["periods"][0]["net_load_kw"] == {"value": 41.0, "lower": 30.0, "upper": 55.0}
            assert bridge.forecasts_published == 2
        finally:
            await stop(task)
    async with subscriber(host, port, f"{base}/forecast") as late:  # nothing retained for a late subscriber
        await asyncio.sleep(0.5)
        assert late.on("/forecast") == []
