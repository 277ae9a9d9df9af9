"""glibc tuning of the daemon (controller.core.memory): large blocks stay out of the heap after a peak.

Observed in a fresh interpreter through its own /proc/self/smaps: after a large block is freed, glibc's
default raises the mmap threshold, and the next large blocks grow the heap; with `fix_mmap_threshold()` they
do not. The untuned run is the control that shows the observation can tell the two apart.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from controller.core.memory import _libc

PROBE = r"""
import sys
from controller.core.memory import fix_mmap_threshold

def heap_kib():
    size = 0
    for line in open("/proc/self/smaps"):
        if line.rstrip().endswith("[heap]"):
            a, b = line.split()[0].split("-")
            size = (int(b, 16) - int(a, 16)) // 1024
    return size

if sys.argv[1] == "tuned":
    assert fix_mmap_threshold()
peak = bytearray(4 << 20)  # a one-off large block (as a backlog batch's request body)
del peak
before = heap_kib()
held = [bytearray(256 << 10) for _ in range(40)]  # 10 MiB in blocks above the initial threshold
print(heap_kib() - before)
"""


@pytest.mark.skipif(sys.platform != "linux" or _libc() is None, reason="glibc only")
@pytest.mark.parametrize(("mode", "grows"), [("default", True), ("tuned", False)])
def test_large_blocks_after_a_peak_stay_out_of_the_heap(mode: str, grows: bool) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    growth_kib = int(out.stdout.strip())
    if grows:
        assert growth_kib >= 8 * 1024, growth_kib
    else:
        assert growth_kib < 1024, growth_kib
