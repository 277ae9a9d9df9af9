"""Footprint of the daemon (issue 16): memory, CPU, import cost and start-up, per site size.

For each site (demo: 9 devices; hmce: 1 PowerPack, 4 Acuvim II, 54 Emlite, 6 heat meters, every mode;
d200: 200 devices) it writes a simulated site file with local ports into a scratch directory, starts
`flux-edge simulate` and `flux-edge run` on it as two processes (real time, a real PostgreSQL cloud
stand-in and the local Mosquitto), and reports:

- start-up to first poll: from starting the daemon's interpreter until the admin endpoint shows a
  device with a successful poll;
- steady RSS: VmRSS of the daemon sampled every 2 s over the second half of the run (median, max);
- CPU: the daemon process's own utime+stime (/proc/PID/stat) over the measured window, as % of one
  core and as CPU-seconds per wall minute. Other processes' load does not enter that figure.

Next to those it prints the baseline processes of the same run: a bare interpreter, a process that
only imports the third-party dependencies, the delta of each dependency imported alone, and the
daemon's own modules imported for the site (`flux-edge run`'s imports plus the site model),
with which heavy modules that import graph holds.

    PYTHONPATH=$PWD python bench/bench_footprint.py --seconds 180          # every site, 3 min each
    PYTHONPATH=$PWD python bench/bench_footprint.py --sites hmce --seconds 1800  # the issue's 30-min run
    PYTHONPATH=$PWD python bench/bench_footprint.py --imports-only
    ... --code DIR    # measure another checkout (e.g. the baseline commit exported to a directory)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPS = ("pydantic", "pymodbus", "httpx", "prometheus_client", "psycopg", "meterbus", "structlog", "yaml",
        "aiomqtt")
HEAVY = ("psycopg", "matplotlib", "numpy", "simulator", "pydantic")
# The stand-ins' secrets, set in the environment of both processes: the site file names them only.
SECRETS = {"FLUX_BENCH_AXLE_PASSWORD": "bench-axle-password", "FLUX_BENCH_CLOUD_API_KEY": "sim-anon-key"}
DB = f"flux_footprint_{os.getpid()}"  # the cloud stand-in's database for this run, dropped at the end
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

RSS_SNIPPET = """
def _rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
"""


_held: list[socket.socket] = []  # ports handed out stay bound until the site file is written: no repeats


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    _held.append(s)
    return int(s.getsockname()[1])


def release_ports() -> None:
    while _held:
        _held.pop().close()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def children_rss_mib(pid: int) -> float:
    """RSS of `pid`'s child processes together (the backlog's upload child, the validator)."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return 0.0
    for kid in kids:
        with contextlib.suppress(OSError, RuntimeError):  # gone meanwhile
            total += rss_mib(kid)
    return total


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def py(code_dir: Path, script: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", RSS_SNIPPET + script], capture_output=True, text=True,
                         env=code_env(code_dir), cwd=code_dir, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def imports(code_dir: Path, site_file: Path | None) -> dict[str, Any]:
    res: dict[str, Any] = {}
    res["bare"] = py(code_dir, "import json; print(json.dumps({'rss': _rss()}))")["rss"]
    for dep in DEPS:
        r = py(code_dir, f"import json; b=_rss(); import {dep}; print(json.dumps({{'rss': _rss(), 'base': b}}))")
        res[dep] = r["rss"] - r["base"]
    res["deps_only"] = py(code_dir, f"import json; import {', '.join(DEPS)}; print(json.dumps({{'rss': _rss()}}))")[
        "rss"]
    # The same imports one after the other in one process: each one's share, what the others did not load.
    steps = "".join(f"b = _rss(); importlib.import_module({d!r}); out[{d!r}] = _rss() - b\n" for d in DEPS)
    script = "import json, importlib; out = {}\n" + steps + "print(json.dumps(out))"
    res["incremental"] = py(code_dir, script)
    if site_file is not None:
        # What `flux-edge run --site FILE` imports before it starts anything, plus the composition root.
        script = (
            "import inspect, json, sys; from controller import cli\n"
            f"argv = ['run', '--site', {str(site_file)!r}]\n"
            "getattr(cli, 'prepare', lambda a: None)(argv)  # the daemon's records, where the code has them\n"
            "cli.build_parser(argv) if inspect.signature(cli.build_parser).parameters else cli.build_parser()\n"
            "import controller.commands.run, controller.wiring, controller.daemon\n"
            f"from controller.config import load_site; load_site({str(site_file)!r})\n"
            f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
            "print(json.dumps({'rss': _rss(), 'modules': len(sys.modules), 'heavy': heavy}))")
        res["daemon_imports"] = py(code_dir, script)
    return res


def site_doc(kind: str, work: Path, ports: dict[str, int], scenario: str = "steady") -> dict[str, Any]:
    demo = yaml.safe_load((ROOT / "config/sites/demo.yaml").read_text())
    uid = "f0070000-0000-4000-8000-{:012d}".format
    devices: list[dict[str, Any]] = []
    n_acuvim, n_emlite, n_heat, n_heat_modbus = {"demo": (2, 4, 1, 1), "hmce": (4, 54, 6, 0),
                                                 "d200": (4, 183, 12, 0)}[kind]
    devices.append({"type": "powerpack", "name": "bess", "id": uid(1), "host": "127.0.0.1", "port": free_port(),
                    "poll_interval_s": 2, "nameplate_power_kw": 250, "nameplate_energy_kwh": 1000,
                    "ramp_up_kw_per_s": 100, "ramp_down_kw_per_s": 100})
    for i in range(n_acuvim):
        name = ("site-meter", "bess-meter", "feeder-1", "feeder-2")[i]
        devices.append({"type": "acuvim2", "name": name, "id": uid(10 + i), "host": "127.0.0.1",
                        "port": free_port(), "poll_interval_s": 2, "ct1": 800, "ct2": 5})
    for i in range(n_emlite):
        devices.append({"type": "emlite", "name": f"home-{i + 1:03d}", "id": uid(100 + i), "host": "127.0.0.1",
                        "port": free_port(), "link": f"4g-router-{i // 20 + 1}", "twin_element": i % 9 == 2})
    gateway = free_port()
    for i in range(n_heat):
        devices.append({"type": "heat_mbus", "name": f"heat-{i + 1}", "id": uid(500 + i), "host": "127.0.0.1",
                        "port": gateway, "mbus_address": i + 1})
    for i in range(n_heat_modbus):
        devices.append({**next(d for d in demo["devices"] if d["type"] == "heat_modbus"), "id": uid(600 + i),
                        "port": free_port()})
    site_id = f"fpbench-{kind}-{os.getpid()}"  # its own MQTT client id: runs side by side must not kick each other
    offline = scenario in ("offline", "offline-week")
    # planned: the demo's planner block too (the other scenarios have the plan mode but no planner, so the
    # rule-based modes decide); its local history is seeded before the start (run_site), so it plans at once.
    # seeded: the same history, no planner (the forecasts run on it alike): planned's baseline.
    planner = {"planner": demo["planner"]} if scenario == "planned" else {}
    return {**planner,
        "site": {"id": site_id, "name": f"footprint bench {kind}", "timezone": "Europe/London"},
        "devices": devices,
        "controller": demo["controller"],
        "market": {"modo": {"base_url": f"http://127.0.0.1:{ports['modo']}"},
                   # Secrets from the environment, as on a real site (see SECRETS).
                   "axle": {**demo["market"]["axle"], "password": "${FLUX_BENCH_AXLE_PASSWORD}",
                            "base_url": f"http://127.0.0.1:{ports['axle']}"}},
        "buffer": {"path": str(work / "outbox")},
        # Offline: the cloud and the broker away (nothing listens on those ports).
        "uploader": {"sinks": [{"type": "postgrest", "name": "cloud", "api_key": "${FLUX_BENCH_CLOUD_API_KEY}",
                                "url": f"http://127.0.0.1:{ports['closed'] if offline else ports['cloud']}",
                                # The backlog uploaded by the daemon itself, not by a child (uploader/drain.py).
                                **({"child_drain_rows": 0} if scenario == "backlog-in-daemon" else {})}]},
        "mqtt": {"host": "127.0.0.1", "port": ports["closed"] if offline else 1883},
        "metrics": {"port": ports["metrics"]},
        "ops": {"admin": {"port": ports["admin"]}},
        "simulator": {"seed": 42, "site_model": demo["simulator"]["site_model"],
                      "modo": {"port": ports["modo"]}, "axle": {"port": ports["axle"]},
                      "cloud": {"port": ports["cloud"], "dsn": f"postgresql://postgres@127.0.0.1:5432/{DB}"}},
    }


def write_site(kind: str, work: Path, scenario: str = "steady") -> tuple[Path, dict[str, Any]]:
    ports = {k: free_port() for k in ("modo", "axle", "cloud", "metrics", "admin", "closed")}
    doc = site_doc(kind, work, ports, scenario)
    path = work / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    release_ports()
    return path, doc


def first_poll(admin_port: int) -> bool:
    try:
        # Generous: with a large outbox, an older daemon's /status counts rows on every call.
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=30.0) as r:
            body = json.loads(r.read())
    except (OSError, ValueError):
        return False
    return any(int(d.get("polls_ok") or 0) > 0 for d in body.get("devices", []))


