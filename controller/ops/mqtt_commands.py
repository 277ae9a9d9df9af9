"""Operator commands (from MQTT): parse strictly, check against the site's limits, act, and say what happened.

Every command gets exactly one answer: (status, response text). A malformed payload, an unknown type
or an out-of-range value is rejected with the reason; an accepted manual setpoint or mode is still
subject to the control loop's safety envelope, it only replaces what the modes propose.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from controller.config.views import uploader_site
from controller.core import bounded
from controller.core.logs import get_logger
from controller.engine.schedule import window_at
from controller.engine.upcoming import next_mode_change
from uploader.coverage import check_now

if TYPE_CHECKING:
    from controller.runtime import Runtime

log = get_logger("ops.mqtt_commands")


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    event_id: str = Field(min_length=1, max_length=200, validation_alias=AliasChoices("eventId", "id"))
    source: str | None = Field(default=None, max_length=200, description="who sent it, for the records")


class DryRun(_Command):
    type: Literal["dry_run"]
    enabled: bool | None = Field(strict=True,
                                 description="true: never write the battery; false: write; null: as the site file says")


class ManualSetpoint(_Command):
    type: Literal["setpoint"]
    # Strict: "250" and true are not kilowatts.
    kw: float = Field(strict=True, allow_inf_nan=False, ge=-1e6, le=1e6,
                      description="+ discharge, - charge; still clamped by the safety envelope")
    duration_s: float = Field(strict=True, gt=0, allow_inf_nan=False)


class ModeOverride(_Command):
    type: Literal["mode"]
    mode: str = Field(min_length=1, max_length=200, description="a configured mode's name or type")
    duration_s: float = Field(strict=True, gt=0, allow_inf_nan=False)


class ClearOverride(_Command):
    type: Literal["clear_override"]


class Reload(_Command):
    type: Literal["reload"]
    config: str | None = Field(default=None, max_length=256 * 1024,
                               description="a new site file; absent: re-read the file on disk")


def _iso_time(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("expected an ISO 8601 time")
    return value


class Backfill(_Command):
    type: Literal["backfill"]
    since: Annotated[datetime | None, BeforeValidator(_iso_time)] = None
    until: Annotated[datetime | None, BeforeValidator(_iso_time)] = None


Command = Annotated[DryRun | ManualSetpoint | ModeOverride | ClearOverride | Reload | Backfill,
                    Field(discriminator="type")]
COMMAND_TYPES = ("dry_run", "setpoint", "mode", "clear_override", "reload", "backfill")
_adapter: TypeAdapter[Any] = TypeAdapter(Command)
LONG_RUNNING = ("reload", "backfill")


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted (done), rejected (refused, nothing changed), failed (tried and did not work)
    response: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    event_id: str | None
    command: Any | None  # one of the command models
    error: str | None = None
    raw: dict[str, Any] | None = None  # the JSON object as received (what a signature covers)


# A reload carries a site file (at most 256 kB, controller/config/loader.py) inside the JSON.
MAX_COMMAND_BYTES = 512 * 1024
MAX_COMMAND_DEPTH = 8


def parse(payload: bytes) -> Parsed:
    """Never raises: every malformed payload is a Parsed with a one-line error."""
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
    if kind not in COMMAND_TYPES:
        return Parsed(event_id, None, f"unknown command type {repr(kind)[:60]}; expected one of "
                      f"{', '.join(COMMAND_TYPES)}", raw)
    # The signature and its timestamp are checked by the bridge (controller/ops/auth.py), not the model.
    body = {k: v for k, v in raw.items() if k not in ("auth", "timestamp")}
    try:
        return Parsed(event_id, _adapter.validate_python(body), raw=raw)
    except (ValueError, TypeError, RecursionError) as exc:
        if not isinstance(exc, ValidationError):
            return Parsed(event_id, None, f"payload refused: {type(exc).__name__}", raw)
        errs = exc.errors(include_url=False)
        where = ".".join("eventId" if p == "event_id" else str(p) for p in errs[0]["loc"][1:]) or "(payload)"
        return Parsed(event_id, None, f"{where}: {errs[0]['msg']}", raw)


class CommandHandler:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def execute(self, command: Any, verified_key: str | None = None) -> Outcome:
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
