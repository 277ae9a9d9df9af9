"""Taking a new site file safely: validate, write atomically, reload, verify, roll back.

`flux-edge config apply` (through the admin endpoint) and the MQTT `reload` command both call
`ConfigApplier.apply`. A file that fails validation changes nothing. A valid file is written
atomically next to a copy of the last known good one; after the reload the site meter and the
battery must each complete a successful poll within `ops.remote_config.verify_timeout_s`, or the
last good file is put back, reloaded and an alert raised. Every outcome is an event on the bus
(who, when, content hash), which the outbox carries to the cloud.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controller.config import ConfigError, LoadedSite, SiteConfig, parse_site
from controller.core.clock import Clock
from controller.core.logs import get_logger

log = get_logger("ops.remote_config")

VERIFY_CHECK_S = 0.2


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomically(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Temp file in the same directory, fsync, rename over, fsync the directory: all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def same_file(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def last_good_path(site_path: Path, suffix: str) -> Path:
    return site_path.with_name(site_path.name + suffix)


def validate(text: bytes, filename: str, env: Mapping[str, str] | None = None) -> tuple[SiteConfig | None, list[str]]:
    """The parsed config, or the problems (`FILE:LINE:COL: path: message`) that reject it."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [f"{filename}:1:1: (file): not UTF-8 text: {exc.reason}"]
    try:
        return parse_site(decoded, filename, env), []
    except ConfigError as exc:
        return None, [str(p) for p in exc.problems]


def install_file(site_path: Path, new: bytes, good: bytes | None, suffix: str) -> None:
    """Keep `good` as the last known good copy, then put `new` in place (both atomically)."""
    if good is not None:
        write_atomically(last_good_path(site_path, suffix), good)
    write_atomically(site_path, new)


@dataclass
class ApplyResult:
    status: str  # applied, unchanged, rejected, rolled_back, failed
    sha256: str
    message: str
    problems: list[str] = field(default_factory=list)
    restored_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "unchanged")

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "sha256": self.sha256, "message": self.message,
                "problems": self.problems, "restored_sha256": self.restored_sha256}


class Reloader(Protocol):
    site_path: str
    reloads_ok: int
    reloads_failed: int

    async def reload(self) -> bool: ...


class ApplierHost(Protocol):
    """What an apply reads and drives: the running site, the daemon's reload, device health, alerts.
    (The daemon's `Runtime`; named structurally so this module does not import the runtime's.)"""

    site: LoadedSite
    clock: Clock
    health: dict[str, Any]

    @property
    def daemon(self) -> Reloader | None: ...

    @property
    def config(self) -> SiteConfig: ...

    def alert(self, kind: str, level: str, message: str, **data: Any) -> None: ...


