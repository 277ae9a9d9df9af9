"""`flux-edge read --site FILE --device NAME`: poll one device once and print the reading as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from controller.commands.common import load_site_or_report
from controller.config import SiteConfig
from controller.core.clock import align_down, clock_from_env
from controller.core.logs import configure_logging
from controller.core.reading import Reading
from devices.base import DeviceError
from devices.catalog import create_device
from devices.links import DeviceLinks

# Bound on the whole poll beyond the per-request timeouts: a driver may make several requests.
POLL_BUDGET_FACTOR = 4
POLL_BUDGET_EXTRA_S = 5.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE")
    p.add_argument("--device", required=True, metavar="NAME", help="the device's name in the site file")


def reading_json(reading: Reading) -> str:
    return json.dumps({"device": reading.device, "device_id": str(reading.device_id),
                       "time": reading.time.isoformat(), "fields": dict(reading.fields)}, allow_nan=False)


async def read_once(site: SiteConfig, name: str) -> Reading:
    config = site.device(name)
    clock = clock_from_env()  # FLUX_CLOCK: the simulated time a simulation runs on
    device = create_device(config, clock, DeviceLinks())
    budget = config.timeout_s * POLL_BUDGET_FACTOR + POLL_BUDGET_EXTRA_S
    try:
        return await asyncio.wait_for(device.poll(align_down(clock.now(), config.poll_interval_s)), timeout=budget)
    finally:
        await device.close()


def run(args: argparse.Namespace) -> int:
    # stdout carries the JSON answer only; logs go to stderr.
    configure_logging("console", "error", stream=sys.stderr)
    site = load_site_or_report(args.site, defer_secrets=True)
    if site is None:
        return 2
    names = [d.name for d in site.devices]
    if args.device not in names:
        print(f"error: no device named '{args.device}' in {args.site} (devices: {', '.join(names)})", file=sys.stderr)
        return 2
    config = site.device(args.device)
    try:
        reading = asyncio.run(read_once(site, args.device))
    except (DeviceError, TimeoutError) as exc:
        print(f"error: device '{args.device}' at {config.host}:{config.port} did not answer: {exc or 'timeout'}",
              file=sys.stderr)
        return 1
    print(reading_json(reading))
    return 0
