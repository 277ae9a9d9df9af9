"""Adapters from the daemon's runtime to the typed `components` functions of the devices and uploader parts.

`controller.daemon.PROVIDERS` names these two until the composition root builds every component
itself. The objects that must outlive a reload are created on first use and kept in
`runtime.services` ("devices", "device_links", "outbox", "sinks"), where status, metrics, the
watchdog and the commands read them.
"""

from __future__ import annotations

from typing import Any

from controller.config import SiteConfig
from controller.config.views import uploader_site
from controller.core.component import ComponentSpec
from controller.daemon import Runtime
from devices.links import DeviceLinks
from devices.scheduler import components as poller_components
from uploader.components import components as upload_components
from uploader.writer import OutboxService


def devices_components(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    links = runtime.services.get("device_links")
    if not isinstance(links, DeviceLinks):
        links = runtime.services["device_links"] = DeviceLinks()
    return poller_components(config.devices, clock=runtime.clock, state=runtime.state, bus=runtime.bus,
                             alert=runtime.alert, health=runtime.health, links=links,
                             live=runtime.services.setdefault("devices", {}))


def uploader_components(config: SiteConfig, runtime: Runtime) -> list[ComponentSpec]:
    service = runtime.services.get("outbox")
    if not isinstance(service, OutboxService):
        service = runtime.services["outbox"] = OutboxService(runtime.bus)

    def devices() -> dict[str, Any]:
        # Looked up at each use: a reload (or a failed one, which restores the dict) may replace it.
        live: dict[str, Any] = runtime.services.get("devices", {})
        return live

    return upload_components(uploader_site(config), service, clock=runtime.clock, alert=runtime.alert,
                             beat=runtime.beat, devices=devices, counters=runtime.services.setdefault("sinks", {}))
