"""Operator commands (from MQTT): parse strictly, check against the site's limits, act, and say what happened.

Every command gets exactly one answer: (status, response text). A malformed payload, an unknown type
or an out-of-range value is rejected with the reason; an accepted manual setpoint or mode is still
subject to the control loop's safety envelope, it only replaces what the modes propose.

The payload is checked field by field from a table (`_FIELDS`), by hand rather than with pydantic: the
daemon does not import pydantic at all, for its memory (about 13 MiB).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from controller.config.views import uploader_site
from controller.core import bounded
from controller.core.logs import get_logger
from controller.engine.schedule import window_at
from controller.engine.upcoming import next_mode_change
from uploader.coverage import check_now

if TYPE_CHECKING:
    from controller.runtime import Runtime

log = get_logger("ops.mqtt_commands")


@dataclass(frozen=True, kw_only=True)
class _Command:
    type: ClassVar[str]
    event_id: str
    source: str | None = None  # who sent it, for the records


@dataclass(frozen=True, kw_only=True)
class DryRun(_Command):
    type: ClassVar[str] = "dry_run"
    enabled: bool | None  # true: never write the battery; false: write; null: as the site file says


@dataclass(frozen=True, kw_only=True)
class ManualSetpoint(_Command):
    type: ClassVar[str] = "setpoint"
    kw: float  # + discharge, - charge; still clamped by the safety envelope
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class ModeOverride(_Command):
    type: ClassVar[str] = "mode"
    mode: str  # a configured mode's name or type
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class ClearOverride(_Command):
    type: ClassVar[str] = "clear_override"


@dataclass(frozen=True, kw_only=True)
class Reload(_Command):
    type: ClassVar[str] = "reload"
    config: str | None = None  # a new site file; absent: re-read the file on disk


@dataclass(frozen=True, kw_only=True)
class Backfill(_Command):
    type: ClassVar[str] = "backfill"
    since: datetime | None = None
    until: datetime | None = None


Command: TypeAlias = DryRun | ManualSetpoint | ModeOverride | ClearOverride | Reload | Backfill


class _Invalid(Exception):
    """A field's value refused; the message says what the field takes."""


_Check: TypeAlias = Callable[[object], object]


def _text(min_len: int, max_len: int) -> _Check:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise _Invalid("Input should be a valid string")
        if len(value) < min_len:
            raise _Invalid(f"String should have at least {min_len} character{'' if min_len == 1 else 's'}")
        if len(value) > max_len:
            raise _Invalid(f"String should have at most {max_len} characters")
        return value
    return check


def _number(*, gt: float | None = None, ge: float | None = None, le: float | None = None) -> _Check:
    def check(value: object) -> float:
        # Strict: "250" and true are not kilowatts (nor seconds).
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid("Input should be a valid number")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range; bounded JSON refuses those already
            raise _Invalid("Input should be a finite number") from None
        if not math.isfinite(number):
            raise _Invalid("Input should be a finite number")
        if gt is not None and not number > gt:
            raise _Invalid(f"Input should be greater than {gt}")
        if ge is not None and not number >= ge:
            raise _Invalid(f"Input should be greater than or equal to {ge}")
        if le is not None and not number <= le:
            raise _Invalid(f"Input should be less than or equal to {le}")
        return number
    return check


def _flag(value: object) -> bool:
    # Strict: 1 and "false" are not an answer to "dry run?".
    if not isinstance(value, bool):
        raise _Invalid("Input should be a valid boolean")
    return value


_TIME_EXPECTED = "Input should be an ISO 8601 time such as 2026-12-01T10:00:00Z"


