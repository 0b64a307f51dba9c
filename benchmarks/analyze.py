#!/usr/bin/env python3
"""`pagemerge analyze` on a 1 GiB page set: time and pages/s (the target is well under a minute).

The set is the seeded android-swap mix (262,144 pages), written to a temporary file and read
back memory-mapped, as a user's capture would be.

    python3 benchmarks/analyze.py [--mib 1024]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from engine.pages import PageSet  # noqa: E402
from engine.workloads.analyze import analyze  # noqa: E402
from engine.workloads.synthetic import write_mix  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=1024)
    a = ap.parse_args()
    n = a.mib * 256
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.pages")
        write_mix("android-swap", n, path, seed=1)
        analyze(PageSet.from_bytes(bytes(4096 * 64)))          # compile outside the timing
        t = time.perf_counter()
        prof = analyze(PageSet.open(path), progress=False)
        dt = time.perf_counter() - t
    print(f"analyze: {n} pages ({a.mib} MiB) in {dt:.1f} s = {n / dt:,.0f} pages/s "
          f"(distinct {prof['distinct_contents']}, duplicates {prof['duplicate_share']:.1%}); target: well under 60 s")


if __name__ == "__main__":
    main()
