from __future__ import annotations

import argparse
import asyncio
import signal

from controller.config import ConfigError, load_site
from controller.core.clock import clock_from_env
from controller.core.logs import configure_logging


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE")
    p.add_argument("--log-format", choices=("json", "console"), default="json")


async def _main(site_path: str) -> int:
    from simulator.run import serve

    site = load_site(site_path).config
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(site, clock_from_env(), stop)
    return 0


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_format)
    try:
        return asyncio.run(_main(args.site))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 2
