"""Where the daemon's CPU goes, without a profiler: the same checkout on the HMCE site with one part left out
at a time, in one run.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_cpu_shares.py [--warm 40] [--seconds 120] [--code DIR]

cProfile inflates small, frequent calls (a heat meter's decode is 4.6 ms under it and 0.22 ms alone), so
its shares are a poor guide to what a cut would save. Here one simulator serves the whole footprint site
(bench_footprint.py, planner-free as in bench_loop_steps.py --without-plan-mode), and the daemon runs on
variants of its site file in turn. The full site runs first and last, so the difference between the two
shows the noise. A part's share is the full site's CPU less the variant's. The simulator still answers
for the parts left out; the daemon just does not use them.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, below
import bench_loop_steps as bl

ROOT = Path(__file__).resolve().parent.parent
Doc = dict[str, Any]


def _without_devices(kind: str) -> Callable[[Doc], None]:
    def drop(doc: Doc) -> None:
        doc["devices"] = [d for d in doc["devices"] if d["type"] != kind]
    return drop


def _without_axle(doc: Doc) -> None:
    doc["market"].pop("axle", None)
    doc["controller"]["modes"] = [m for m in doc["controller"]["modes"] if m["type"] != "axle"]


def _without_cloud(doc: Doc) -> None:
    doc["uploader"]["sinks"] = []


def _without_mqtt(doc: Doc) -> None:
    doc.pop("mqtt", None)


VARIANTS: list[tuple[str, Callable[[Doc], None] | None]] = [
    ("full", None),
    ("without the 54 Emlite meters", _without_devices("emlite")),
    ("without the 6 heat meters", _without_devices("heat_mbus")),
    ("without Axle", _without_axle),
    ("without the cloud sink", _without_cloud),
    ("without MQTT", _without_mqtt),
    ("full, again", None),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warm", type=float, default=40.0)
    p.add_argument("--seconds", type=float, default=120.0, help="measured window (whole minutes are best)")
    p.add_argument("--code", type=Path, default=ROOT, help="the checkout whose daemon is measured")
    args = p.parse_args()
    with bl.hmce_on_simulator(without_plan_mode=True) as (_, doc, work):
        results: list[tuple[str, float]] = []
        for name, change in VARIANTS:
            variant = copy.deepcopy(doc)
            if change is not None:
                change(variant)
            path = work / "variant.yaml"
            path.write_text(yaml.safe_dump(variant, sort_keys=False))
            r = bl.measure_plain(args.code.resolve(), path, doc["buffer"]["path"], work, args.warm, args.seconds)
            results.append((name, r["cpu_pct"]))
            print(f"{name:30} {r['window_s']:4.0f}s  CPU {r['cpu_pct']:.3f} %", flush=True)
        full = statistics.mean(cpu for name, cpu in results if name.startswith("full"))
        print(f"full site, mean of the two: {full:.3f} %")
        for name, cpu in results:
            if not name.startswith("full"):
                print(f"  {name:30} saves {full - cpu:+.3f} % ({100 * (full - cpu) / full:+.0f} % of the daemon)")


if __name__ == "__main__":
    main()
