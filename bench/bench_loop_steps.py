"""Event-loop work of the running daemon: loop iterations, callbacks and CPU per second, per checkout.

The footprint bench's HMCE site (bench_footprint.py: 1 PowerPack, 4 Acuvim II, 54 Emlite, 6 heat
meters) runs on the simulator in real time; the daemon of each checkout is started on it in turn, with
counters on `asyncio.Handle._run` and the selector's `select` (installed before the daemon's imports),
and measured over whole minutes of the Emlite cycle after a warm-up. The simulator is this checkout's
for both, so only the daemon differs. Ratios are the working tree's against the baseline's.

    PYTHONPATH=$PWD python bench/bench_loop_steps.py --baseline DIR   # DIR: e.g. `git worktree add DIR REV`
    ... --rounds 2 --seconds 240 --top 15
    ... --cpu-only --rounds 3    # no counters: the plain `flux-edge run`, its own CPU only (the probe costs some)

CPU differs between days on this shared VM by up to 2x for the same code, so a CPU figure is only
comparable with the baseline's of the same run: `--cpu-only` against the issue's own baseline commit
is how the footprint's CPU row is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_footprint as bf

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the measured daemon's interpreter: counts, then writes them to OUT after WARM + SECONDS.
PROBE = r"""
import asyncio.events, collections, json, os, selectors, sys, threading, time
counts, iterations = collections.Counter(), [0]
run = asyncio.events.Handle._run
def name(handle):
    cb = handle._callback
    task = getattr(cb, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro, chain = task.get_coro(), []
        while coro is not None:
            chain.append(getattr(coro, "__qualname__", type(coro).__name__))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return "step " + " > ".join(chain[-3:])
    return getattr(cb, "__qualname__", type(cb).__name__)
def counted(self):
    counts[name(self)] += 1
    return run(self)
asyncio.events.Handle._run = counted
select = selectors.EpollSelector.select
def counted_select(self, timeout=None):
    iterations[0] += 1
    return select(self, timeout)
selectors.EpollSelector.select = counted_select
def report():
    time.sleep(float(os.environ["PROBE_WARM"]))
    time.sleep(60 - (time.time() - 30) % 60)  # from hh:mm:30: whole minutes of the Emlite cycle
    counts.clear(); iterations[0] = 0
    t0, c0 = time.monotonic(), sum(os.times()[:2])
    time.sleep(float(os.environ["PROBE_SECONDS"]))
    dt, cpu = time.monotonic() - t0, sum(os.times()[:2]) - c0
    with open(os.environ["PROBE_OUT"], "w") as f:
        json.dump({"window_s": dt, "cpu_pct": 100 * cpu / dt, "iterations": iterations[0] / dt,
                   "callbacks": sum(counts.values()) / dt,
                   "top": [(k, v / dt) for k, v in counts.most_common(40)]}, f)
threading.Thread(target=report, daemon=True).start()
sys.argv = ["flux-edge", "run", "--site", os.environ["PROBE_SITE"]]
from controller import cli
cli.main()
"""


def measure_plain(code: Path, site: Path, outbox: str, work: Path, warm: float, seconds: float) -> dict[str, Any]:
    """CPU of the plain daemon (no counters in it) over `seconds`, `warm` seconds after it started."""
    shutil.rmtree(outbox, ignore_errors=True)
    env = bf.code_env(code)
    with open(work / "daemon.log", "wb") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "controller", "run", "--site", str(site)], cwd=code, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(warm)
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon stopped; see {work / 'daemon.log'}")
            cpu0, t0 = bf.cpu_s(daemon.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, t1 = bf.cpu_s(daemon.pid), time.monotonic()
            return {"window_s": t1 - t0, "cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0)}
        finally:
            bf.stop(daemon)


def measure(code: Path, site: Path, outbox: str, work: Path, warm: float, seconds: float) -> dict[str, Any]:
    shutil.rmtree(outbox, ignore_errors=True)  # each run from an empty outbox
    out = work / "probe.json"
    out.unlink(missing_ok=True)
    env = bf.code_env(code, PROBE_SITE=str(site), PROBE_OUT=str(out), PROBE_WARM=str(warm), PROBE_SECONDS=str(seconds))
    with open(work / "daemon.log", "wb") as log:
        daemon = subprocess.Popen([sys.executable, "-c", PROBE], cwd=code, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + warm + seconds + 120
            while not out.exists():
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the daemon gave no figures; see {work / 'daemon.log'}")
                time.sleep(1.0)
            time.sleep(0.5)
            return dict(json.loads(out.read_text()))
        finally:
            bf.stop(daemon)


@contextlib.contextmanager
def hmce_on_simulator(*, without_plan_mode: bool) -> Iterator[tuple[Path, dict[str, Any], Path]]:
    """The footprint bench's HMCE site served by this checkout's simulator: (site file, its document, scratch
    directory), all gone afterwards."""
    work = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    site, doc = bf.write_site("hmce", work)
    if without_plan_mode:
        doc["controller"]["modes"] = [m for m in doc["controller"]["modes"] if m["type"] != "plan"]
        site.write_text(yaml.safe_dump(doc, sort_keys=False))
    sim, sim_log = bf.start_simulator(ROOT, site, doc, work / "simulator.log")
    try:
        yield site, doc, work
    finally:
        bf.stop(sim)
        sim_log.close()
        bf.drop_database()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, required=True, help="the checkout to compare with")
    p.add_argument("--rounds", type=int, default=1, help="baseline and working tree alternately, this often")
    p.add_argument("--warm", type=float, default=40.0)
    p.add_argument("--seconds", type=float, default=120.0, help="measured window (whole minutes are best)")
    p.add_argument("--top", type=int, default=12, help="callbacks listed per run")
    p.add_argument("--cpu-only", action="store_true", help="the plain daemon, CPU only (no loop counters)")
    p.add_argument("--without-plan-mode", action="store_true",
                   help="leave the plan mode out of the site (a baseline older than the planner refuses it; without "
                        "a planner block it decides nothing)")
    args = p.parse_args()
    with hmce_on_simulator(without_plan_mode=args.without_plan_mode) as (site, doc, work):
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "tree": []}
        for _ in range(args.rounds):
            for label, code in (("baseline", args.baseline.resolve()), ("tree", ROOT)):
                if args.cpu_only:
                    r = measure_plain(code, site, doc["buffer"]["path"], work, args.warm, args.seconds)
                    runs[label].append(r)
                    print(f"{label:8} {r['window_s']:4.0f}s  CPU {r['cpu_pct']:.3f} %", flush=True)
                    continue
                r = measure(code, site, doc["buffer"]["path"], work, args.warm, args.seconds)
                runs[label].append(r)
                print(f"{label:8} {r['window_s']:4.0f}s  loop iterations {r['iterations']:6.1f}/s  "
                      f"callbacks {r['callbacks']:6.1f}/s  CPU {r['cpu_pct']:.3f} %", flush=True)
                for k, v in r["top"][:args.top]:
                    print(f"           {v:6.2f}/s  {k[:110]}")
        if args.cpu_only:
            b_cpu, t_cpu = (statistics.median(r["cpu_pct"] for r in runs[k]) for k in ("baseline", "tree"))
            print(f"median of {args.rounds}: CPU {t_cpu:.3f} vs {b_cpu:.3f} % (x{t_cpu / b_cpu:.2f})")
            return
        mean = {label: {k: sum(r[k] for r in rs) / len(rs) for k in ("iterations", "callbacks", "cpu_pct")}
                for label, rs in runs.items()}
        b, t = mean["baseline"], mean["tree"]
        print(f"mean of {args.rounds}: loop iterations {t['iterations']:.1f} vs {b['iterations']:.1f}/s "
              f"(x{t['iterations'] / b['iterations']:.2f}), callbacks {t['callbacks']:.1f} vs {b['callbacks']:.1f}/s "
              f"(x{t['callbacks'] / b['callbacks']:.2f}), CPU {t['cpu_pct']:.3f} vs {b['cpu_pct']:.3f} % "
              f"(x{t['cpu_pct'] / b['cpu_pct']:.2f})")


if __name__ == "__main__":
    main()
