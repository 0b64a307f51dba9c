#!/usr/bin/env python3
"""zram write throughput: the model against the live zram0 on the same pages, same run, for each
of the kernel's three backends (lzo-rle, the default; lzo; lz4).

Takes several thousand pages of real process memory and builds two page sets of about 100 MiB:

* ``distinct``: the pages repeated, each page that is not same-filled made distinct by one
  changed 8-byte word, so no page is stored twice and the model's compression cache never
  hits (the kernel has no such cache). This is the case the target is measured on.
* ``repeated``: the pages repeated as they are (the cached case): the compiled path compresses
  every page as the kernel does; the Python reference path (``--reference``) reuses the
  compressed block of a page it has seen.

Each is stored through the engine's zram model and through the live zram0 (1 MiB O_DIRECT
writes) with the same compressor, rounds alternating between the two sides; it prints the best
pages/s of each side, the ratio model/kernel, whether every mm_stat/io_stat field agreed, the
load average, and the peak RSS beside the input size. Without root or zram0 it prints the
model's rates alone and says why the reference is missing.

    python3 benchmarks/zram_throughput.py [--mib 100] [--rounds 3] [--algo lz4 ...] [--reference]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from benchmarks.common import (current_rss_mib, distinct_pages, kernel_zram_rate, load_average,  # noqa: E402
                               peak_rss_mib, real_memory_pages, repeat_to)
from engine.compress import get_compressor  # noqa: E402
from engine.kernel.zram0 import zram_unavailable_reason  # noqa: E402
from engine.pages import PAGE_SIZE  # noqa: E402
from engine.scenario import diff_stats  # noqa: E402
from engine.zram import ZramDevice  # noqa: E402

ALGOS = ("lzo-rle", "lzo", "lz4")
TARGET = 1.0


def model_round(arr, algo: str, compiled: bool = True):
    """One timed store of ``arr`` (fresh device and compressor cache); (seconds, device)."""
    dev = ZramDevice(arr.shape[0] * PAGE_SIZE, algo)
    dev.compiled = compiled
    t = time.perf_counter()
    dev.write_pages(arr, io_pages=256)
    return time.perf_counter() - t, dev


def cpu_breakdown(arr, algo: str, kernel: bool):
    """Where the time goes, in CPU seconds (independent of how busy the machine is): the
    model's same-filled test + compression (summed over its worker threads), its compiled
    store loop, the rest (Python), and the kernel's write (this process's system + user time
    across its O_DIRECT writes, zram's compression included). One untimed round each."""
    import engine._zram_fast as F
    cpu = {"prepare": 0.0, "store": 0.0}
    saved = {name: getattr(F, name) for name in ("prepare_lz4", "prepare_lzo", "store_batch")}

    def timed(fn, key):
        def run(*args):
            t = time.thread_time()
            try:
                return fn(*args)
            finally:
                cpu[key] += time.thread_time() - t
        return run
    F.prepare_lz4 = timed(saved["prepare_lz4"], "prepare")
    F.prepare_lzo = timed(saved["prepare_lzo"], "prepare")
    F.store_batch = timed(saved["store_batch"], "store")
    try:
        c0 = time.process_time()
        model_round(arr, algo)
        total = time.process_time() - c0
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)
    cpu["python"] = max(0.0, total - cpu["prepare"] - cpu["store"])
    if kernel:
        t0 = os.times()
        kernel_zram_rate(arr, 1, algo)
        t1 = os.times()
        cpu["kernel"] = (t1.system - t0.system) + (t1.user - t0.user)
    return cpu


def measure(arr, algo: str, rounds: int, kernel: bool, reference: bool):
    """Best-of-``rounds`` pages/s of the model (compiled path), the kernel and, with
    ``reference``, the model's Python path; rounds alternate between the sides."""
    n = arr.shape[0]
    model_round(arr[:64], algo)                                   # compile outside the timing
    best = {"model": None, "kernel": None, "python": None}
    dev = kstats = pdev = None
    for _ in range(rounds):
        dt, dev = model_round(arr, algo)
        best["model"] = dt if best["model"] is None else min(best["model"], dt)
        if kernel:
            krate, kstats = kernel_zram_rate(arr, 1, algo)
            dt = n / krate
            best["kernel"] = dt if best["kernel"] is None else min(best["kernel"], dt)
        if reference:
            dt, pdev = model_round(arr, algo, compiled=False)
            best["python"] = dt if best["python"] is None else min(best["python"], dt)
    rates = {k: (n / v if v else None) for k, v in best.items()}
    return rates, dev, kstats, pdev


