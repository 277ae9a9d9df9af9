"""CPU of one `Outbox.add` as the daemon makes it: one commit per reading, most often one row.

At HMCE size the writer commits about 90 times a minute, most of them one Emlite reading each (the
meters' polls end spread over the minute). This bench commits `--commits` one-row batches (rows from
outbox_growth.minute_rows, in its order) into a fresh outbox with the daemon's settings, and prints the
process CPU (not wall time: the fsync wait is not CPU) per commit, for the baseline checkout and this one,
alternately, each in its own interpreter. The ratio is the tree's against the baseline's.

    PYTHONPATH=$PWD python bench/bench_outbox_add.py --baseline DIR   # DIR: e.g. `git worktree add DIR REV`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the measured checkout's interpreter (PYTHONPATH): one-row commits, CPU per commit in microseconds.
CHILD = r"""
import json, random, sys, tempfile, time
from datetime import UTC, datetime, timedelta
sys.path.insert(0, sys.argv[1])
import outbox_growth as og
from uploader.outbox import Outbox
commits, warm = int(sys.argv[2]), 50
rows, t, rng = [], datetime(2026, 6, 1, tzinfo=UTC), random.Random(16)
while len(rows) < commits + warm:
    rows += og.minute_rows(t, rng)
    t += timedelta(minutes=1)
with tempfile.TemporaryDirectory() as d:
    box = Outbox.open(d)  # the daemon's synchronous=full and 2 GiB bound
    box.register_sinks(["cloud"])
    for r in rows[:warm]:
        box.add([r])
    c0 = time.process_time()
    for r in rows[warm:warm + commits]:
        box.add([r])
    cpu = time.process_time() - c0
    box.close()
print(json.dumps({"us_per_commit": 1e6 * cpu / commits}))
"""


def measure(code: Path, commits: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "bench"), str(commits)], env=env, cwd=code,
                         capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout)["us_per_commit"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, required=True, help="checkout to compare with")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--commits", type=int, default=2000)
    args = p.parse_args()
    base: list[float] = []
    tree: list[float] = []
    for _ in range(args.rounds):
        base.append(measure(args.baseline.resolve(), args.commits))
        tree.append(measure(ROOT, args.commits))
        print(f"baseline {base[-1]:7.1f} us/commit   tree {tree[-1]:7.1f} us/commit", flush=True)
    b, t = statistics.median(base), statistics.median(tree)
    print(f"median of {args.rounds}: {t:.1f} vs {b:.1f} us of CPU per one-row commit (x{t / b:.2f})")


if __name__ == "__main__":
    main()
