#!/usr/bin/env python3
"""KSM scan rate: the model's ksmd against the live ksmd on the same pages, same run.

Real process memory (captured live when root, else the embedded default) is mapped into one
process. The live ksmd runs with sleep_millisecs=0 and pages_to_scan above the page count
(its raw scan rate) for a fixed time; the model runs the same number of full scans. Prints
pages scanned per second for each and the ratio model/kernel (issue #13's target: >= 0.75).
The model's compiled scan is compiled (or loaded from numba's cache) before it is timed, and
the counters it ends with are printed beside the Python path's on the same scans with
``--reference``.

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


def ksmd_cpu_seconds() -> float | None:
    """CPU time the ksmd kernel thread has used (utime + stime from /proc/PID/stat; read only)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                if f.read().strip() != "ksmd":
                    continue
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def kernel_rate(pages, seconds: float):
    from engine.kernel.ksm import KernelKsm, _read
    with KernelKsm([[pages.page(i) for i in range(len(pages))]], sleep_millisecs=0) as kk:
        s0, f0 = kk.counters()["pages_scanned"], int(_read("full_scans"))
        c0 = ksmd_cpu_seconds()
        kk._write("run", "1")
        t = time.perf_counter()
        time.sleep(seconds)
        kk._write("run", "0")
        dt = time.perf_counter() - t
        c1 = ksmd_cpu_seconds()
        c = kk.counters()
        scanned = c["pages_scanned"] - s0
        cpu = None if c0 is None or c1 is None or not scanned else (c1 - c0) / scanned
        return scanned / dt, int(_read("full_scans")) - f0, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--reference", action="store_true", help="also time the model's Python path")
    a = ap.parse_args()
    ps, what = real_memory_pages()
    print(f"pages: {what}")
    from engine.kernel.ksm import ksm_unavailable_reason
    why = ksm_unavailable_reason()
    krate, kscans, kcpu = (None, 20, None) if why else kernel_rate(ps, a.seconds)
    # compile (or load from the cache) outside the timing, as the kernel's ksmd is built already
    from engine.pages import PageSet
    KsmScenario(PageSet.from_pages([b"*" * 4096] * 4)).run_model()

    def model(compiled: bool):
        _m, k, _mms, _ = KsmScenario(ps).build_model()
        k.compiled = compiled
        k.set_run(1)
        k.pages_to_scan = len(ps) + 64
        t = time.perf_counter()
        c = time.process_time()
        for _ in range(max(kscans, 3)):
            k.full_scan()
        return k, time.perf_counter() - t, time.process_time() - c

    k, dt, cpu = model(True)
    mrate = k.pages_scanned / dt
    print(f"model  : {mrate:12,.0f} pages/s  ({k.seqnr} full scans, {k.seqnr / dt:.1f} full scans/s, "
          f"{cpu / k.pages_scanned * 1e6:.2f} us CPU a page)")
    if a.reference:
        r, rdt, rcpu = model(False)
        print(f"python : {r.pages_scanned / rdt:12,.0f} pages/s  ({rcpu / r.pages_scanned * 1e6:.2f} us CPU a page); "
              f"counters {'equal' if r.counters() == k.counters() else 'DIFFER'}")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    if krate is None:
        print(f"kernel : not measured ({why})")
        return 0
    kc = "" if kcpu is None else f", {kcpu * 1e6:.2f} us CPU a page (ksmd's utime+stime, 1/{os.sysconf('SC_CLK_TCK')} s ticks)"
    print(f"kernel : {krate:12,.0f} pages/s  ({kscans} full scans in {a.seconds:.1f} s, sleep_millisecs=0{kc})")
    print(f"ratio model/kernel: {mrate / krate:.2f}  (target >= 0.75)")
    if kcpu:
        print(f"CPU time a page, kernel/model: {kcpu / (cpu / k.pages_scanned):.2f}  "
              f"(ksmd runs at nice 5, so under load its wall-clock rate falls more than the model's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
