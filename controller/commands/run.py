from __future__ import annotations

import argparse
import asyncio
import gc

from controller.config import ConfigError, load_site
from controller.core.clock import clock_from_env
from controller.core.logs import configure_logging, get_logger
from controller.core.memory import give_back, limit_arenas
from controller.daemon import Daemon


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE", help="config/sites/<site>.yaml")
    p.add_argument("--log-format", choices=("json", "console"), default="json",
                   help="json lines for journald (default) or console for people")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    limit_arenas()  # before any thread exists: the to_thread workers share two malloc arenas
    configure_logging(args.log_format, args.log_level)
    log = get_logger("cli")
    try:
        site = load_site(args.site)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("config_invalid", problem=str(problem))
            print(problem)
        return 2
    # What start-up built (modules, the site model) lives as long as the process: kept out of every later
    # collection, and the parse's garbage handed back to the system before the components start.
    gc.collect()
    gc.freeze()
    give_back("start-up")
    daemon = Daemon(args.site, clock_from_env())
    return asyncio.run(daemon.run(site))
