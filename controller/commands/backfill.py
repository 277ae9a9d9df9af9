"""`flux-edge backfill --site FILE --since ISO8601`: run gap recovery now and print what it recovered.

(b) rows the cloud lost are resent from the outbox's retention; (c) half-hour slots nobody holds are
read back from the profile logs of the devices that keep one (Emlite meters) into the outbox (the
daemon, or the next backfill, uploads them; a running daemon picks them up at its next delivery).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from controller.commands.common import load_site_or_report
from controller.config import SiteConfig
from controller.config.views import uploader_site
from controller.core.clock import Clock, clock_from_env, utc
from controller.core.logs import configure_logging
from devices.base import Device
from devices.catalog import BY_NAME, create_device
from devices.links import DeviceLinks
from uploader.coverage import check_now
from uploader.delivery import SinkCounters
from uploader.upload import deliver_all


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE")
    p.add_argument("--since", required=True, metavar="ISO8601", help="start of the window to check (UTC if no zone)")
    p.add_argument("--no-meters", action="store_true", help="skip reading back Emlite profile logs")


def _profile_devices(config: SiteConfig, clock: Clock) -> dict[str, Device]:
    links = DeviceLinks()
    return {d.name: create_device(d, clock, links) for d in config.devices if BY_NAME[d.type].profile_log}


def progress(message: str) -> None:
    """One progress line on stderr (stdout is the report)."""
    print(f"backfill: {message}", file=sys.stderr, flush=True)


async def _main(config: SiteConfig, since: datetime, meters: bool, clock: Clock) -> dict[str, Any]:
    devices = _profile_devices(config, clock) if meters else {}
    counters: dict[str, SinkCounters] = {}
    site = uploader_site(config)
    sinks = ", ".join(s.name for s in config.uploader.sinks) or "no sinks"
    try:
        progress(f"1/2 checking what the cloud ({sinks}) lacks since {since.isoformat()}"
                 + (f", reading back {len(devices)} meter profile log(s)" if devices else ""))
        report = await check_now(site, clock, devices, counters, since=since)
        progress(f"    resent {report.get('resent')}, read back {report.get('read_back')}, "
                 f"errors {len(report.get('errors') or [])}")
        progress("2/2 uploading what is pending")
        report["delivered"] = await deliver_all(site, clock, counters)
        progress(f"    delivered {report['delivered']}")
    finally:
        for d in devices.values():
            await d.close()
    return report


def run(args: argparse.Namespace) -> int:
    configure_logging("console", "info", stream=sys.stderr)
    config = load_site_or_report(args.site)
    if config is None:
        return 2
    try:
        since = utc(datetime.fromisoformat(args.since))
    except ValueError:
        print(f"--since: not an ISO 8601 time: {args.since!r}", file=sys.stderr)
        return 2
    clock = clock_from_env()  # FLUX_CLOCK: the same (simulated) time as the daemon and the simulator
    if since >= clock.now():
        print("--since must be in the past", file=sys.stderr)
        return 2
    report = asyncio.run(_main(config, since, not args.no_meters, clock))
    print(json.dumps(report, default=str))
    return 1 if report["errors"] else 0
