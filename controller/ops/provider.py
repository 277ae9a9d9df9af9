"""The field-operations components the daemon runs (built by the composition root, `controller.wiring`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from uuid import UUID

from controller.core.component import STOP_OPS, STOP_WATCHDOG, ComponentSpec
from controller.core.supervisor import Backoff
from controller.engine.site_state import MarketValue
from controller.ops.admin import AdminServer
from controller.ops.metrics import MetricsServer
from controller.ops.mqtt import run_bridge
from controller.ops.today import SiteDay
from controller.ops.watchdog import Watchdog, systemd_notifier
from controller.ops.webpage import WebServer

if TYPE_CHECKING:
    from controller.config import SiteConfig
    from controller.runtime import Runtime

# Constant keys: these components read the live config themselves and survive every reload.
WATCHDOG_KEY = "watchdog"
TALLY_KEY = "decision-tally"
TODAY_KEY = "site-day"


def site_day(runtime: Runtime) -> SiteDay:
    """The daemon's one SiteDay; it reads the live config, so it survives reloads."""
    if runtime.services.today is not None:
        return runtime.services.today

    def sources() -> tuple[UUID | None, UUID | None, str]:
        config = runtime.config
        c = config.controller
        if c is None:
            return None, None, ""
        if c.battery_meter is not None:  # + = the battery's output, as the control convention
            return config.device(c.site_meter).id, config.device(c.battery_meter).id, "power_total_active"
        return config.device(c.site_meter).id, config.device(c.battery).id, "target_power_kw"

    def price() -> MarketValue | None:
        modo = runtime.services.modo
        value = modo.price if modo is not None else None
        return value if isinstance(value, MarketValue) else None

    runtime.services.today = SiteDay(runtime.config.site.timezone, sources, price)
    return runtime.services.today


def ops_components(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    tally = runtime.tally()
    runtime.applier()
    today = site_day(runtime)
    specs = [ComponentSpec("ops-decisions", TALLY_KEY, lambda: tally.run(runtime.bus), stop_order=STOP_OPS),
             ComponentSpec("ops-today", TODAY_KEY, lambda: today.run(runtime.bus), stop_order=STOP_OPS)]
    if os.environ.get("NOTIFY_SOCKET"):  # under systemd (or a test standing in for it)
        specs.append(ComponentSpec("ops-watchdog", WATCHDOG_KEY, lambda: Watchdog(runtime, systemd_notifier()).run(),
                                   stop_order=STOP_WATCHDOG))
    m = config.metrics
    if m.enabled:
        specs.append(ComponentSpec("ops-metrics", m, lambda: MetricsServer(runtime, tally, m.host, m.port).run(),
                                   stop_order=STOP_OPS, backoff=Backoff(initial_s=2.0, max_s=60.0)))
    a = config.ops.admin
    if a.enabled:
        specs.append(ComponentSpec("ops-admin", a, lambda: AdminServer(runtime, tally, a.host, a.port).run(),
                                   stop_order=STOP_OPS, backoff=Backoff(initial_s=2.0, max_s=60.0)))
    w = config.ops.web
    if w.host is not None:
        token = w.token.get_secret_value() if w.token is not None else None
        specs.append(ComponentSpec("ops-web", w, lambda: WebServer(runtime, tally, w.host or "", w.port, token).run(),
                                   stop_order=STOP_OPS, backoff=Backoff(initial_s=2.0, max_s=60.0)))
    mqtt = config.mqtt
    if mqtt is not None:
        specs.append(ComponentSpec("ops-mqtt", (mqtt, config.site.id), lambda: run_bridge(runtime, mqtt),
                                   stop_order=STOP_OPS))
    return specs
