"""What the daemon's components share while it runs, typed.

`Runtime` is built once per daemon and survives reloads; `site` is replaced whole on reload and
components read it when they start. `Services` holds the few live objects that one component owns
and others read (the control loop reads the battery driver and the market caches; status and
metrics read nearly everything). Each field is filled by the component that owns it, in
`controller.wiring`, and is None while that component does not run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.config.loaded import LoadedSite
from controller.config.site import SiteConfig
from controller.control_loop import ControlLoop
from controller.core.bus import Bus, Event
from controller.core.clock import Clock
from controller.core.overrides import Overrides
from controller.core.state import StateStore
from controller.forecast.service import ForecastService
from controller.market.axle import AxleClient
from controller.market.modo import ModoClient
from controller.ops.remote_config import ConfigApplier
from controller.ops.tally import DecisionTally
from controller.ops.today import SiteDay
from controller.planner.service import PlannerService
from devices.base import Device
from devices.links import DeviceLinks
from uploader.delivery import SinkCounters
from uploader.writer import OutboxService


class DaemonHandle(Protocol):
    """What components may ask of the daemon that runs them."""

    site_path: str
    reloads_ok: int
    reloads_failed: int

    async def reload(self) -> bool:
        """Re-read the site file; True when the new one runs."""


class MqttHandle(Protocol):
    """The MQTT bridge as status and metrics see it."""

    connected: bool
    dropped: int


@dataclass
class Services:
    """Live objects one component owns and others read."""

    devices: dict[str, Device] = field(default_factory=dict)  # device name -> its driver
    links: DeviceLinks = field(default_factory=DeviceLinks)  # what drivers share: link limits, gateways
    outbox: OutboxService | None = None
    sinks: dict[str, SinkCounters] = field(default_factory=dict)  # sink name -> upload counters
    modo: ModoClient | None = None
    axle: AxleClient | None = None
    control: ControlLoop | None = None
    planner: PlannerService | None = None
    tally: DecisionTally | None = None
    mqtt: MqttHandle | None = None
    applier: ConfigApplier | None = None
    forecast: ForecastService | None = None  # the latest forecast: `.latest`
    today: SiteDay | None = None  # today's energy and value, the last alerts (controller.ops.today)

    def snapshot(self) -> Services:
        """A copy to restore after a failed rebuild (the registries copied, the objects shared)."""
        return dataclasses.replace(self, devices=dict(self.devices), sinks=dict(self.sinks))

    def restore(self, saved: Services) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(saved, f.name))


@dataclass
class Runtime:
    site: LoadedSite
    clock: Clock
    bus: Bus = field(default_factory=Bus)
    state: StateStore = field(default_factory=StateStore)
    services: Services = field(default_factory=Services)
    health: dict[str, Any] = field(default_factory=dict)  # component name -> health snapshot
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # Real-time (time.monotonic) marks of liveness, e.g. "control" per tick and "outbox" per commit:
    # the systemd watchdog is pinged only while they are recent.
    heartbeats: dict[str, float] = field(default_factory=dict)
    overrides: Overrides = field(default_factory=Overrides)
    daemon: DaemonHandle | None = None

    def beat(self, name: str) -> None:
        self.heartbeats[name] = time.monotonic()

    @property
    def config(self) -> SiteConfig:
        return self.site.config

    def alert(self, kind: str, level: str, message: str, **data: Any) -> None:
        self.bus.events.publish(Event(self.clock.now(), kind, level, message, data))

    def applier(self) -> ConfigApplier:
        """The daemon's one config applier (created on first use; it keeps the running file's bytes)."""
        if self.services.applier is None:
            self.services.applier = ConfigApplier(self)
        return self.services.applier

    def tally(self) -> DecisionTally:
        if self.services.tally is None:
            self.services.tally = DecisionTally()
        return self.services.tally