class ConfigApplier:
    """One apply at a time, on the daemon's loop; the runtime holds the daemon's one (`services.applier`)."""

    def __init__(self, runtime: ApplierHost) -> None:
        self._runtime = runtime
        self._lock = asyncio.Lock()
        self._running: set[asyncio.Task[ApplyResult]] = set()
        self.applied = 0
        self.rejected = 0
        self.rolled_back = 0
        self._new_reloaded = False  # whether the daemon accepted the config being verified
        # The running file's bytes, taken when the daemon starts: a rollback target even if the file on
        # disk is edited by hand before the next apply.
        self._running_bytes: bytes | None = None
        self._remember_running()

    def _remember_running(self) -> None:
        try:
            data = self.site_path.read_bytes()
        except OSError:
            return
        if sha256(data) == self._runtime.site.sha256:
            self._running_bytes = data

    @property
    def site_path(self) -> Path:
        daemon = self._runtime.daemon
        path = daemon.site_path if daemon is not None else self._runtime.site.path
        return Path(path)

    def read_current(self) -> bytes:
        return self.site_path.read_bytes()

    def _event(self, kind: str, level: str, message: str, **data: Any) -> None:
        self._runtime.alert(kind, level, message, **data)

    def _running_good_copy(self) -> bytes | None:
        """The bytes of the config now running: the file on disk, or the kept copy, whichever matches."""
        running = self._runtime.site.sha256
        if self._running_bytes is not None and sha256(self._running_bytes) == running:
            return self._running_bytes
        suffix = self._runtime.config.ops.remote_config.last_good_suffix
        for candidate in (self.site_path, last_good_path(self.site_path, suffix)):
            try:
                data = candidate.read_bytes()
            except OSError:
                continue
            if sha256(data) == running:
                return data
        return None

    async def apply(self, text: bytes, actor: str) -> ApplyResult:
        """Runs to the end even if the caller is cancelled: the reload it triggers may well restart the
        caller's own component (the MQTT bridge, the admin endpoint), and a half-done apply would leave
        a file unverified or a reload half-way."""
        task = asyncio.ensure_future(self._apply_locked(text, actor))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def _apply_locked(self, text: bytes, actor: str) -> ApplyResult:
        async with self._lock:
            return await self._apply(text, actor)

    async def _apply(self, text: bytes, actor: str) -> ApplyResult:
        digest = sha256(text)
        path = self.site_path
        config, problems = await asyncio.to_thread(validate, text, str(path))  # a child process in the daemon
        if config is None:
            self.rejected += 1
            log.warning("config_apply_rejected", actor=actor, sha256=digest[:12], problems=len(problems))
            self._event("config_apply_rejected", "Warning",
                        f"config push by {actor} failed validation; nothing changed",
                        actor=actor, sha256=digest, problems=problems)
            return ApplyResult("rejected", digest, "the new config failed validation; nothing changed", problems)
        previous = self._runtime.site.sha256
        if digest == previous:
            return ApplyResult("unchanged", digest, "this config is already running")
        self._new_reloaded = False
        good = self._running_good_copy()
        suffix = self._runtime.config.ops.remote_config.last_good_suffix
        timeout_s = float(config.ops.remote_config.verify_timeout_s)
        install_file(path, text, good, suffix)
        log.info("config_apply_written", actor=actor, sha256=digest[:12], previous_sha256=previous[:12])
        ok, reason = await self._reload_and_verify(config, timeout_s)
        if ok:
            self._running_bytes = text
            self.applied += 1
            log.info("config_applied", actor=actor, sha256=digest[:12], previous_sha256=previous[:12])
            self._event("config_applied", "Info", f"config {digest[:12]} applied by {actor}",
                        actor=actor, sha256=digest, previous_sha256=previous)
            return ApplyResult("applied", digest, "applied and verified")
        return await self._roll_back(digest, previous, good, actor, reason)

    async def _roll_back(self, digest: str, previous: str, good: bytes | None, actor: str,
                         reason: str) -> ApplyResult:
        self.rolled_back += 1
        if good is None:
            log.error("config_rollback_impossible", actor=actor, sha256=digest[:12], reason=reason)
            self._event("config_rollback_impossible", "Critical",
                        f"config {digest[:12]} from {actor} failed ({reason}) and no last good copy exists",
                        actor=actor, sha256=digest, reason=reason)
            return ApplyResult("failed", digest, f"{reason}; no last good copy to roll back to")
        write_atomically(self.site_path, good)
        daemon = self._runtime.daemon
        reloaded = bool(await daemon.reload()) if daemon is not None else False
        if daemon is not None:
            # The operator's reload failed, whatever the daemon's loader thought of the file: count it as
            # failed (its accepted reload, if it got that far, and the restoring reload are not successes).
            undo = (1 if self._new_reloaded else 0) + (1 if reloaded else 0)
            daemon.reloads_ok = max(0, daemon.reloads_ok - undo)
            if self._new_reloaded:
                daemon.reloads_failed += 1
        log.error("config_rolled_back", actor=actor, sha256=digest[:12], restored_sha256=previous[:12],
                  reason=reason, reloaded=reloaded)
        self._event("config_rolled_back", "Error",
                    f"config {digest[:12]} from {actor} rolled back to {previous[:12]}: {reason}",
                    actor=actor, sha256=digest, restored_sha256=previous, reason=reason)
        return ApplyResult("rolled_back", digest, f"rolled back: {reason}", restored_sha256=previous)

    async def _reload_and_verify(self, config: SiteConfig, timeout_s: float) -> tuple[bool, str]:
        daemon = self._runtime.daemon
        if daemon is None:
            return False, "no daemon to reload"
        self._new_reloaded = False
        if not await daemon.reload():
            return False, "the daemon rejected the new config on reload"  # counted failed by the daemon
        self._new_reloaded = True
        names = _must_poll(config)
        baseline = {n: (self._runtime.health.get(n), _polls_ok(self._runtime.health.get(n))) for n in names}
        clock = self._runtime.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            waiting = [n for n in names if not self._polled_since(n, baseline[n])]
            if not waiting:
                return True, "ok"
            if clock.monotonic() >= deadline:
                return False, f"no successful poll of {', '.join(waiting)} within {timeout_s:g} s"
            await clock.sleep(VERIFY_CHECK_S)

    def _polled_since(self, name: str, baseline: tuple[Any, int]) -> bool:
        health = self._runtime.health.get(name)
        if health is None:
            return False
        before, ok_before = baseline
        # The poller may have been restarted with a fresh health record, or kept the old one.
        return _polls_ok(health) > (ok_before if health is before else 0)


def _polls_ok(health: Any) -> int:
    return int(getattr(health, "polls_ok", 0)) if health is not None else 0


def _must_poll(config: SiteConfig) -> list[str]:
    """The devices a working config must reach: the controller's site meter and battery."""
    if config.controller is not None:
        return [config.controller.site_meter, config.controller.battery]
    from devices.catalog import BATTERY_KINDS, METER_KINDS

    return [d.name for d in config.devices if d.type in METER_KINDS | BATTERY_KINDS][:2]
