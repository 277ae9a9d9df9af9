"""`flux-edge demo` (what `make run` runs): the simulator and the daemon on one site file, as two
child processes, with a status view that refreshes every few seconds. Ctrl-C stops both cleanly.

Logs go to files beside the outbox (`var/<site>/simulator.log`, `daemon.log`) so the terminal
stays a status view; `tail -f` them for detail.

The demo site keeps its secrets as `${...}`, like a real site. Where the shell does not set them, this
command does, in the children's environment only: a new random Axle password each run (the stand-in and
the daemon read the same variable) and the cloud stand-in's key.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from controller.commands.status import render
from controller.config import ConfigError, SiteConfig, load_site
from controller.core.clock import ScaledClock
from controller.engine.schedule import zone
from controller.engine.settlement import SP
from controller.forecast.history import HistoryStore, history_path
from controller.forecast.rows import PeriodRow, open_text, parse_lines
from controller.ops.client import AdminUnavailable, admin_address, request

CLEAR = "\x1b[H\x1b[2J"
DEMO_HISTORY = Path(__file__).resolve().parents[2] / "simulator" / "data" / "demo_history.csv.gz"
DEMO_HISTORY_DAYS = timedelta(days=56)  # what the forecasters look back on, and the planner's 15 days
WEEK = timedelta(days=7)
DEMO_AXLE_PASSWORD = "FLUX_DEMO_AXLE_PASSWORD"
DEMO_CLOUD_API_KEY = "FLUX_DEMO_CLOUD_API_KEY"
PATH_HINT = ("in another terminal: `. .venv/bin/activate` (or use `.venv/bin/flux-edge`), then "
             "`flux-edge status --site config/sites/demo.yaml`")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", default="config/sites/demo.yaml", metavar="FILE")
    p.add_argument("--refresh-s", type=float, default=3.0, help="status view refresh period")
    p.add_argument("--duration-s", type=float, default=None,
                   help="stop by itself after this long (default: run until Ctrl-C)")
    p.add_argument("--speed", type=float, default=None, metavar="N",
                   help="run simulator and daemon on one clock N times faster than real time (`make run-fast`)")
    p.add_argument("--start", default=None, metavar="HH:MM",
                   help="with --speed: the site-local time of day today the fast clock starts at (default now)")


def fast_clock(site: SiteConfig, speed: float, start: str | None, now: datetime | None = None) -> str:
    """The FLUX_CLOCK value for a fast demo: today at `start` (site time), `speed` x, anchored now."""
    tz = zone(site.site.timezone)
    real = now or datetime.now(UTC)
    begin = real.astimezone(tz)
    if start:
        hh, mm = (int(x) for x in start.split(":", 1))
        begin = begin.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return f"start={begin.astimezone(UTC).isoformat()},speed={speed:g},anchor={real.timestamp():.3f}"


def demo_environment(site: SiteConfig, base: Mapping[str, str]) -> dict[str, str]:
    """The children's environment: `base`, plus the demo's secrets it does not set."""
    env = dict(base)
    env.setdefault(DEMO_AXLE_PASSWORD, secrets.token_urlsafe(24))
    cloud = site.simulator.cloud if site.simulator is not None else None
    if cloud is not None:
        env.setdefault(DEMO_CLOUD_API_KEY, cloud.api_key)
    return env


def daemon_site_file(site_path: str, state_dir: Path) -> Path:
    """The daemon runs on a copy under the state directory, so `config apply` on the demo writes there and
    never into the tracked site file. Each demo starts again from the tracked file."""
    copy = state_dir / "site.yaml"
    shutil.copyfile(site_path, copy)
    return copy


def seed_demo_history(state_dir: Path, now: datetime) -> tuple[int, int]:
    """On a demo's first start, its local history from the shipped synthetic set, moved on by whole weeks
    (weekdays stay weekdays) to end before `now`: the forecasts and the planner then start at once, as on a
    site that has run for weeks, instead of after the planner's `min_history_h`. Returns (periods, weeks
    moved); (0, 0) when the demo already has a history of its own.

    The set is synthetic (scripts/gen_history.py) and says so; moved across a clock change, its half-hours
    fall an hour off their local time, which a demo can live with."""
    if history_path(state_dir).exists():
        return 0, 0
    with open_text(DEMO_HISTORY) as f:
        rows = [item for _, item in parse_lines(f, str(DEMO_HISTORY)) if isinstance(item, PeriodRow)]
    if not rows:
        return 0, 0
    weeks = max(0, math.ceil((now - (rows[-1].period_start + SP)) / WEEK))
    keep_from = now - DEMO_HISTORY_DAYS
    moved = [(replace(r, period_start=t), None) for r in rows
             if keep_from <= (t := r.period_start + weeks * WEEK) and t + SP <= now]
    store = HistoryStore.open(state_dir)
    try:
        store.put(moved, source="import")
    finally:
        store.close()
    return len(moved), weeks


def _port_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def _busy_ports(site: SiteConfig) -> list[str]:
    """Addresses the simulator must bind that something else already holds."""
    sim = site.simulator
    wanted = [(d.host, d.port) for d in site.devices]
    if sim is not None:
        wanted += [(e.host, e.port) for e in (sim.modo, sim.axle, sim.cloud) if e is not None]
    return sorted({f"{h}:{p}" for h, p in wanted if _port_open(h, p)})


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _start(args: list[str], log: IO[str], env: dict[str, str]) -> subprocess.Popen[str]:
    # Own process group: the terminal's Ctrl-C reaches us only, and we stop the children in order.
    return subprocess.Popen([sys.executable, "-m", "controller", *args], stdout=log, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=env)


def _stop(proc: subprocess.Popen[str], timeout_s: float) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _view(site_path: str, cloud_note: str) -> str:
    host, port = admin_address(site_path)
    try:
        code, view = request("GET", host, port, "/status", timeout_s=2.0)
    except AdminUnavailable:
        return "waiting for the daemon's admin endpoint ..."
    if code != 200:
        return f"admin endpoint answered {code}"
    return render(view) + ("\n\n" + cloud_note if cloud_note else "") + "\n\n" + PATH_HINT


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_site(args.site, defer_secrets=True)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    site = loaded.config
    env = demo_environment(site, os.environ)
    unset = [u for u in loaded.unset_secrets if u.name not in env]
    if unset:
        for u in unset:
            print(f"{u.problem}: the demo sets only {DEMO_AXLE_PASSWORD} and {DEMO_CLOUD_API_KEY}: export it",
                  file=sys.stderr)
        return 2
    busy = _busy_ports(site)
    if busy:
        print(f"cannot start the simulator: already in use: {', '.join(busy)} (another `make run`?)")
        return 1
    state_dir = Path(site.buffer.path.replace("{site}", site.site.id))
    state_dir.mkdir(parents=True, exist_ok=True)
    sim_log_path, daemon_log_path = state_dir / "simulator.log", state_dir / "daemon.log"
    interactive = sys.stdout.isatty()
    fast = False
    if args.speed is not None:
        if args.speed <= 0:
            print("--speed must be above 0", file=sys.stderr)
            return 2
        try:
            env["FLUX_CLOCK"] = fast_clock(site, args.speed, args.start)
            fast = True
        except ValueError:
            print(f"--start {args.start!r}: expected HH:MM", file=sys.stderr)
            return 2
    with open(sim_log_path, "a") as sim_log, open(daemon_log_path, "a") as daemon_log:
        simulator = _start(["simulate", "--site", args.site], sim_log, env)
        deadline = time.monotonic() + 30
        while not all(_port_open(d.host, d.port) for d in site.devices if d.host in ("127.0.0.1", "localhost")):
            if simulator.poll() is not None or time.monotonic() > deadline:
                _stop(simulator, 5)
                print(f"the simulator did not come up; last lines of {sim_log_path}:\n{_tail(sim_log_path)}")
                return 1
            time.sleep(0.2)
        cloud = site.simulator.cloud if site.simulator else None
        cloud_up = cloud is not None and _port_open(cloud.host, cloud.port)
        cloud_note = "" if cloud is None or cloud_up else (
            "cloud stand-in not running (no PostgreSQL reachable): readings stay pending in the outbox")
        daemon_site = daemon_site_file(args.site, state_dir)
        start = ScaledClock.parse(env["FLUX_CLOCK"]).now() if fast else datetime.now(UTC)
        periods, weeks = seed_demo_history(state_dir, start)
        if periods:
            print(f"local history: {periods} synthetic half-hours from {DEMO_HISTORY.name}, moved on {weeks} weeks "
                  f"to end before {start.isoformat(timespec='minutes')}: forecasts and plans start at once")
        daemon = _start(["run", "--site", str(daemon_site)], daemon_log, env)
        print(f"simulator pid {simulator.pid}, daemon pid {daemon.pid}; logs in {state_dir}/ -- Ctrl-C stops both")
        print(f"the daemon runs {daemon_site} (a copy of {args.site}): "
              f"`flux-edge config apply --site {daemon_site} NEW.yaml` changes it")
        if fast:
            print(f"fast clock: {env['FLUX_CLOCK']}")
        print(PATH_HINT)
        stop_at = None if args.duration_s is None else time.monotonic() + args.duration_s
        code = 0
        try:
            signal.signal(signal.SIGTERM, _raise_interrupt)
            while stop_at is None or time.monotonic() < stop_at:
                if daemon.poll() is not None:
                    print(f"the daemon exited ({daemon.returncode}); last lines of {daemon_log_path}:\n"
                          f"{_tail(daemon_log_path)}")
                    code = daemon.returncode or 1
                    break
                view = _view(args.site, cloud_note)
                sys.stdout.write((CLEAR if interactive else "\n") + view + "\n")
                sys.stdout.flush()
                time.sleep(args.refresh_s)
        except KeyboardInterrupt:
            pass
        finally:
            print("\nstopping: daemon first (it idles the battery and flushes the outbox), then the simulator")
            daemon_code = _stop(daemon, 15)
            _stop(simulator, 10)
        if code == 0 and daemon_code not in (0, -signal.SIGTERM):
            code = daemon_code
    print(f"stopped; daemon exit code {daemon_code}")
    return code

