"""Authenticated control (issue 15, item 1) on the running daemon, real Mosquitto and real sockets: unsigned,
wrongly signed, unknown-key, stale, replayed and retained commands are all refused and alerted; a signed one
is applied and audited with the key's name, never the claimed source; the eventId memory survives a
restart (its file); admin writes need the token, reads stay open."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from controller.config import load_site
from controller.core.bus import Event
from controller.core.clock import RealClock
from controller.daemon import Daemon
from controller.ops import auth
from controller.ops.provider import ops_components
from controller.wiring import control
from controller.wiring import devices as pollers
from simulator.modbus_devices import ModbusSite
from tests.helpers import eventually, free_port
from tests.ops.clients import subscriber
from tests.ops.conftest import site_dict

ALICE = b"alice-operator-key-0123456789abcdef"
MALLORY = b"mallory-guess-key-0123456789abcdef"
TOKEN = "admin-token-0123456789abcdef"


def now_iso(offset_s: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()


def setpoint(event_id: str, kw: float = -50.0, **extra: Any) -> dict[str, Any]:
    return {"eventId": event_id, "type": "setpoint", "kw": kw, "duration_s": 600, "source": "root@cloud",
            "timestamp": now_iso(), **extra}


async def test_only_signed_fresh_first_time_commands_run(tmp_path: Path, mqtt_addr: tuple[str, int],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_COMMAND_AUTH", "required")
    monkeypatch.setenv("FLUX_OPERATOR_KEYS", f"alice:{base64.b64encode(ALICE).decode()}")
    monkeypatch.setenv("FLUX_ADMIN_TOKEN", TOKEN)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    mqtt_host, mqtt_port = mqtt_addr
    ports = {"bess": free_port(), "meter": free_port(), "admin": free_port()}
    prefix = f"auth{ports['admin']}"
    site = site_dict(bess_port=ports["bess"], meter_port=ports["meter"],
                     ops={"admin": {"enabled": True, "port": ports["admin"]}},
                     mqtt={"host": mqtt_host, "port": mqtt_port, "topic_prefix": prefix,
                           "client_id": f"flux-edge-{prefix}"},
                     buffer={"path": str(tmp_path / "state")})
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    daemon = Daemon(str(path), RealClock(), builders=[pollers, control, ops_components])
    base = f"{prefix}/testsite"
    events: list[Event] = []
    async with ModbusSite(load_site(path).config, RealClock()), \
            subscriber(mqtt_host, mqtt_port, f"{base}/#") as sub:
        task = asyncio.create_task(daemon.run())
        try:
            await eventually(lambda: daemon.runtime is not None, timeout=30)
            runtime = daemon.runtime
            assert runtime is not None
            runtime.bus.events.on(events.append)
            await eventually(lambda: runtime.services.mqtt is not None and runtime.services.mqtt.connected,
                             timeout=30)

            async def send(body: Any) -> dict[str, Any]:
                """The new acknowledgement for this eventId (a replay reuses one)."""
                def acks() -> list[Any]:
                    return [a for a in sub.on("/acks") if a["originatingEventId"] == body["eventId"]]
                seen = len(acks())
                await sub.client.publish(f"{base}/commands", json.dumps(body).encode(), qos=1)
                await eventually(lambda: len(acks()) > seen, timeout=15)
                return dict(acks()[-1])

            async def refused(body: Any, fragment: str) -> None:
                before = sum(1 for e in events if e.kind == "command_refused")
                ack = await send(body)
                assert ack["request"]["status"] == "rejected", ack
                assert fragment in ack["request"]["response"], ack
                await eventually(lambda: sum(1 for e in events if e.kind == "command_refused") > before)
                assert runtime.overrides.manual_setpoint_kw is None

            await refused(setpoint("unsigned"), "unsigned")
            await refused(auth.sign(setpoint("wrong"), "alice", MALLORY), "bad signature")
            await refused(auth.sign(setpoint("mallory"), "mallory", MALLORY), "unknown operator key")
            tampered = auth.sign(setpoint("tampered", kw=-10.0), "alice", ALICE)
            await refused({**tampered, "kw": -200.0}, "bad signature")
            await refused(auth.sign(setpoint("stale", timestamp=now_iso(-900)), "alice", ALICE), "stale")
            await refused(auth.sign(setpoint("future", timestamp=now_iso(900)), "alice", ALICE), "stale")
            await refused(auth.sign({k: v for k, v in setpoint("no-ts").items() if k != "timestamp"}, "alice", ALICE),
                          "timestamp")

            good = auth.sign(setpoint("good"), "alice", ALICE)
            ack = await send(good)
            assert ack["request"]["status"] == "accepted", ack
            assert runtime.overrides.manual_setpoint_kw == -50.0
            assert runtime.overrides.source == "key:alice"
            audit = next(e for e in events if e.kind == "manual_setpoint_set")
            assert audit.data["actor"] == "key:alice" and "root@cloud" not in audit.message

            runtime.overrides.clear_timed()
            await refused(good, "replayed")  # the very same signed message again

            # Retained, even when signed and fresh: refused (it would run again on every reconnect).
            retained = auth.sign(setpoint("retained"), "alice", ALICE)
            before = len(sub.on("/acks"))
            await sub.client.publish(f"{base}/commands", json.dumps(retained).encode(), qos=1, retain=True)
            await sub.wait_for("/acks", before + 1)
            await sub.client.publish(f"{base}/commands", b"", qos=1, retain=True)  # clear it
            ack = next(a for a in sub.on("/acks") if a["originatingEventId"] == "retained")
            assert ack["request"]["status"] == "rejected" and "retained" in ack["request"]["response"]
            assert runtime.overrides.manual_setpoint_kw is None

            # The eventId memory is a file: a restarted daemon refuses the replay too.
            seen = auth.SeenEvents(tmp_path / "state" / auth.SEEN_FILE)
            assert "good" in seen and "unsigned" not in seen

            async with httpx.AsyncClient() as client:
                url = f"http://127.0.0.1:{ports['admin']}"
                assert (await client.get(f"{url}/status", timeout=30)).status_code == 200  # reads stay open
                before = sum(1 for e in events if e.kind == "command_refused")
                no_token = await client.post(f"{url}/config/apply", content=b"site: {}",
                                             headers={"X-Flux-Actor": "root@cloud"}, timeout=30)
                assert no_token.status_code == 401
                wrong = await client.post(f"{url}/config/apply", content=b"site: {}",
                                          headers={"Authorization": "Bearer nope-nope-nope-nope"}, timeout=30)
                assert wrong.status_code == 401
                assert sum(1 for e in events if e.kind == "command_refused") >= before + 2
                with_token = await client.post(f"{url}/config/apply", content=b"site: [",
                                               headers={"Authorization": f"Bearer {TOKEN}",
                                                        "X-Flux-Actor": "root@cloud"}, timeout=60)
                assert with_token.status_code == 422 and with_token.json()["status"] != "unauthorized"
            refusals = sum(1 for e in events if e.kind == "command_refused")
            print(f"auth: {refusals} refusals alerted, signed command audited as key:alice")
        finally:
            daemon.request_stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 30)
