"""The daemon: one asyncio loop, components supervised, clean shutdown and hot reload.

The components come from builders, `(config, runtime) -> list[ComponentSpec]`, by default the
composition root's (`controller.wiring.COMPONENTS`). Each spec names the slice of config it depends
on (`key`); on reload only components whose key changed (or that are new or gone) are restarted.
Stop order is explicit: pollers stop first, then the control loop (which commands the battery to
idle on its way out), then the outbox flushes, then the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence

from controller.config import ConfigError, LoadedSite, SiteConfig, load_site
from controller.core.clock import Clock
from controller.core.component import ComponentSpec
from controller.core.logs import get_logger
from controller.core.supervisor import Supervisor
from controller.runtime import Runtime
from controller.wiring import COMPONENTS, Builder

log = get_logger("daemon")

SHUTDOWN_BUDGET_S = 10.0


class Daemon:
    def __init__(self, site_path: str, clock: Clock, *, builders: Sequence[Builder] = COMPONENTS,
                 env: dict[str, str] | None = None) -> None:
        self.site_path = site_path
        self.clock = clock
        self._env = env
        self._builders = tuple(builders)
        self.runtime: Runtime | None = None
        self.supervisor = Supervisor(clock)
        self._specs: dict[str, ComponentSpec] = {}
        self._stop = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.exit_code = 0

    # --- lifecycle ----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested.set()

    async def run(self, site: LoadedSite | None = None) -> int:
        site = site or load_site(self.site_path, self._env)
        self.runtime = Runtime(site=site, clock=self.clock)
        self.runtime.daemon = self
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig, handler in ((signal.SIGTERM, self.request_stop), (signal.SIGINT, self.request_stop),
                             (signal.SIGHUP, self.request_reload)):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
        log.info("daemon_starting", site=site.config.site.id, config_sha256=site.sha256[:12])
        try:
            self._apply(self._build(site.config))
            fatal = asyncio.ensure_future(self.supervisor.wait_fatal())
            while not self._stop.is_set():
                stop_wait = asyncio.ensure_future(self._stop.wait())
                reload_wait = asyncio.ensure_future(self._reload_requested.wait())
                await asyncio.wait({stop_wait, reload_wait, fatal}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                reload_wait.cancel()
                if fatal.done():
                    log.error("daemon_stopping_on_critical_failure", task=fatal.result().name)
                    self.exit_code = 1
                    break
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    await self.reload()
            fatal.cancel()
        finally:
            await self.shutdown()
            for sig in installed:
                loop.remove_signal_handler(sig)
        return self.exit_code

    def _build(self, config: SiteConfig) -> dict[str, ComponentSpec]:
        assert self.runtime is not None
        specs: dict[str, ComponentSpec] = {}
        for build in self._builders:
            for spec in build(config, self.runtime):
                if spec.name in specs:
                    raise ValueError(f"two components named {spec.name}")
                specs[spec.name] = spec
        return specs

    def _apply(self, new: dict[str, ComponentSpec]) -> None:
        for name in sorted(new, key=lambda n: -new[n].stop_order):  # start the consumers first
            spec = new[name]
            self.supervisor.spawn(name, spec.factory, critical=spec.critical, backoff=spec.backoff)
            self._specs[name] = spec

    async def reload(self) -> bool:
        """Re-read the site file. A bad file changes nothing; a good one restarts only what changed."""
        assert self.runtime is not None
        try:  # the daemon validates in a child process (controller.config.isolated): off the loop
            site = await asyncio.to_thread(load_site, self.site_path, self._env)
        except ConfigError as exc:
            self.reloads_failed += 1
            for p in exc.problems:
                log.error("config_reload_rejected", problem=str(p))
            self.runtime.alert("config_reload_rejected", "Error",
                               f"site file rejected, keeping the running config: {len(exc.problems)} problem(s)",
                               problems=[str(p) for p in exc.problems])
            return False
        old_site = self.runtime.site
        # Builders register shared objects (devices, sink counters) while they build: a build that
        # fails part-way must leave the running components' objects as they were.
        old_services = self.runtime.services.snapshot()
        self.runtime.site = site
        try:
            new = self._build(site.config)
        except Exception as exc:
            self.runtime.site = old_site
            self.runtime.services.restore(old_services)
            self.reloads_failed += 1
            log.error("config_reload_failed", error=repr(exc))
            return False
        changed = [n for n in self._specs if n not in new or new[n].key != self._specs[n].key]
        added = [n for n in new if n not in self._specs]
        for name in sorted(changed, key=lambda n: self._specs[n].stop_order):
            await self.supervisor.stop(name)
            del self._specs[name]
        self._apply({n: new[n] for n in new if n in changed or n in added})
        self.reloads_ok += 1
        log.info("config_reloaded", config_sha256=site.sha256[:12], restarted=sorted(changed), started=sorted(added))
        return True

    async def shutdown(self) -> None:
        # Real seconds: systemd's stop timeout does not run on the simulated clock.
        deadline = time.monotonic() + SHUTDOWN_BUDGET_S
        by_order: dict[int, list[str]] = {}
        for name, spec in self._specs.items():
            by_order.setdefault(spec.stop_order, []).append(name)
        for order in sorted(by_order):
            budget = max(0.5, deadline - time.monotonic())
            await asyncio.gather(*(self.supervisor.stop(n, timeout_s=budget) for n in by_order[order]))
        self._specs.clear()
        log.info("daemon_stopped", exit_code=self.exit_code)

    @property
    def components(self) -> list[str]:
        return sorted(self._specs)