def outbox_pending(directory: Path) -> int | None:
    """Rows pending for the cloud sink, from the counts the outbox file keeps (None before it has them)."""
    if not (directory / "outbox.sqlite3").exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{directory / 'outbox.sqlite3'}?mode=ro", uri=True, timeout=30.0)
        try:
            row = conn.execute("SELECT pending FROM sink_counts WHERE sink = 'cloud'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return None if row is None else int(row[0])


def status(admin_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=30.0) as r:
        return dict(json.loads(r.read()))


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def code_env(code_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a process of the measured checkout: its code, the stand-ins' secrets, the real clock."""
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(code_dir), **extra}
    env.pop("FLUX_CLOCK", None)
    return env


def start_simulator(code_dir: Path, site_file: Path, doc: dict[str, Any], log_path: Path,
                    env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Any]:
    """`flux-edge simulate` on the site, once every device and stand-in port answers: (process, its open log)."""
    env = code_env(code_dir) if env is None else env
    log = open(log_path, "wb")  # noqa: SIM115 - the caller closes it with the process
    sim = subprocess.Popen([sys.executable, "-m", "controller", "simulate", "--site", str(site_file)],
                           cwd=code_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    wanted = {d["port"] for d in doc["devices"]} | {doc["simulator"][k]["port"] for k in ("modo", "axle", "cloud")}
    deadline = time.monotonic() + 60
    while not all(port_open(p) for p in wanted):
        if time.monotonic() > deadline or sim.poll() is not None:
            stop(sim)
            log.close()
            raise RuntimeError(f"simulator did not come up; see {log_path}")
        time.sleep(0.2)
    return sim, log


def run_site(kind: str, code_dir: Path, seconds: float, work: Path, scenario: str = "steady",
             speed: float = 1.0, backlog_days: float = 0.0) -> dict[str, Any]:
    """`scenario`: steady (cloud and broker up), offline (both away; `speed` > 1 runs both processes on an
    accelerated clock so the queues fill within a short run), offline-week (both away, `backlog_days` of rows
    pending at start), delivered-week (`backlog_days` of rows already delivered at start), backlog
    (`backlog_days` of HMCE-size rows waiting in the outbox at start: RSS while and after they are uploaded)."""
    site_file, doc = write_site(kind, work, scenario)
    env = code_env(code_dir)
    if speed != 1.0:
        env["FLUX_CLOCK"] = f"start={datetime.now(UTC).isoformat()},speed={speed},anchor={time.time()}"
    if scenario in ("planned", "seeded"):
        # The demo's own seeding (the shipped synthetic history moved on to end before now), in a process of
        # the measured checkout: this script imports nothing of the project.
        seed = ("import sys; from datetime import UTC, datetime; from pathlib import Path; "
                "from controller.commands.demo import seed_demo_history; "
                "print(seed_demo_history(Path(sys.argv[1]), datetime.now(UTC)))")
        subprocess.run([sys.executable, "-c", seed, doc["buffer"]["path"]], env=env, cwd=code_dir, check=True,
                       stdout=subprocess.DEVNULL)
    if backlog_days:
        delivered = ["--delivered-to", "cloud"] if scenario == "delivered-week" else []
        subprocess.run([sys.executable, str(ROOT / "bench/outbox_growth.py"), "--days", str(backlog_days),
                        "--fill", doc["buffer"]["path"], *delivered], env={**env, "PYTHONPATH": str(code_dir)},
                       check=True, stdout=subprocess.DEVNULL)
    sim, sim_log = start_simulator(code_dir, site_file, doc, work / f"{kind}-simulator.log", env)
    daemon_log = open(work / f"{kind}-daemon.log", "wb")  # noqa: SIM115
    daemon: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        daemon = subprocess.Popen([sys.executable, "-m", "controller", "run", "--site", str(site_file)],
                                  cwd=code_dir, env=env, stdout=daemon_log, stderr=subprocess.STDOUT)
        admin = doc["ops"]["admin"]["port"]
        while not first_poll(admin):
            if daemon.poll() is not None or time.monotonic() - t0 > 300:
                raise RuntimeError(f"daemon did not poll; see {work / f'{kind}-daemon.log'}")
            time.sleep(0.02)
        startup = time.monotonic() - t0
        extra: dict[str, Any] = {}
        if backlog_days and scenario.startswith("backlog"):
            drain0, peak, child_peak = time.monotonic(), 0.0, 0.0
            # Read from the outbox file, not /status: the daemon's first ~150 status answers grow it by about
            # 1.3 MiB for good (then flat), which the baseline runs, never asked, would not pay. (A checkout from
            # before the file kept counts is asked over /status.)
            def backlog_left() -> int | None:
                left = outbox_pending(Path(doc["buffer"]["path"]))
                return left if left is not None else status(admin).get("backlog")

            while (backlog := backlog_left()) is None or backlog > 500:
                peak = max(peak, rss_mib(daemon.pid))
                child_peak = max(child_peak, children_rss_mib(daemon.pid))
                if time.monotonic() - drain0 > 1800:
                    raise RuntimeError("backlog not uploaded within 30 min")
                time.sleep(2.0)
            extra = {"drain_s": time.monotonic() - drain0, "drain_peak": peak, "child_peak": child_peak}
        start = time.monotonic()
        half = start + seconds / 2
        samples: list[float] = []
        cpu0 = cpu1 = 0.0
        t_cpu0 = t_cpu1 = 0.0
        while (now := time.monotonic()) < start + seconds:
            if now >= half:
                if not samples:
                    cpu0, t_cpu0 = cpu_s(daemon.pid), now
                samples.append(rss_mib(daemon.pid))
            time.sleep(2.0)
        cpu1, t_cpu1 = cpu_s(daemon.pid), time.monotonic()
        st = status(admin)
        devices_ok = sum(1 for d in st.get("devices", []) if int(d.get("polls_ok") or 0) > 0)
        wall = t_cpu1 - t_cpu0
        return {**extra, "site": kind, "scenario": scenario, "devices": len(doc["devices"]), "startup_s": startup,
                "rss_median": statistics.median(samples), "rss_max": max(samples),
                "cpu_pct": 100 * (cpu1 - cpu0) / wall, "cpu_s_per_min": 60 * (cpu1 - cpu0) / wall,
                "window_s": wall, "devices_polled": devices_ok, "backlog": st.get("backlog"),
                "rss_window": (samples[0], samples[-1]),
                "plans_made": (work / f"{kind}-daemon.log").read_text(errors="replace").count('"plan_made"')}
    finally:
        if daemon is not None:
            stop(daemon)
        stop(sim)
        sim_log.close()
        daemon_log.close()


def drop_database() -> None:
    try:
        import psycopg  # the bench's own cleanup; the daemon never loads it
    except ImportError:
        return
    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    except psycopg.Error:
        pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", default="demo,hmce,d200", help="comma-separated: demo, hmce, d200")
    p.add_argument("--seconds", type=float, default=180.0, help="real time per site after the first poll")
    p.add_argument("--code", type=Path, default=ROOT, help="the checkout whose daemon is measured")
    p.add_argument("--imports-only", action="store_true")
    p.add_argument("--outbox-days", type=float, default=7.0, help="days of HMCE rows for the outbox figures (0: skip)")
    p.add_argument("--offline", action="store_true", help="also run HMCE with the cloud and the broker away")
    p.add_argument("--offline-speed", type=float, default=20.0, help="clock speed of the offline run")
    p.add_argument("--offline-week", action="store_true",
                   help="also run HMCE offline at 1x with a week of rows already pending in the outbox: the state "
                        "a week without the cloud leaves, which a run cannot wait for")
    p.add_argument("--backlog-days", type=float, default=0.0,
                   help="also run HMCE with this many days of rows waiting in the outbox (7: the issue's week)")
    p.add_argument("--backlog-in-daemon", type=float, default=0.0,
                   help="as --backlog-days, the upload in the daemon itself (child_drain_rows: 0): the child's effect")
    p.add_argument("--delivered-week", action="store_true",
                   help="also run HMCE with a week of rows in the outbox already delivered: --backlog-days 7's "
                        "baseline (the same rows, from which the daemon rebuilds the same local history)")
    p.add_argument("--planner", action="store_true",
                   help="also run HMCE with the demo's planner on (history seeded: it plans from the start)")
    p.add_argument("--seeded", action="store_true",
                   help="also run HMCE with the same seeded history as --planner but no planner: its baseline")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (site files, logs)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the simulator and daemon are stopped too
    code_dir = args.code.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    try:
        (work / "imports").mkdir()
        site_for_imports, _ = write_site("hmce", work / "imports")
        imp = imports(code_dir, site_for_imports)
        print(f"code: {code_dir}")
        print(f"bare interpreter            {imp['bare']:6.1f} MiB")
        print(f"dependencies only           {imp['deps_only']:6.1f} MiB  ({', '.join(DEPS)})")
        print("  each dependency: imported alone into a bare interpreter / its share, imported in this order after "
              "the ones above")
        for dep in DEPS:
            print(f"  import {dep:<20} +{imp[dep]:5.1f} MiB / +{imp['incremental'][dep]:5.1f} MiB")
        d = imp["daemon_imports"]
        print(f"daemon imports (hmce site)  {d['rss']:6.1f} MiB  {d['modules']} modules; "
              f"heavy: {', '.join(sorted({m.split('.')[0] for m in d['heavy']})) or 'none'}")
        if args.outbox_days:
            growth = [sys.executable, str(ROOT / "bench/outbox_growth.py"), "--days", str(args.outbox_days)]
            out = subprocess.run(growth,
                                 env={**os.environ, "PYTHONPATH": str(code_dir)}, cwd=code_dir, check=True,
                                 capture_output=True, text=True)
            g = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"outbox, {args.outbox_days:g} days of HMCE rows ({g['rows']} rows, nothing uploaded): "
                  f"{g['bytes_per_row']:.0f} bytes/row in the file (bodies {g['body_bytes_per_row']:.0f}, "
                  f"decision bodies {g['decision_body_bytes']:.0f}); {g['bytes_per_day'] / 1e6:.1f} MB/day; "
                  f"{g['days_in_bound']:.1f} days fit in 2 GiB (85 % used by the bound); "
                  f"stats() p50 {g['stats_p50_ms']:.2f} ms p99 {g['stats_p99_ms']:.2f} ms", flush=True)
        if args.imports_only:
            return 0
        print(f"{'site':<6} {'devices':>7} {'start->poll':>11} {'RSS median':>10} {'RSS max':>8} {'CPU %':>6} "
              f"{'CPU s/min':>9} {'window':>7} {'polled':>6}")
        runs: list[tuple[str, str, dict[str, Any]]] = [(k, "steady", {}) for k in args.sites.split(",") if k]
        if args.offline:
            runs.append(("hmce", "offline", {"speed": args.offline_speed}))
        if args.offline_week:
            runs.append(("hmce", "offline-week", {"backlog_days": 7.0}))
        if args.delivered_week:
            runs.append(("hmce", "delivered-week", {"backlog_days": 7.0}))
        if args.backlog_days:
            runs.append(("hmce", "backlog", {"backlog_days": args.backlog_days}))
        if args.backlog_in_daemon:
            runs.append(("hmce", "backlog-in-daemon", {"backlog_days": args.backlog_in_daemon}))
        if args.seeded:
            runs.append(("hmce", "seeded", {}))
        if args.planner:
            runs.append(("hmce", "planned", {}))
        for kind, scenario, kw in runs:
            (work / f"{kind}-{scenario}").mkdir()
            r = run_site(kind, code_dir, args.seconds, work / f"{kind}-{scenario}", scenario, **kw)
            label = kind if scenario == "steady" else f"{kind}/{scenario}"
            print(f"{label:<6} {r['devices']:>7} {r['startup_s']:>10.2f}s {r['rss_median']:>6.1f} MiB "
                  f"{r['rss_max']:>4.1f} MiB {r['cpu_pct']:>5.2f}% {r['cpu_s_per_min']:>9.3f} {r['window_s']:>6.0f}s "
                  f"{r['devices_polled']:>6}", flush=True)
            if scenario == "offline-week":
                print(f"       (a week of rows pending at start, {r['backlog']} after; cloud and broker away, real "
                      "time)", flush=True)
            elif scenario == "offline":
                print(f"       (clock speed {kw['speed']:g}: {args.seconds * kw['speed'] / 3600:.1f} simulated hours "
                      "offline; CPU figures of this row are at that speed)", flush=True)
            if scenario in ("planned", "seeded") or args.seconds >= 600:
                print(f"       (RSS {r['rss_window'][0]:.1f} MiB at the window's start, {r['rss_window'][1]:.1f} at "
                      f"its end; {r['plans_made']} plans made)", flush=True)
            if scenario.startswith("backlog"):
                print(f"       ({kw['backlog_days']:g} days of rows uploaded in {r['drain_s']:.0f} s, RSS peak "
                      f"{r['drain_peak']:.1f} MiB while uploading, its child processes' {r['child_peak']:.1f} MiB at "
                      "most; the row's RSS is after)", flush=True)
    finally:
        drop_database()
        if args.keep:
            print(f"scratch: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
