"""One consistent picture of the running daemon for operators: metrics, `status`, sd_notify STATUS=.

Built on the event loop from the runtime's shared objects. Every part is optional: a daemon without
a control loop, an outbox or MQTT still gets a view of what it has. Other subsystems' objects are
read defensively (attribute names are the agreed seams; a missing one leaves its part empty).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from controller.core.forecast import NET_LOAD, PRICE, Forecast
from controller.core.logs import get_logger
from controller.engine.explain import explain
from controller.engine.schedule import zone
from controller.engine.site_state import AxleStep, MarketValue
from controller.engine.upcoming import next_mode_change
from controller.ops.value import value_today

if TYPE_CHECKING:
    from controller.runtime import Runtime

log = get_logger("ops.status")


@dataclass
class DeviceView:
    name: str
    kind: str
    device_id: str
    state: str  # ok, degraded, down, or pending (never polled yet)
    polls_ok: int = 0
    polls_failed: int = 0
    consecutive_failures: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    reading_age_s: float | None = None
    max_age_s: float | None = None  # older than this is stale: two poll intervals plus the request timeout
    stale: bool = False
    latency_buckets: tuple[float, ...] = ()
    latency_counts: list[int] = field(default_factory=list)
    latency_sum_s: float = 0.0


@dataclass
class SinkView:
    name: str
    pending: int | None = None
    uploaded: int | None = None
    bytes: int | None = None
    oldest_pending: datetime | None = None
    uploads_ok: int | None = None
    uploads_failed: int | None = None
    rows_recovered: int | None = None
    last_upload: datetime | None = None
    latency_count: int | None = None  # upload requests timed
    latency_sum_s: float = 0.0
    child_drains: int | None = None  # large backlogs uploaded by a child process (uploader/drain.py)
    child_failures: int | None = None  # such children that died without an answer
    child_pid: int | None = None  # the child uploading now


@dataclass
class OpsView:
    site_id: str
    config_sha256: str
    time: datetime
    devices: list[DeviceView]
    sinks: list[SinkView]
    target_kw: float | None = None
    soe_kwh: float | None = None
    soe_capacity_kwh: float | None = None  # the battery's nameplate energy
    site_power_kw: float | None = None
    active_modes: list[str] = field(default_factory=list)
    effective_modes: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    configured_modes: list[str] = field(default_factory=list)
    dry_run: bool | None = None
    override: dict[str, Any] | None = None
    outbox_bytes: int | None = None
    outbox_dropped: int | None = None  # undelivered rows dropped at the size bound (alerted)
    reloads_ok: int = 0
    reloads_failed: int = 0
    mqtt_connected: bool | None = None  # None: MQTT not configured
    mqtt_dropped: int | None = None  # messages dropped from the in-memory queue while the broker was away
    heartbeat_age_s: dict[str, float] = field(default_factory=dict)  # real seconds since each liveness mark
    plan: dict[str, Any] | None = None  # the planner's current plan and its next hours (None: no planner)
    # The latest forecast: {made_at, forecasters, notes, next: [{start, net_load_kw, price_p_per_kwh}]}, each
    # quantity {value, lower, upper} or None (None: no forecast service, or no forecast yet).
    forecast: dict[str, Any] | None = None
    # Why: the one-line reason of the newest decision (controller.engine.explain) and when it was taken.
    reason: str | None = None
    decided_at: datetime | None = None
    # The market data in use: {"imbalance_price"|"imbalance_volume": {value, settlement_period}}.
    market: dict[str, Any] = field(default_factory=dict)
    axle_step: dict[str, Any] | None = None  # the Axle step covering now
    axle_next: dict[str, Any] | None = None  # the next Axle step after now
    next_mode_change: dict[str, Any] | None = None  # {time, mode, change: starts|ends}
    # Battery power: what the control loop commanded and what the battery meter measured (+ discharge).
    battery_commanded_kw: float | None = None
    battery_measured_kw: float | None = None
    today: dict[str, Any] | None = None  # controller.ops.today.Totals.to_json()
    # The value expected today: earned in the local day's ended periods + the plan's for the rest
    # (controller.planner.day_value.DayValue.as_json(); None without a controller block).
    value_today: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)  # the last few, oldest first
    # Every top number's age against its allowed age: {name: {age_s, max_age_s, stale}}.
    freshness: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def backlog(self) -> int | None:
        counts = [s.pending for s in self.sinks if s.pending is not None]
        return max(counts) if counts else None

    def stale(self, name: str) -> bool:
        return bool(self.freshness.get(name, {}).get("stale"))

    def status_line(self) -> str:
        """One line for systemd's STATUS=: mode, setpoint, SoE, backlog."""
        mode = ",".join(self.effective_modes) or "idle"
        return (f"mode={mode} setpoint={_fmt(self.target_kw, 'kW')} soe={_fmt(self.soe_kwh, 'kWh')} "
                f"backlog={'-' if self.backlog is None else self.backlog}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(self)
        out["backlog"] = self.backlog
        return out


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def _jsonable(value: Any) -> Any:
    # One walk, no dataclasses.asdict: its deep copy of every value first doubled what each /status call
    # allocates, and the web page asks every few seconds.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --- reading other subsystems' objects ------------------------------------------------------------


def as_mapping(obj: Any) -> dict[str, Any]:
    """A stats object as a dict, whether it is a mapping, a dataclass or a plain object."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {}


async def call_maybe_async(fn: Any, *args: Any, **kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def read_stats(obj: Any) -> dict[str, Any]:
    """`obj.stats` (attribute, method or coroutine) or the object's own attributes, as a dict."""
    stats = getattr(obj, "stats", None)
    if stats is None:
        return as_mapping(obj)
    if callable(stats):
        stats = await call_maybe_async(stats)
    return as_mapping(stats)


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _time(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            return None
    return None


def _sink_view(name: str, outbox: Mapping[str, Any], uploader: Mapping[str, Any]) -> SinkView:
    """`outbox`: the outbox's stats for this sink (`flux-edge outbox stats` names); `uploader`: the sink's
    counters (`runtime.services.sinks[name]`)."""
    return SinkView(
        name=name,
        pending=_int(outbox.get("pending")),
        uploaded=_int(outbox.get("uploaded")),
        bytes=_int(outbox.get("bytes")),
        oldest_pending=_time(outbox.get("oldest_pending")),
        uploads_ok=_int(uploader.get("successes")),
        uploads_failed=_int(uploader.get("failures")),
        rows_recovered=_int(uploader.get("rows_recovered")),
        last_upload=_time(uploader.get("last_success")),
        latency_count=_int(uploader.get("latency_count")),
        latency_sum_s=float(uploader.get("latency_sum_s") or 0.0),
        child_drains=_int(uploader.get("child_drains")),
        child_failures=_int(uploader.get("child_failures")),
        child_pid=_int(uploader.get("drain_pid")),
    )


async def _sinks(runtime: Runtime) -> tuple[list[SinkView], dict[str, Any]]:
    outbox_stats: dict[str, Any] = {}
    # The outbox service holds its SQLite store as `.outbox` once the writer has opened it; the store's
    # stats() queries the file, so it runs off the loop.
    store = getattr(runtime.services.outbox, "outbox", None)
    stats = getattr(store, "stats", None)
    if callable(stats):
        try:
            outbox_stats = as_mapping(await asyncio.to_thread(stats))
        except Exception as exc:  # the file may be being replaced; the endpoint answers without it
            log.warning("outbox_stats_failed", error=repr(exc))
    per_sink: dict[str, dict[str, Any]] = {}
    raw_sinks = outbox_stats.get("sinks")
    if isinstance(raw_sinks, Mapping):
        per_sink = {str(k): as_mapping(v) for k, v in raw_sinks.items()}
    uploaders: dict[str, dict[str, Any]] = {}
    for name, sink in runtime.services.sinks.items():
            try:
                uploaders[str(name)] = await read_stats(sink)
            except Exception as exc:
                log.warning("sink_stats_failed", sink=str(name), error=repr(exc))
    names = [s.name for s in runtime.config.uploader.sinks]
    names += [n for n in [*per_sink, *uploaders] if n not in names]
    views: list[SinkView] = []
    for name in names:
        # A single-sink outbox may report one flat set of counts.
        ob = per_sink.get(name, outbox_stats if not per_sink and len(names) == 1 else {})
        views.append(_sink_view(name, ob, uploaders.get(name, {})))
    if not names and outbox_stats and not per_sink:
        views.append(_sink_view("outbox", outbox_stats, {}))
    return views, outbox_stats


def _devices(runtime: Runtime, now: datetime) -> list[DeviceView]:
    newest: dict[UUID, datetime] = {}
    for (device_id, _), sample in runtime.state.snapshot().items():
        if device_id not in newest or sample.time > newest[device_id]:
            newest[device_id] = sample.time
    out: list[DeviceView] = []
    for d in runtime.config.devices:
        h = runtime.health.get(d.name)
        seen = newest.get(d.id)
        age = max(0.0, (now - seen).total_seconds()) if seen is not None else None
        max_age = 2 * float(getattr(d, "poll_interval_s", 60.0)) + float(getattr(d, "timeout_s", 0.0))
        stale = age is not None and age > max_age
        if h is None:
            out.append(DeviceView(d.name, d.type, str(d.id), "pending", reading_age_s=age, max_age_s=max_age,
                                  stale=stale))
            continue
        state = str(getattr(getattr(h, "state", "unknown"), "value", getattr(h, "state", "unknown")))
        if state == "ok" and int(getattr(h, "polls_ok", 0)) == 0 and int(getattr(h, "polls_failed", 0)) == 0:
            state = "pending"  # never polled yet: not known to be ok
        out.append(DeviceView(
            name=d.name, kind=d.type, device_id=str(d.id), state=state,
            polls_ok=int(getattr(h, "polls_ok", 0)), polls_failed=int(getattr(h, "polls_failed", 0)),
            consecutive_failures=int(getattr(h, "consecutive_failures", 0)),
            last_success=getattr(h, "last_success", None), last_error=getattr(h, "last_error", None),
            reading_age_s=age, max_age_s=max_age, stale=stale,
            latency_buckets=tuple(getattr(h, "latency_buckets", ())),
            latency_counts=list(getattr(h, "latency_counts", [])),
            latency_sum_s=float(getattr(h, "latency_sum_s", 0.0)),
        ))
    return out


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


MARKET_MAX_AGE_S = 3600.0  # a settlement period's figure is known at its end: two periods old is stale


def _fresh(view: OpsView, name: str, at: datetime | None, now: datetime, max_age_s: float) -> None:
    age = None if at is None else max(0.0, (now - at).total_seconds())
    view.freshness[name] = {"age_s": age, "max_age_s": max_age_s, "stale": age is None or age > max_age_s}


def _explain(view: OpsView, decision: Mapping[str, Any], timezone: str) -> None:
    reason = decision.get("explanation")
    if not isinstance(reason, str):
        try:  # a record from before explanations, or from a part that does not add one
            reason = explain(decision, zone(timezone))
        except Exception as exc:
            log.warning("explain_failed", error=repr(exc))
            reason = decision.get("reason") if isinstance(decision.get("reason"), str) else None
    view.reason = reason
    view.decided_at = _time(decision.get("time"))


def _step_json(step: Any) -> dict[str, Any]:
    return {"action": step.action, "start": step.start.isoformat(), "end": step.end.isoformat()}


def _market_view(view: OpsView, runtime: Runtime, now: datetime) -> None:
    modo = runtime.services.modo
    for name in ("imbalance_price", "imbalance_volume"):
        value = getattr(modo, name.removeprefix("imbalance_"), None) if modo is not None else None
        if isinstance(value, MarketValue):
            view.market[name] = {"value": value.value, "settlement_period": value.settlement_period.isoformat()}
            _fresh(view, name, value.settlement_period, now, MARKET_MAX_AGE_S)
        elif modo is not None:
            _fresh(view, name, None, now, MARKET_MAX_AGE_S)
    axle = runtime.services.axle
    steps = [s for s in (getattr(axle, "schedule", ()) if axle is not None else ()) if isinstance(s, AxleStep)]
    current = next((s for s in steps if s.covers(now)), None)
    upcoming = sorted((s for s in steps if s.start > now), key=lambda s: s.start)
    view.axle_step = _step_json(current) if current is not None else None
    view.axle_next = _step_json(upcoming[0]) if upcoming else None


FORECAST_PERIODS = 6  # periods of the forecast `status` shows, from the one covering now


def _forecast_view(forecast: Forecast, now: datetime) -> dict[str, Any]:
    periods = list(forecast.periods)
    # From the period covering now (the last one starting at or before it), or the first if all are ahead.
    first = max((i for i, p in enumerate(periods) if p.start <= now), default=0)
    upcoming = []
    for p in periods[first:first + FORECAST_PERIODS]:
        net, price = p.get(NET_LOAD), p.get(PRICE)
        upcoming.append({"start": p.start.isoformat(), NET_LOAD: None if net is None else net.as_json(),
                         PRICE: None if price is None else price.as_json()})
    return {"made_at": forecast.made_at.isoformat(), "forecasters": dict(forecast.forecasters),
            "notes": list(forecast.notes), "next": upcoming}


async def take_view(runtime: Runtime, last_decision: Mapping[str, Any] | None = None) -> OpsView:
    """The current picture. `last_decision` is the newest decision seen on the bus, if the caller keeps one."""
    config = runtime.config
    now = runtime.clock.now()
    sinks, outbox = await _sinks(runtime)
    view = OpsView(site_id=config.site.id, config_sha256=runtime.site.sha256, time=now,
                   devices=_devices(runtime, now), sinks=sinks, outbox_bytes=_int(outbox.get("bytes")),
                   outbox_dropped=_int(outbox.get("dropped_pending")))
    control = runtime.services.control
    decision = last_decision
    if decision is None and control is not None:
        decision = control.last_decision
    if decision is None and runtime.services.tally is not None:
        decision = runtime.services.tally.last
    if isinstance(decision, Mapping):
        view.target_kw = _number(decision.get("target_kw"))
        view.active_modes = _names(decision.get("active_modes"))
        view.effective_modes = _names(decision.get("effective_modes"))
        view.constraints = _names(decision.get("constraints"))
        _explain(view, decision, config.site.timezone)
    ctl = config.controller
    if ctl is not None:
        view.configured_modes = [m.name or m.type for m in ctl.modes]
        view.dry_run = ctl.dry_run if runtime.overrides.dry_run is None else runtime.overrides.dry_run
        soe = runtime.state.get(config.device(ctl.battery).id, "soe_kwh")
        site = runtime.state.get(config.device(ctl.site_meter).id, "power_total_active")
        view.soe_kwh = soe.value if soe is not None else None
        view.soe_capacity_kwh = _number(getattr(config.device(ctl.battery), "nameplate_energy_kwh", None))
        view.site_power_kw = site.value if site is not None else None
        max_age = ctl.max_reading_age_s
        _fresh(view, "soe_kwh", soe.time if soe is not None else None, now, max_age)
        _fresh(view, "site_power_kw", site.time if site is not None else None, now, max_age)
        if ctl.battery_meter is not None:
            measured = runtime.state.get(config.device(ctl.battery_meter).id, "power_total_active")
            view.battery_measured_kw = measured.value if measured is not None else None
            _fresh(view, "battery_measured_kw", measured.time if measured is not None else None, now, max_age)
        control = runtime.services.control
        if control is not None:
            view.battery_commanded_kw = _number(getattr(control, "commanded_kw", None))
        if view.decided_at is not None:
            # A decision is due every period and at each site reading: three periods without one is stale.
            _fresh(view, "target_kw", view.decided_at, now, max(3 * ctl.period_s, max_age))
        try:
            change = next_mode_change([(m.name or m.type, m.periods) for m in ctl.modes if m.type != "axle"], now)
        except Exception as exc:  # a schedule corner case must not take the status page down
            log.warning("next_mode_change_failed", error=repr(exc))
            change = None
        if change is not None:
            view.next_mode_change = {"time": change.time.isoformat(), "mode": change.mode, "change": change.change}
    _market_view(view, runtime, now)
    today = runtime.services.today
    if today is not None:
        view.today = today.snapshot()
        view.alerts = today.last_alerts()
    ov = runtime.overrides
    if (ov.manual_setpoint_kw is not None or ov.mode is not None) and ov.active(now):
        view.override = {"setpoint_kw": ov.manual_setpoint_kw, "mode": ov.mode,
                         "until": ov.until, "source": ov.source}
    # Heartbeats are real time.monotonic() marks (runtime.beat), whatever clock the daemon runs on.
    real_now = time.monotonic()
    view.heartbeat_age_s = {name: max(0.0, real_now - t) for name, t in sorted(runtime.heartbeats.items())}
    daemon = runtime.daemon
    view.reloads_ok = daemon.reloads_ok if daemon is not None else 0
    view.reloads_failed = daemon.reloads_failed if daemon is not None else 0
    if runtime.services.planner is not None:
        view.plan = runtime.services.planner.summary(now)
    try:
        view.value_today = await value_today(runtime, now)
    except Exception as exc:  # a corner case of the day's sums must not take the status page down
        log.warning("value_today_failed", error=repr(exc))
    latest = runtime.services.forecast.latest if runtime.services.forecast is not None else None
    if latest is not None:
        view.forecast = _forecast_view(latest, now)
    if config.mqtt is not None:
        mqtt = runtime.services.mqtt
        view.mqtt_connected = mqtt is not None and mqtt.connected
        view.mqtt_dropped = mqtt.dropped if mqtt is not None else 0
    return view