def _time(value: object) -> datetime:
    """An ISO 8601 time as `datetime.fromisoformat` reads it (not the Unix seconds in a string pydantic also
    took), aware: without an offset it is UTC, as for `flux-edge backfill --since` (a naive one was UTC to
    the outbox but the session's time zone to a cloud database)."""
    if not isinstance(value, str) or not value.isascii():  # ASCII digits only: fromisoformat takes any script's
        raise _Invalid(_TIME_EXPECTED)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        reason = str(exc)
        if reason.startswith("Invalid isoformat"):
            raise _Invalid(_TIME_EXPECTED) from None
        # A known form with a field out of range: say which (day 31 of April, hour 24, year 0, offset 24 h).
        raise _Invalid(f"{_TIME_EXPECTED} ({'UTC offset out of range' if 'offset' in reason else reason})") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _nullable(check: _Check) -> _Check:
    def nullable(value: object) -> object:
        return None if value is None else check(value)
    return nullable


@dataclass(frozen=True)
class _Field:
    name: str  # the attribute
    check: _Check
    required: bool = False  # absent: refused; otherwise absent is None
    keys: tuple[str, ...] = ()  # the keys it may come under (the first present is read); default: the name

    @property
    def accepted(self) -> tuple[str, ...]:
        return self.keys or (self.name,)


_COMMON = (_Field("event_id", _text(1, 200), required=True, keys=("eventId", "id")),
           _Field("source", _nullable(_text(0, 200))))
_DURATION = _Field("duration_s", _number(gt=0), required=True)
# Every command's own fields, in the order they are checked (the first problem is the one reported).
_FIELDS: dict[type[Command], tuple[_Field, ...]] = {
    DryRun: (_Field("enabled", _nullable(_flag), required=True),),
    ManualSetpoint: (_Field("kw", _number(ge=-1_000_000, le=1_000_000), required=True), _DURATION),
    ModeOverride: (_Field("mode", _text(1, 200), required=True), _DURATION),
    ClearOverride: (),
    # A reload carries a site file of at most 256 kB (controller/config/loader.py).
    Reload: (_Field("config", _nullable(_text(0, 256 * 1024))),),
    Backfill: (_Field("since", _nullable(_time)), _Field("until", _nullable(_time))),
}
_BY_TYPE = {cls.type: cls for cls in _FIELDS}
COMMAND_TYPES = tuple(_BY_TYPE)
LONG_RUNNING = ("reload", "backfill")


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted (done), rejected (refused, nothing changed), failed (tried and did not work)
    response: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    event_id: str | None
    command: Command | None
    error: str | None = None
    raw: dict[str, Any] | None = None  # the JSON object as received (what a signature covers)


# A reload carries a site file (at most 256 kB, controller/config/loader.py) inside the JSON.
MAX_COMMAND_BYTES = 512 * 1024
MAX_COMMAND_DEPTH = 8


def parse(payload: bytes) -> Parsed:
    """Never raises: every malformed payload is a Parsed with a one-line error, "<key>: <problem>"."""
    try:
        raw = bounded.loads(payload, max_bytes=MAX_COMMAND_BYTES, max_depth=MAX_COMMAND_DEPTH)
    except bounded.BoundedParseError as exc:
        text = str(exc)
        return Parsed(None, None, f"payload is not JSON: {text}" if text.startswith(("not UTF-8", "not JSON"))
                      else f"payload refused: {text}")
    if not isinstance(raw, dict):
        return Parsed(None, None, "payload must be a JSON object")
    ident = raw.get("eventId", raw.get("id"))
    event_id = str(ident)[:200] if isinstance(ident, str | int) and not isinstance(ident, bool) else None
    kind = raw.get("type")
    cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return Parsed(event_id, None, f"unknown command type {repr(kind)[:60]}; expected one of "
                      f"{', '.join(COMMAND_TYPES)}", raw)
    # The signature and its timestamp are checked by the bridge (controller/ops/auth.py), not here.
    body = {k: v for k, v in raw.items() if k not in ("auth", "timestamp")}
    values: dict[str, Any] = {}
    used = {"type"}
    for spec in (*_COMMON, *_FIELDS[cls]):
        key = next((k for k in spec.accepted if k in body), None)
        if key is None:
            if spec.required:
                return Parsed(event_id, None, f"{spec.accepted[0]}: Field required", raw)
            values[spec.name] = None
            continue
        used.add(key)
        try:
            values[spec.name] = spec.check(body[key])
        except _Invalid as exc:
            return Parsed(event_id, None, f"{key}: {exc}", raw)
    # An unknown key is a typo or a sender expecting a feature this daemon lacks: either way not obeyed
    # silently. With both eventId and id, the id is such a key.
    extra = next((k for k in body if k not in used), None)
    if extra is not None:
        return Parsed(event_id, None, f"{extra}: Extra inputs are not permitted", raw)
    return Parsed(event_id, cls(**values), raw=raw)


