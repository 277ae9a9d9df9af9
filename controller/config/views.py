"""What parts see of the site: typed views built from the site model, for parts that must not import it."""

from __future__ import annotations

from pathlib import Path

from controller.config.site import SiteConfig
from devices.catalog import BY_NAME, CLOUD_ROUTING
from uploader.site import UploadedDevice, UploaderSite, buffer_dir


def uploader_site(config: SiteConfig) -> UploaderSite:
    """The uploader's view: its settings, the devices it files rows for, and the kinds' cloud routing."""
    devices = tuple(UploadedDevice(d.id, d.name, d.type, BY_NAME[d.type].profile_log) for d in config.devices)
    battery_id = config.device(config.controller.battery).id if config.controller is not None else None
    return UploaderSite(site_id=config.site.id, buffer=config.buffer, uploader=config.uploader, devices=devices,
                        battery_id=battery_id, routing=CLOUD_ROUTING)


def site_buffer_dir(config: SiteConfig) -> Path:
    """Where the site keeps its durable files (outbox, local history): `buffer.path` with `{site}` filled in."""
    return buffer_dir(uploader_site(config))
