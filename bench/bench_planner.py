"""Planner: solve time, the re-plan through the child process, and what the planner costs the daemon's memory.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_planner.py [--n 1000] [--replans 200]

1. Build + solve + read back a 48 h x 30 min plan (96 periods, 1,152 columns) on `--n` random but realistic
   inputs (prices -5..60 p/kWh with an evening peak, load -150..300 kW, any start SoE, an Axle window in a
   third of them), in-process. Baseline in the same run, interleaved: HiGHS alone on the same, already-built LP.
   Goal: build+solve p99 <= 20 ms.
2. The whole re-plan as the daemon does it: inputs to JSON, the warm child process, the plan back
   (`PlannerProcess.plan`), `--replans` times, and the child's cold start once. Baseline: the in-process
   plan of the same inputs. Goal: <= 1 s.
3. RSS (VmRSS) of a fresh interpreter after importing the daemon's code (`controller.wiring`, the site
   model, every mode) without and with the planner's daemon-side modules and one plan through the child;
   and, for scale, after importing highspy in-process (what solving in the daemon would cost).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.planner_cases import N_PERIODS, random_inputs
from controller.core.logs import configure_logging
from controller.planner.model import build_lp, read_plan
from controller.planner.runner import PlannerProcess
from controller.planner.solver import Solver

ROOT = Path(__file__).resolve().parent.parent


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def line(name: str, samples: list[float], unit: str = "ms") -> str:
    return (f"{name}: n={len(samples)} p50={statistics.median(samples):.2f}{unit} p99={pct(samples, 0.99):.2f}{unit} "
            f"max={max(samples):.2f}{unit}")


RSS_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
def rss():
    for ln in open('/proc/self/status'):
        if ln.startswith('VmRSS:'):
            return int(ln.split()[1]) / 1024
import controller.wiring, controller.config.site, modes.catalog, controller.commands.run
mode = {mode!r}
if mode in ('planner', 'planner-replan'):
    import controller.planner.runner, controller.planner.inputs, controller.planner.persistence
    import controller.planner.model
if mode == 'planner-replan':
    import random
    from bench.planner_cases import random_inputs
    from controller.planner.runner import PlannerProcess
    p = PlannerProcess()
    for i in range(20):
        p.plan(random_inputs(random.Random(i)), 10.0)
    child = int(open(f'/proc/{{p.pid}}/status').read().split('VmRSS:')[1].split()[0]) / 1024
    p.close()
else:
    child = None
if mode == 'highspy-in-process':
    import highspy, numpy
print(json.dumps({{'rss_mb': rss(), 'child_rss_mb': child,
                  'numpy': 'numpy' in sys.modules, 'highspy': 'highspy' in sys.modules}}))
"""


def rss(mode: str) -> dict[str, float | bool | None]:
    code = RSS_SCRIPT.format(root=str(ROOT), mode=mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, float | bool | None] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--replans", type=int, default=200)
    args = parser.parse_args()
    configure_logging("console", "warning", stream=sys.stderr)
    rng = random.Random(1)
    cases = [random_inputs(rng) for _ in range(args.n)]
    solver = Solver()
    for x in cases[:20]:  # warm up
        solver.plan(x)

    # Interleaved, so that both see the same load from the machine's other users.
    full, solve_only, breaches = [], [], 0
    lps = [build_lp(x) for x in cases]
    for x, prebuilt in zip(cases, lps, strict=True):
        t0 = time.perf_counter()
        lp = build_lp(x)
        values = solver.solve_lp(lp, 10.0)
        plan = read_plan(x, values)
        full.append((time.perf_counter() - t0) * 1000)
        breaches += plan.status == "breaches"
        t0 = time.perf_counter()
        solver.solve_lp(prebuilt, 10.0)
        solve_only.append((time.perf_counter() - t0) * 1000)
    print(f"plan size: {N_PERIODS} periods, {lps[0].num_col} columns, {lps[0].num_row}+ rows; "
          f"{breaches} of {len(cases)} plans name breaches")
    ok = "OK" if pct(full, 0.99) <= 20 else "MISSED"
    print(line("build+solve+read (in-process)", full) + f"  goal p99<=20ms {ok}")
    print(line("baseline: HiGHS alone on the built LP", solve_only)
          + f"  ratio p50 {statistics.median(full) / statistics.median(solve_only):.2f}")

    t0 = time.perf_counter()
    proc = PlannerProcess()
    proc.plan(cases[0], 30.0)
    cold = (time.perf_counter() - t0) * 1000
    replan, inproc = [], []
    for x in cases[: args.replans]:
        t0 = time.perf_counter()
        proc.plan(x, 10.0)
        replan.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        solver.plan(x)
        inproc.append((time.perf_counter() - t0) * 1000)
    proc.close()
    print(f"child process cold start + first plan: {cold:.0f}ms")
    print(line("re-plan through the warm child", replan)
          + f"  goal <=1000ms {'OK' if max(replan) <= 1000 and cold <= 1000 else 'MISSED'}")
    print(line("baseline: the same plans in-process", inproc)
          + f"  ratio p50 {statistics.median(replan) / statistics.median(inproc):.2f}")

    off, on, inproc_rss = rss("off"), rss("planner-replan"), rss("highspy-in-process")
    delta = float(on["rss_mb"] or 0) - float(off["rss_mb"] or 0)  # type: ignore[arg-type]
    print(f"RSS probe: planner off numpy={off['numpy']} highspy={off['highspy']}")
    print(f"daemon-side RSS: planner off {off['rss_mb']:.1f} MB, on (20 re-plans through the child) "
          f"{on['rss_mb']:.1f} MB: {delta:+.1f} MB, numpy loaded {on['numpy']}, highspy loaded {on['highspy']}; "
          f"the child itself {on['child_rss_mb']:.1f} MB")
    print(f"for scale: highspy+numpy imported in the daemon would make it {inproc_rss['rss_mb']:.1f} MB "
          f"(+{float(inproc_rss['rss_mb'] or 0) - float(off['rss_mb'] or 0):.1f} MB)")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