class CommandHandler:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def execute(self, command: Command, verified_key: str | None = None) -> Outcome:
        # The audit names the key that signed it; only without authentication (FLUX_COMMAND_AUTH=off) the
        # sender's own claim.
        actor = f"key:{verified_key}" if verified_key is not None else f"mqtt:{command.source or 'unknown'}"
        match command:
            case DryRun():
                return self._dry_run(command, actor)
            case ManualSetpoint():
                return self._setpoint(command, actor)
            case ModeOverride():
                return self._mode(command, actor)
            case ClearOverride():
                self._runtime.overrides.clear_timed()
                self._record("override_cleared", f"manual override cleared by {actor}", actor)
                return Outcome("accepted", "override cleared")
            case Reload():
                return await self._reload(command, actor)
            case Backfill():
                return await self._backfill(command)
        return Outcome("rejected", "unhandled command")

    def _record(self, kind: str, message: str, actor: str, **data: Any) -> None:
        log.info(kind, actor=actor, **data)
        self._runtime.alert(kind, "Info", message, actor=actor, **data)

    def _dry_run(self, cmd: DryRun, actor: str) -> Outcome:
        if self._runtime.config.controller is None:
            return Outcome("rejected", "this site has no controller block")
        self._runtime.overrides.dry_run = cmd.enabled
        self._record("dry_run_set", f"dry run set to {cmd.enabled} by {actor}", actor, enabled=cmd.enabled)
        state = "as configured" if cmd.enabled is None else "on" if cmd.enabled else "off"
        return Outcome("accepted", f"dry run {state}")

    def _duration_problem(self, duration_s: float) -> str | None:
        mqtt = self._runtime.config.mqtt
        limit = mqtt.max_override_s if mqtt is not None else 4 * 3600.0
        if not math.isfinite(duration_s) or duration_s > limit:
            return f"duration_s must be at most {limit:g} s"
        return None

    def _setpoint(self, cmd: ManualSetpoint, actor: str) -> Outcome:
        ctl = self._runtime.config.controller
        if ctl is None:
            return Outcome("rejected", "this site has no controller block")
        if not math.isfinite(cmd.kw) or not -ctl.battery_charge_limit_kw <= cmd.kw <= ctl.battery_discharge_limit_kw:
            return Outcome("rejected", f"kw {cmd.kw:g} outside the battery limits "
                                       f"[{-ctl.battery_charge_limit_kw:g}, {ctl.battery_discharge_limit_kw:g}]")
        if problem := self._duration_problem(cmd.duration_s):
            return Outcome("rejected", problem)
        until = self._runtime.clock.now() + timedelta(seconds=cmd.duration_s)
        ov = self._runtime.overrides
        ov.manual_setpoint_kw, ov.mode, ov.until, ov.source = cmd.kw, None, until, actor
        self._record("manual_setpoint_set", f"manual setpoint {cmd.kw:g} kW until {until.isoformat()} by {actor}",
                     actor, kw=cmd.kw, until=until.isoformat())
        return Outcome("accepted", f"setpoint {cmd.kw:g} kW until {until.isoformat()} (within the safety envelope)",
                       {"until": until.isoformat()})

    def _mode(self, cmd: ModeOverride, actor: str) -> Outcome:
        ctl = self._runtime.config.controller
        if ctl is None:
            return Outcome("rejected", "this site has no controller block")
        known = sorted({m.name for m in ctl.modes if m.name} | {m.type for m in ctl.modes})
        if cmd.mode not in known:
            return Outcome("rejected", f"mode {cmd.mode!r} is not configured; expected one of {', '.join(known)}")
        if problem := self._duration_problem(cmd.duration_s):
            return Outcome("rejected", problem)
        until = self._runtime.clock.now() + timedelta(seconds=cmd.duration_s)
        ov = self._runtime.overrides
        ov.manual_setpoint_kw, ov.mode, ov.until, ov.source = None, cmd.mode, until, actor
        self._record("mode_override_set", f"mode {cmd.mode} until {until.isoformat()} by {actor}",
                     actor, mode=cmd.mode, until=until.isoformat())
        note = self._mode_note(cmd.mode)
        message = f"mode {cmd.mode} until {until.isoformat()}" + (f"; {note}" if note else "")
        return Outcome("accepted", message, {"until": until.isoformat(), "acts_now": note is None})

    def _mode_note(self, mode: str) -> str | None:
        """Why an accepted mode override will not move the battery now, or None when it will."""
        ctl = self._runtime.config.controller
        if ctl is None:
            return None
        now = self._runtime.clock.now()
        entries = [m for m in ctl.modes if mode in (m.name, m.type)]
        periodic = [m for m in entries if m.type != "axle"]
        if periodic and all(window_at(m.periods, now) is None for m in periodic):
            change = next_mode_change([(mode, [p for m in periodic for p in m.periods])], now)
            when = f"; its next period starts at {change.time.isoformat()}" if change is not None else ""
            return f"it cannot act now: outside its periods{when}; the battery idles meanwhile"
        control = self._runtime.services.control
        if control is None:
            return None
        try:
            decision = control.decider.decide(control.build_state(now), now, only_mode=mode)
        except Exception:  # the note is advice; the override is set either way
            return None
        if decision.decided_by is None and not decision.effective:
            return "it cannot act now: it proposes nothing in the present state; the battery idles meanwhile"
        return None

    async def _reload(self, cmd: Reload, actor: str) -> Outcome:
        app = self._runtime.applier()
        if cmd.config is not None:
            text = cmd.config.encode()
        else:
            try:
                text = app.read_current()
            except OSError as exc:
                return Outcome("failed", f"cannot read {app.site_path}: {exc.strerror}")
        result = await app.apply(text, actor)
        status = "accepted" if result.ok else "rejected" if result.status == "rejected" else "failed"
        message = result.message + ("" if not result.problems else ": " + "; ".join(result.problems[:5]))
        return Outcome(status, message, {"sha256": result.sha256, "result": result.status})

    def _backfill_fn(self) -> Callable[..., Awaitable[Any]] | None:
        """Gap recovery run now, where this daemon has an outbox with upload sinks."""
        runtime = self._runtime
        if runtime.services.outbox is None or not runtime.config.uploader.sinks:
            return None

        async def recover(since: datetime | None = None) -> Any:
            return await check_now(uploader_site(runtime.config), runtime.clock, runtime.services.devices,
                                   runtime.services.sinks, since=since)

        return recover

    async def _backfill(self, cmd: Backfill) -> Outcome:
        fn = self._backfill_fn()
        if fn is None:
            return Outcome("failed", "backfill is unavailable on this daemon (no outbox with upload sinks)")
        try:
            result = await fn(since=cmd.since)
        except Exception as exc:
            log.error("backfill_failed", error=repr(exc))
            return Outcome("failed", f"backfill failed: {exc}")
        return Outcome("accepted", f"backfill done: {result}")
