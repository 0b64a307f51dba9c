#!/usr/bin/env python3
"""zram write throughput: the model against the live zram0 on the same pages, same run.

Takes several thousand pages of real process memory, repeats them to about 100 MiB, stores
them through the engine's zram model and through the live zram0 (lz4, 1 MiB O_DIRECT writes)
and prints pages/s for each and the ratio model/kernel. Without root or zram0 it prints the
model's rate alone and says why the reference is missing.

    python3 benchmarks/zram_throughput.py [--mib 100]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from benchmarks.common import kernel_zram_rate, real_memory_pages, repeat_to  # noqa: E402
from engine.kernel.zram0 import zram_unavailable_reason  # noqa: E402
from engine.pages import PAGE_SIZE  # noqa: E402
from engine.scenario import diff_stats  # noqa: E402
from engine.zram import ZramDevice  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="best of N for each side")
    a = ap.parse_args()
    ps, what = real_memory_pages()
    arr = repeat_to(ps, a.mib << 20)
    n = arr.shape[0]
    print(f"pages: {what}, repeated to {n} pages ({n * PAGE_SIZE >> 20} MiB)")
    ZramDevice(PAGE_SIZE * 16).write_pages(arr[:16])          # compile outside the timing

    best_model = None
    for _ in range(a.rounds):
        dev = ZramDevice(n * PAGE_SIZE)                        # fresh device and compressor cache
        t = time.perf_counter()
        dev.write_pages(arr)
        dt = time.perf_counter() - t
        best_model = dt if best_model is None else min(best_model, dt)
    model_rate = n / best_model
    print(f"model  : {model_rate:12,.0f} pages/s  ({best_model:.2f} s; compressed {dev.comp.compressions} "
          f"distinct pages, cache hits {dev.comp.cache.hits})")

    kernel_rate, kstats = kernel_zram_rate(arr, a.rounds)
    if kernel_rate is None:
        print(f"kernel : not measured ({zram_unavailable_reason()})")
        return 0
    print(f"kernel : {kernel_rate:12,.0f} pages/s  ({n / kernel_rate:.2f} s, lz4, 1 MiB O_DIRECT writes)")
    print(f"ratio model/kernel: {model_rate / kernel_rate:.2f}  (target >= 0.50)")
    d = diff_stats(dev.stats(), kstats)
    print("counters: " + ("all mm_stat/io_stat fields equal" if not d else f"DIFFER: {d}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
