"""What answering `/status` costs the daemon's RSS: the HMCE daemon asked `--calls` times, baseline and working
tree alternately.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_status_warmup.py --baseline DIR [--calls 300] [--rounds 2]

DIR is another checkout (`git worktree add DIR REV`). Each run starts the footprint bench's HMCE site
(bench_footprint.py) on the simulator in real time, waits for the first poll and `--settle` seconds, then
asks `/status` every 0.2 s, sampling VmRSS every 50 calls and once more `--settle` seconds after the last.
The web page asks every few seconds for as long as it is open, so growth that does not level off is paid
for good. The figure is the growth from the first sample; the ratio is the working tree's growth over
the baseline's, from the medians of the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_footprint, the sibling below

import bench_footprint as fp

ROOT = Path(__file__).resolve().parent.parent


def run(code: Path, calls: int, settle_s: float) -> list[tuple[str, float]]:
    """(label, VmRSS MiB) samples of one daemon of `code` while it answers `calls` status requests."""
    work = Path(tempfile.mkdtemp(prefix="status-warmup-"))
    site_file, doc = fp.write_site("hmce", work, "steady")
    env = fp.code_env(code)
    sim, sim_log = fp.start_simulator(code, site_file, doc, work / "simulator.log", env)
    daemon_log = open(work / "daemon.log", "wb")  # noqa: SIM115 - closed with the process below
    daemon = subprocess.Popen([sys.executable, "-m", "controller", "run", "--site", str(site_file)],
                              cwd=code, env=env, stdout=daemon_log, stderr=subprocess.STDOUT)
    admin = doc["ops"]["admin"]["port"]
    try:
        deadline = time.monotonic() + 120
        while not fp.first_poll(admin):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not poll; see {work / 'daemon.log'}")
            time.sleep(0.05)
        time.sleep(settle_s)
        samples = [("0", fp.rss_mib(daemon.pid))]
        for i in range(1, calls + 1):
            fp.status(admin)
            time.sleep(0.2)
            if i % 50 == 0:
                samples.append((str(i), fp.rss_mib(daemon.pid)))
        time.sleep(settle_s)
        samples.append((f"+{settle_s:.0f}s", fp.rss_mib(daemon.pid)))
        return samples
    finally:
        fp.stop(daemon)
        fp.stop(sim)
        sim_log.close()
        daemon_log.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, required=True, help="the checkout to compare with")
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2, help="baseline and working tree alternately, this often")
    p.add_argument("--settle", type=float, default=30.0, help="seconds before the first and after the last call")
    args = p.parse_args()
    growth: dict[str, list[float]] = {"baseline": [], "tree": []}
    try:
        for _ in range(args.rounds):
            for name, code in (("baseline", args.baseline.resolve()), ("tree", ROOT)):
                samples = run(code, args.calls, args.settle)
                growth[name].append(samples[-1][1] - samples[0][1])
                print(f"{name:8} " + " ".join(f"{label}:{mib:.2f}" for label, mib in samples)
                      + f"   growth {growth[name][-1]:+.2f} MiB", flush=True)
    finally:
        fp.drop_database()  # the cloud stand-in's, which every run's simulator shared
    base, tree = statistics.median(growth["baseline"]), statistics.median(growth["tree"])
    print(f"median growth over {args.calls} calls: baseline {base:+.2f} MiB, tree {tree:+.2f} MiB, "
          f"x{tree / base:.2f}" if base > 0 else f"median growth: baseline {base:+.2f}, tree {tree:+.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
