"""MQTT: telemetry and alerts out, operator commands in, one acknowledgement per command.

Topics under `<prefix>/<site>/`: `<device>/measurements`, `alerts`, `commands` (subscribed), `acks`,
`decision` (the newest decision with its one-line reason, at most one per `decision_interval_s`),
`forecast` (each forecast the daemon makes, its `flux-edge forecast --json` body plus the site; not
retained) and `status` (retained online/offline, offline as the will). Publishing goes through an in-memory
queue that only this component drains, so a broker outage never blocks polling or control. The
queue is bounded by the memory its messages take (`mqtt.queue_bytes`: payload, topic and the
per-message object overhead), not by their count, so a long outage costs a known amount of RSS
whatever the site's size; when it is full the oldest telemetry goes first (the outbox is the durable
path), while acknowledgements and alerts wait in a queue of their own. Reconnects back off exponentially.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import ssl
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller.core.bus import DecisionRecord
from controller.core.logs import get_logger, redact, redact_text
from controller.engine.explain import explain
from controller.ops import auth, flexmeter
from controller.ops.mqtt_commands import LONG_RUNNING, CommandHandler, Outcome, parse

if TYPE_CHECKING:
    from controller.core.bus import Event
    from controller.core.forecast import Forecast
    from controller.core.reading import Reading
    from controller.ops.config import MqttConfig
    from controller.runtime import Runtime

log = get_logger("ops.mqtt")

URGENT_QUEUE = 1000  # acks and alerts: few, and worth keeping longer than telemetry
# What one queued message costs beyond its payload and topic characters: the bytes object (33), the
# topic str (49), the tuple (56) and the deque slot (8), rounded up.
MESSAGE_OVERHEAD = 160
MAX_SEND_ATTEMPTS = 3  # a message the broker keeps refusing (e.g. too large) is dropped, not retried forever

RETAINED_REFUSED = ("retained commands are not executed: they would run again on every reconnect; "
                    "clear the retained message")

_jobs: set[asyncio.Task[None]] = set()  # long-running commands in flight (held so they are not collected)


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    if config.tls is None:
        return None
    ctx = ssl.create_default_context(cafile=config.tls.ca_file)
    if config.tls.cert_file:
        ctx.load_cert_chain(config.tls.cert_file, config.tls.key_file)
    if config.tls.insecure:
        ctx.check_hostname = False
    return ctx


class MqttBridge:
    """`runtime.services.mqtt` while it runs; `connected` feeds the metrics and `status`."""

    def __init__(self, runtime: Runtime, config: MqttConfig) -> None:
        self._runtime = runtime
        self._config = config
        self.site_id = runtime.config.site.id
        self.base = f"{config.topic_prefix.strip('/')}/{self.site_id}"
        self._bulk: deque[tuple[str, bytes]] = deque()
        self._bulk_bytes = 0  # what the messages in `_bulk` take, by `message_cost`
        self._urgent: deque[tuple[str, bytes]] = deque(maxlen=URGENT_QUEUE)
        self._wake = asyncio.Event()
        self._handler = CommandHandler(runtime)
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.connects = 0
        self.connect_failures = 0
        self._attempted: bytes | None = None  # the message last sent (identity), and how often in a row
        self._attempts = 0
        self.commands = 0
        self.decisions_published = 0
        self.forecasts_published = 0
        self.commands_failed = 0
        self.commands_refused = 0
        self._auth = auth.auth_required()
        self._keys = auth.operator_keys() if self._auth else {}
        self._seen = _seen_events(runtime)
        if self._auth and not self._keys:
            log.warning("mqtt_commands_locked", reason=f"no operator keys ({auth.KEYS_ENV}): every command is refused")

    @property
    def queued(self) -> int:
        return len(self._bulk) + len(self._urgent)

    @property
    def queued_bytes(self) -> int:
        return self._bulk_bytes

    @staticmethod
    def message_cost(topic: str, payload: bytes) -> int:
        return len(payload) + len(topic) + MESSAGE_OVERHEAD

    @property
    def commands_topic(self) -> str:
        return f"{self.base}/commands"

    @property
    def acks_topic(self) -> str:
        return f"{self.base}/acks"

    def _dropping(self, urgent: bool) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("mqtt_queue_full_dropping_oldest", dropped=self.dropped, urgent=urgent,
                        queued_bytes=self._bulk_bytes)

    def _enqueue(self, topic: str, body: dict[str, Any], *, urgent: bool = False) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        if urgent:
            if len(self._urgent) == self._urgent.maxlen:
                self._dropping(True)
            self._urgent.append((topic, payload))
        else:
            cost = self.message_cost(topic, payload)
            while self._bulk and (self._bulk_bytes + cost > self._config.queue_bytes
                                  or len(self._bulk) >= self._config.queue_size):
                self._pop_bulk()
                self._dropping(False)
            self._bulk.append((topic, payload))
            self._bulk_bytes += cost
        self._wake.set()

    def _pop_bulk(self) -> None:
        topic, payload = self._bulk.popleft()
        self._bulk_bytes -= self.message_cost(topic, payload)

    def _pop(self, queue: deque[tuple[str, bytes]]) -> None:
        if queue is self._bulk:
            self._pop_bulk()
        else:
            queue.popleft()

    def publish_reading(self, reading: Reading) -> None:
        self._enqueue(f"{self.base}/{reading.device}/measurements", flexmeter.measurements(reading))

    def publish_decision(self, record: DecisionRecord) -> None:
        body = record.body
        reason = body.get("explanation")
        if not isinstance(reason, str):
            reason = explain(body)
        self.decisions_published += 1
        self._enqueue(f"{self.base}/decision", {
            "site": self.site_id, "time": body.get("time"), "target_kw": body.get("target_kw"), "reason": reason,
            "effective_modes": body.get("effective_modes"), "constraints": body.get("constraints"),
            "dry_run": body.get("dry_run"), "override": body.get("override")})

    def publish_forecast(self, forecast: Forecast) -> None:
        self.forecasts_published += 1
        self._enqueue(f"{self.base}/forecast", {"site": self.site_id, **forecast.as_json()})

    async def _decisions(self, queue: asyncio.Queue[DecisionRecord]) -> None:
        """Rate-limited: the first decision at once, then at most one per interval, always the newest."""
        loop = asyncio.get_running_loop()
        interval = self._config.decision_interval_s
        last = -math.inf
        pending: DecisionRecord | None = None
        while True:
            wait = None if pending is None else max(0.0, last + interval - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    pending = await queue.get()
            if pending is not None and loop.time() - last >= interval:
                try:
                    self.publish_decision(pending)
                except Exception as exc:
                    log.error("mqtt_encode_failed", error=repr(exc))
                last, pending = loop.time(), None

    def publish_alert(self, event: Event) -> None:
        # Device events name the device (`device=`); the cloud registry knows it by its id.
        ids = {d.name: str(d.id) for d in self._runtime.config.devices}
        hardware_id = ids.get(str(event.data.get("device")), self.site_id)
        self._enqueue(f"{self.base}/alerts", redact(flexmeter.alert(event, hardware_id)), urgent=True)

    def _ack(self, event_id: str | None, outcome: Outcome) -> None:
        # An answer quotes errors (a DSN that cannot work, say): never a secret in it.
        body = flexmeter.acknowledgement(self.site_id, event_id, outcome.status, redact_text(outcome.response),
                                         self._runtime.clock.now(), **redact(outcome.data))
        self._enqueue(self.acks_topic, body, urgent=True)

    # --- the component ------------------------------------------------------------------------------

    async def run(self) -> None:
        readings = self._runtime.bus.readings.subscribe()
        events = self._runtime.bus.events.subscribe()
        decisions = self._runtime.bus.decisions.subscribe()
        forecasts = self._runtime.bus.forecasts.subscribe()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._decisions(decisions))
                tg.create_task(self._pump(readings, self.publish_reading))
                tg.create_task(self._pump(events, self.publish_alert))
                tg.create_task(self._pump(forecasts, self.publish_forecast))
                tg.create_task(self._connection_loop())
        finally:
            self._runtime.bus.readings.unsubscribe(readings)
            self._runtime.bus.events.unsubscribe(events)
            self._runtime.bus.decisions.unsubscribe(decisions)
            self._runtime.bus.forecasts.unsubscribe(forecasts)
            self.connected = False

    @staticmethod
    async def _pump(queue: asyncio.Queue[Any], publish: Any) -> None:
        while True:
            item = await queue.get()
            try:
                publish(item)
            except Exception as exc:  # one unencodable item must not stop telemetry
                log.error("mqtt_encode_failed", error=repr(exc))

    def _client(self) -> aiomqtt.Client:
        c = self._config
        will = aiomqtt.Will(f"{self.base}/status", b"offline", qos=1, retain=True)
        return aiomqtt.Client(
            c.host, c.port, username=c.username,
            password=c.password.get_secret_value() if c.password is not None else None,
            identifier=c.client_id or f"flux-edge-{self.site_id}", keepalive=c.keepalive_s,
            tls_context=tls_context(c), tls_insecure=True if c.tls is not None and c.tls.insecure else None,
            will=will, timeout=10.0,
            # MQTT 5, for the subscription's retain-as-published: with 3.1.1 a command published retained
            # while we are connected arrives with the retain flag cleared and would run.
            protocol=aiomqtt.ProtocolVersion.V5,
        )

    async def _connection_loop(self) -> None:
        failures = 0
        while True:
            delay = self._config.reconnect_initial_s
            try:
                async with self._client() as client:
                    self.connected = True
                    self.connects += 1
                    failures = 0
                    log.info("mqtt_connected", host=self._config.host, port=self._config.port)
                    await client.subscribe(self.commands_topic, options=SubscribeOptions(
                        qos=self._config.qos, retainAsPublished=True))
                    await client.publish(f"{self.base}/status", b"online", qos=1, retain=True)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._publisher(client))
                        tg.create_task(self._listener(client))
            except* aiomqtt.MqttError as group:
                failures += 1
                self.connect_failures += 1
                delay = min(self._config.reconnect_max_s,
                            self._config.reconnect_initial_s * 2 ** min(failures - 1, 20))
                delay *= random.uniform(0.8, 1.2)
                error = group.exceptions[0]
                log.warning("mqtt_disconnected", error=f"{type(error).__name__}: {error}", retry_in_s=round(delay, 2))
            finally:
                self.connected = False
            # Real seconds: reconnecting is about the network, not the simulated world.
            await asyncio.sleep(delay)

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            queue = self._urgent if self._urgent else self._bulk
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            topic, payload = queue[0]
            attempts = self._attempts + 1 if payload is self._attempted else 1
            self._attempted, self._attempts = payload, attempts
            if attempts > MAX_SEND_ATTEMPTS:
                self._pop(queue)
                self.dropped += 1
                log.error("mqtt_message_dropped", topic=topic, bytes=len(payload), attempts=attempts - 1)
                continue
            await client.publish(topic, payload, qos=self._config.qos)
            # Removed only once the broker has it: a message in flight when the link drops is resent.
            if queue and queue[0][0] is topic and queue[0][1] is payload:
                self._pop(queue)
            self.published += 1

    async def _listener(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if not message.topic.matches(self.commands_topic):
                continue
            try:
                await self._on_command(message)
            except Exception as exc:  # one bad message never stops the bridge listening
                self.commands_failed += 1
                log.error("mqtt_command_crashed", error=repr(exc)[:300])
                with contextlib.suppress(Exception):
                    self._ack(None, Outcome("rejected", f"command refused: {type(exc).__name__}"))

    async def _on_command(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self.commands += 1
        parsed = parse(payload)
        if message.retain:
            # A retained command would run again on every reconnect: refuse it, so it gets cleared.
            log.warning("mqtt_retained_command_refused", event_id=parsed.event_id)
            self._refused(parsed.event_id, RETAINED_REFUSED)
            return
        verified: str | None = None
        if self._auth:
            if parsed.raw is None:
                self._ack(parsed.event_id, Outcome("rejected", parsed.error or "bad command"))
                return
            verdict = auth.verify(parsed.raw, self._keys, self._runtime.clock.now(), self._seen)
            if verdict.key is None:
                self._refused(parsed.event_id, verdict.reason)
                return
            verified = verdict.key
        if parsed.command is None:
            log.warning("mqtt_command_rejected", event_id=parsed.event_id, reason=parsed.error)
            self._ack(parsed.event_id, Outcome("rejected", parsed.error or "bad command"))
            return
        log.info("mqtt_command", event_id=parsed.event_id, type=parsed.command.type, key=verified)
        if parsed.command.type in LONG_RUNNING:
            # A reload verifies for up to a minute: commands keep flowing meanwhile. The job outlives
            # this bridge (a reload may restart it) and answers through whichever bridge is current.
            job = asyncio.create_task(self._run(parsed.event_id, parsed.command, verified))
            _jobs.add(job)
            job.add_done_callback(_jobs.discard)
        else:
            await self._run(parsed.event_id, parsed.command, verified)

    def _refused(self, event_id: str | None, reason: str) -> None:
        """Refused for who sent it or how (unsigned, stale, replayed, retained): answered and alerted."""
        self.commands_refused += 1
        log.warning("mqtt_command_refused", event_id=event_id, reason=reason)
        self._runtime.alert("command_refused", "Warning", f"MQTT command refused: {reason}", event_id=event_id,
                            reason=reason)
        self._ack(event_id, Outcome("rejected", reason))

    async def _run(self, event_id: str | None, command: Any, verified: str | None = None) -> None:
        try:
            outcome = await self._handler.execute(command, verified)
        except Exception as exc:
            log.error("mqtt_command_failed", event_id=event_id, error=repr(exc), exc_info=exc)
            outcome = Outcome("failed", f"command failed: {exc}")
        current = self._runtime.services.mqtt
        (current if isinstance(current, MqttBridge) else self)._ack(event_id, outcome)


_seen_by_path: dict[str, auth.SeenEvents] = {}


def _seen_events(runtime: Runtime) -> auth.SeenEvents:
    """One eventId memory per state directory, kept across bridge restarts and (in its file) daemon restarts."""
    site = runtime.config
    path = Path(site.buffer.path.replace("{site}", site.site.id)) / auth.SEEN_FILE
    key = str(path.resolve())
    if key not in _seen_by_path:
        _seen_by_path[key] = auth.SeenEvents(path)
    return _seen_by_path[key]


async def run_bridge(runtime: Runtime, config: MqttConfig) -> None:
    bridge = MqttBridge(runtime, config)
    runtime.services.mqtt = bridge
    try:
        await bridge.run()
    finally:
        if runtime.services.mqtt is bridge:
            runtime.services.mqtt = None