_RSS_CHILD = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from engine.pages import PageSet, PAGE_SIZE
from engine.zram import ZramDevice
ps = PageSet.open(sys.argv[2])
ZramDevice(64 * PAGE_SIZE, sys.argv[3]).write_pages(ps.array[:64])       # compile (cached on disk)
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))
try:                                    # restart the peak (VmHWM) after imports and compilation
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
base = status("VmRSS")
dev = ZramDevice(len(ps) * PAGE_SIZE, sys.argv[3])
dev.write_pages(ps, io_pages=256)
print(base, status("VmHWM"), dev.mm_stat()["mem_used_total"])
"""


def model_peak_rss(arr, algo: str):
    """Peak RSS of a fresh process that stores ``arr`` (memory-mapped from a file, as
    ``simulate`` reads a page set) through the model: (RSS before the store, peak RSS during
    it, the pool's ``mem_used_total``), MiB. The peak is restarted after imports and
    compilation (``/proc/self/clear_refs``), so it is the store's."""
    import subprocess
    import tempfile
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with tempfile.TemporaryDirectory(prefix="pagemerge-rss-") as d:
        path = os.path.join(d, "input.pages")
        with open(path, "wb") as f:
            f.write(memoryview(arr).cast("B"))
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD, root, path, algo], capture_output=True, text=True,
                             timeout=600, check=True).stdout.split()
    base, peak, pool = (int(x) for x in out[-3:])
    return base / 1024, peak / 1024, pool / (1 << 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="best of N for each side")
    ap.add_argument("--algo", action="append", choices=ALGOS, help="backend(s) to measure (default: all three)")
    ap.add_argument("--case", action="append", choices=("distinct", "repeated"),
                    help="page set(s) to measure (default: both)")
    ap.add_argument("--reference", action="store_true",
                    help="also time the model's Python path (with its compression cache)")
    ap.add_argument("--no-rss", dest="rss", action="store_false",
                    help="skip the peak-RSS run in a fresh process (print this process's peak instead)")
    a = ap.parse_args()
    ps, what = real_memory_pages()
    cases = a.case or ["distinct", "repeated"]
    sets = {}
    if "distinct" in cases:
        arr, nsame = distinct_pages(ps, a.mib << 20)
        sets["distinct"] = arr
        print(f"distinct: {what}, repeated to {arr.shape[0]} pages ({arr.shape[0] * PAGE_SIZE >> 20} MiB), "
              f"one 8-byte word changed per page ({nsame} same-filled pages left as they are)")
    if "repeated" in cases:
        arr = repeat_to(ps, a.mib << 20)
        sets["repeated"] = arr
        print(f"repeated: {what}, repeated to {arr.shape[0]} pages ({arr.shape[0] * PAGE_SIZE >> 20} MiB)")
    why = zram_unavailable_reason()
    print(f"1 MiB requests; load average before: {load_average()}; {os.cpu_count()} CPUs")
    rows = []
    for case, arr in sets.items():
        n = arr.shape[0]
        for algo in a.algo or ALGOS:
            name = get_compressor(algo).name
            rss0 = current_rss_mib()
            rates, dev, kstats, pdev = measure(arr, algo, a.rounds, not why, a.reference)
            mm = dev.mm_stat()
            mrate, krate, prate = rates["model"], rates["kernel"], rates["python"]
            print(f"{case:<9}{algo:<8} model  : {mrate:12,.0f} pages/s  (compressed {dev.comp.compressions} pages; "
                  f"compr_data_size {mm['compr_data_size']:,}, ratio {mm['orig_data_size'] / max(1, mm['compr_data_size']):.2f}; "
                  f"pool {mm['mem_used_total'] >> 20} MiB)")
            if prate:
                print(f"{case:<9}{algo:<8} python : {prate:12,.0f} pages/s  (the reference path; compression cache hits "
                      f"{pdev.comp.cache.hits}); same counters: {pdev.stats().to_dict() == dev.stats().to_dict()}")
            if a.rss:
                base, peak, pool = model_peak_rss(arr, algo)
                print(f"{case:<9}{algo:<8} memory : input {n * PAGE_SIZE >> 20} MiB, peak RSS {peak:,.0f} MiB "
                      f"(a fresh process storing it, memory-mapped: {base:,.0f} MiB before the store, after imports; "
                      f"pool mem_used_total {pool:,.0f} MiB)")
            else:
                print(f"{case:<9}{algo:<8} memory : input {n * PAGE_SIZE >> 20} MiB, peak RSS "
                      f"{peak_rss_mib():,.0f} MiB (this process; {rss0:,.0f} MiB before this measurement)")
            cpu = cpu_breakdown(arr, algo, not why)
            us = {k: v * 1e6 / n for k, v in cpu.items()}
            print(f"{case:<9}{algo:<8} cpu    : model {sum(v for k, v in us.items() if k != 'kernel'):.1f} us/page "
                  f"(same-filled test + compression {us['prepare']:.1f}, compiled store {us['store']:.1f}, Python "
                  f"{us['python']:.1f})" + (f"; kernel {us['kernel']:.1f} us/page (write syscalls, incl. its "
                                             f"compression and the harness's setup)" if 'kernel' in us else ""))
            if krate is None:
                print(f"{case:<9}{algo:<8} kernel : not measured ({why})")
                rows.append((case, algo, name, mrate, None, None))
                continue
            d = diff_stats(dev.stats(), kstats)
            print(f"{case:<9}{algo:<8} kernel : {krate:12,.0f} pages/s  ({n / krate:.2f} s)")
            print(f"{case:<9}{algo:<8} ratio model/kernel: {mrate / krate:.2f}  (target >= {TARGET:.2f} on distinct "
                  f"pages); counters: " + ("all mm_stat/io_stat fields equal" if not d else f"DIFFER: {d}"))
            rows.append((case, algo, name, mrate, krate, not d))
    print()
    print(f"load average after: {load_average()}; peak RSS {peak_rss_mib():,.0f} MiB")
    print(f"{'pages':<9} {'comp_algorithm':<15} {'model':<15} {'model pages/s':>14} {'kernel pages/s':>15} "
          f"{'ratio':>6}  counters")
    for case, algo, name, mrate, krate, same in rows:
        k = f"{krate:15,.0f}" if krate else f"{'-':>15}"
        r = f"{mrate / krate:6.2f}" if krate else f"{'-':>6}"
        c = "-" if same is None else ("equal" if same else "DIFFER")
        print(f"{case:<9} {algo:<15} {name:<15} {mrate:14,.0f} {k} {r}  {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
