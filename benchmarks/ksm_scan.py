#!/usr/bin/env python3
"""KSM scan rate: the model's ksmd against the live ksmd on the same pages, same run.

Real process memory (captured live when root, else the embedded default) is mapped into one
process. The live ksmd runs with sleep_millisecs=0 and pages_to_scan above the page count
(its raw scan rate) for a fixed time; the model runs the same number of full scans. Prints
pages scanned per second for each and the ratio model/kernel (target >= 0.25).

    python3 benchmarks/ksm_scan.py [--seconds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from benchmarks.common import real_memory_pages  # noqa: E402
from engine.scenario import KsmScenario  # noqa: E402


def kernel_rate(pages, seconds: float):
    from engine.kernel.ksm import KernelKsm, _read
    with KernelKsm([[pages.page(i) for i in range(len(pages))]], sleep_millisecs=0) as kk:
        s0, f0 = kk.counters()["pages_scanned"], int(_read("full_scans"))
        kk._write("run", "1")
        t = time.perf_counter()
        time.sleep(seconds)
        kk._write("run", "0")
        dt = time.perf_counter() - t
        c = kk.counters()
        return (c["pages_scanned"] - s0) / dt, int(_read("full_scans")) - f0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    ps, what = real_memory_pages()
    print(f"pages: {what}")
    from engine.kernel.ksm import ksm_unavailable_reason
    why = ksm_unavailable_reason()
    krate, kscans = (None, 20) if why else kernel_rate(ps, a.seconds)
    m, k, mms, _ = KsmScenario(ps).build_model()
    k.set_run(1)
    k.pages_to_scan = len(ps) + 64
    t = time.perf_counter()
    for _ in range(max(kscans, 3)):
        k.full_scan()
    dt = time.perf_counter() - t
    mrate = k.pages_scanned / dt
    print(f"model  : {mrate:12,.0f} pages/s  ({k.seqnr} full scans, {k.seqnr / dt:.1f} full scans/s)")
    if krate is None:
        print(f"kernel : not measured ({why})")
        return 0
    print(f"kernel : {krate:12,.0f} pages/s  ({kscans} full scans in {a.seconds:.1f} s, sleep_millisecs=0)")
    print(f"ratio model/kernel: {mrate / krate:.2f}  (target >= 0.25)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
