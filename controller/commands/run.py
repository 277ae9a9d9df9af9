from __future__ import annotations

import argparse
import asyncio
import gc
from pathlib import Path
from typing import TYPE_CHECKING

from controller.config import ConfigError, LoadedSite, begin_load_site, load_site
from controller.core.clock import clock_from_env
from controller.core.logs import configure_logging, get_logger
from controller.core.memory import give_back, limit_arenas
from controller.core.wakeups import allow_timer_slack

if TYPE_CHECKING:
    from controller.daemon import Daemon


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar="FILE", help="config/sites/<site>.yaml")
    p.add_argument("--log-format", choices=("json", "console"), default="json",
                   help="json lines for journald (default) or console for people")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


LAST_GOOD_SUFFIX = ".last-good"  # remote_config's default (the suffix a broken file names cannot be trusted)
ALERT_WAIT_S = 10.0


def run(args: argparse.Namespace) -> int:
    limit_arenas()  # before any thread exists: the to_thread workers share two malloc arenas
    configure_logging(args.log_format, args.log_level)
    log = get_logger("cli")
    loading = begin_load_site(args.site)
    # Imported while the site file validates (in the validator's child process): start-up time.
    from controller.daemon import Daemon

    try:
        site = loading()
        problems: list[str] = []
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
        for problem in problems:
            log.error("config_invalid", problem=problem)
            print(problem)
        fallback = Path(args.site).with_name(Path(args.site).name + LAST_GOOD_SUFFIX)
        try:
            site = load_site(fallback)
        except ConfigError:
            return 2
        # Better the last file that worked than a dead controller: run it, and say so loudly.
        log.error("config_boot_fallback", site=args.site, running=str(fallback), config_sha256=site.sha256[:12],
                  problems=len(problems))
    # What start-up built (modules, the site model) lives as long as the process: kept out of every later
    # collection, and the parse's garbage handed back to the system before the components start.
    gc.collect()
    gc.freeze()
    give_back("start-up")
    clock = clock_from_env()
    allow_timer_slack(clock)  # before the daemon's threads start: they inherit it
    daemon = Daemon(args.site, clock)
    return asyncio.run(_run(daemon, site, problems, args.site))


async def _run(daemon: Daemon, site: LoadedSite, problems: list[str], path: str) -> int:
    task = asyncio.create_task(daemon.run(site))
    if problems:
        # Raised once the components (outbox, MQTT) listen on the bus; the daemon runs meanwhile.
        waited = 0.0
        while not task.done() and waited < ALERT_WAIT_S and not _listening(daemon):
            await asyncio.sleep(0.1)
            waited += 0.1
        if daemon.runtime is not None:
            await asyncio.sleep(0.5)
            daemon.runtime.alert("config_boot_fallback", "Error",
                                 f"{path} is invalid ({len(problems)} problems): running the last good copy",
                                 first_problem=problems[0][:300], config_sha256=site.sha256[:12])
    return await task


def _listening(daemon: Daemon) -> bool:
    runtime = daemon.runtime
    return runtime is not None and (runtime.services.outbox is not None or runtime.services.mqtt is not None)
