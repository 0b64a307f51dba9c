"""Shared helpers for benchmarks: a real-memory page set, repeated to a target size."""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from engine.pages import PAGE_SIZE, PageSet

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def real_memory_pages(min_pages: int = 4000) -> tuple[PageSet, str]:
    """Several thousand pages of real process memory: captured live when root, else the default."""
    if os.geteuid() == 0:
        from engine.workloads.capture import capture_pids
        from tests.pagesets import start_workload_process, PY_WORKLOAD
        procs = [start_workload_process(PY_WORKLOAD) for _ in range(3)]
        try:
            d = tempfile.mkdtemp(prefix="pagemerge-bench-")
            out = os.path.join(d, "bench.pages")
            capture_pids([p.pid for p in procs], out)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        ps = PageSet.open(out)
        # the mapping stays valid after the files are gone: no captured memory is left behind
        import shutil
        shutil.rmtree(d)
        return ps, f"live capture of {len(procs)} processes ({len(ps)} pages)"
    from engine.pages import default_pages_path
    ps = PageSet.open(default_pages_path())
    return ps, f"embedded default ({len(ps)} pages; run as root for a live capture)"


def repeat_to(ps: PageSet, nbytes: int) -> np.ndarray:
    reps = max(1, -(-nbytes // ps.nbytes))
    return np.tile(ps.array, (reps, 1))[: max(len(ps), nbytes // PAGE_SIZE)]


def distinct_pages(ps: PageSet, nbytes: int) -> tuple[np.ndarray, int]:
    """The real pages repeated to ``nbytes`` with every page made distinct: page i that is not
    same-filled gets its 8-byte word ``i * 61 mod 512`` XORed with ``i + 1``, so no two stored
    pages are equal and a compression cache never hits; same-filled pages are left as they
    are (zram stores their fill word, uncompressed, cached or not). Returns the pages and how
    many are same-filled."""
    from engine.compress._lz4_kernel import same_filled
    arr = repeat_to(ps, nbytes)
    if arr.base is not None or not arr.flags.writeable:
        arr = arr.copy()
    flags = np.empty(arr.shape[0], np.uint8)
    fills = np.empty(arr.shape[0], np.uint64)
    same_filled(arr, flags, fills)
    rows = np.flatnonzero(flags == 0)
    words = arr.view(np.uint64)
    words[rows, (rows * 61) % 512] ^= (rows + 1).astype(np.uint64)
    return arr, int(flags.sum())


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (MiB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def kernel_zram_rate(arr: np.ndarray, rounds: int = 3, algo: str = "lz4"):
    """The live zram0's write rate (pages/s, best of ``rounds``) on these pages (backend
    ``algo``, 1 MiB O_DIRECT writes) and the kernel's stats of the last round; (None, None)
    without zram0."""
    import time
    from engine.kernel.zram0 import KernelZram, zram_unavailable_reason
    if zram_unavailable_reason():
        return None, None
    best, stats = None, None
    for _ in range(rounds):
        with KernelZram(arr.shape[0] * PAGE_SIZE, algo, io_pages=256) as k:
            t = time.perf_counter()
            k.write_pages(arr)
            dt = time.perf_counter() - t
            stats = k.stats()
        best = dt if best is None else min(best, dt)
    return arr.shape[0] / best, stats
