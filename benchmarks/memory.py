#!/usr/bin/env python3
"""Peak memory of `pagemerge simulate zram` and `pagemerge simulate all` on real pages.

Each command runs in a fresh process, and its peak RSS (``/usr/bin/time``'s maximum resident
set size where that program exists, else the process's own ``VmHWM``) is printed beside the
input's size and beside what the model must hold, the zsmalloc pool (``mem_used_total``).
A 16-page run of each command comes first: it compiles and caches the engine's compiled code,
so no compilation is counted, and it gives the interpreter's own peak (the baseline).

The input is made the way ``benchmarks/common.py`` makes it: real process memory (captured
live when root, else the embedded default), repeated to ``--mib``; the first half has every
page that is not same-filled made distinct (one 8-byte word changed), the second half is the
pages repeated as they are. It is written a block at a time (the benchmark never holds it
whole), private (0600), in a temporary folder that is removed at the end. ``--pages FILE``
uses an existing page set instead.

Before them, the address-space model alone (``engine.mm``): the bytes one placed page costs
(page-table and frame-table rows), measured with ``tracemalloc`` while the input is placed into
one process (its pages are views of the file: none is read).

Targets (issue #13): simulate zram peaks at most 300 MB above its own mem_used_total;
simulate all on 1 GiB of real pages peaks at most 1.5 GB, and an 8 GiB page set runs; the
model costs at most 80 bytes per placed page.

    python3 benchmarks/memory.py [--mib 1024] [--pages FILE] [--only model|zram|all] [--mechanisms LIST]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from benchmarks.common import load_average, real_memory_pages  # noqa: E402
from engine.pages import PAGE_SIZE  # noqa: E402

MB = 1000 * 1000
MIB = 1 << 20
ZRAM_TARGET = 300 * MB          # above mem_used_total
MODEL_TARGET = 80               # bytes of address-space model per placed page
ALL_TARGET = 1500 * MB          # at 1 GiB of input
BLOCK_PAGES = 16384             # pages generated and written at a time (64 MiB)

_CLI = "import sys\nfrom pagemerge.cli import main\nsys.exit(main())\n"
_HWM = ("import json, sys\n"
        "from pagemerge.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "sys.stdout.flush()\n"
        "hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(json.dumps({'rc': rc, 'peak_kb': hwm}), file=sys.stderr)\n")


def write_real_pages(path: str, nbytes: int) -> str:
    """Real pages repeated to ``nbytes``: the first half made distinct, the second as they are."""
    ps, what = real_memory_pages()
    src = ps.array
    m = len(src)
    n = nbytes // PAGE_SIZE
    half = n // 2
    w = src.view(np.uint64)
    same = ~(w != w[:, :1]).any(axis=1)              # same-filled rows are left as they are
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        for start in range(0, n, BLOCK_PAGES):
            rows = np.arange(start, min(n, start + BLOCK_PAGES), dtype=np.int64)
            block = src[rows % m].copy()
            dist = rows[(rows < half) & ~same[rows % m]]
            bw = block.view(np.uint64)
            bw[dist - start, (dist * 61) % 512] ^= (dist + 1).astype(np.uint64)
            f.write(block.tobytes())
    return f"{what}, repeated to {n} pages ({nbytes / MIB:.0f} MiB): the first half made distinct"


def run_peak(args: list[str]) -> tuple[dict, int, float]:
    """``pagemerge ARGS --json`` in a fresh process: (its JSON output, peak RSS in bytes, seconds)."""
    t = time.perf_counter()
    timer = shutil.which("time", path="/usr/bin:/bin")
    if timer:
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
            p = subprocess.run([timer, "-f", "%M", "-o", tf.name, sys.executable, "-c", _CLI, *args, "--json"],
                               capture_output=True, text=True)
            peak_kb = int(tf.read().strip().splitlines()[-1])
        rc = p.returncode
    else:
        p = subprocess.run([sys.executable, "-c", _HWM, *args, "--json"], capture_output=True, text=True)
        tail = json.loads(p.stderr.strip().splitlines()[-1])
        rc, peak_kb = tail["rc"], tail["peak_kb"]
    dt = time.perf_counter() - t
    if rc != 0:
        raise SystemExit(f"pagemerge {' '.join(args)} failed ({rc}): {p.stderr[-2000:]}")
    return json.loads(p.stdout), peak_kb * 1024, dt


def model_bytes_per_page(path: str) -> tuple[float, float]:
    """Bytes of ``engine.mm`` state per page placed from the page set at ``path`` (traced
    allocations while placing it), and the seconds the placement took."""
    import gc
    import tracemalloc

    from engine.mm import Machine
    from engine.pages import PageSet
    with PageSet.open(path) as ps:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            t = time.perf_counter()
            m = Machine()
            m.place_pages(ps)
            dt = time.perf_counter() - t
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        n = len(ps)
        del m
        gc.collect()
    return (after - before) / n, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=1024, help="size of the generated input (default 1024)")
    ap.add_argument("--pages", metavar="FILE", help="an existing page set instead of generated pages")
    ap.add_argument("--only", choices=("model", "zram", "all"), help="measure one thing only")
    ap.add_argument("--mechanisms", metavar="LIST", help="simulate all --mechanisms (default: its own default)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pagemerge-membench-")
    try:
        tiny = os.path.join(tmp, "tiny.pages")
        write_real_pages(tiny, 16 * PAGE_SIZE)
        if a.pages:
            path, what = a.pages, a.pages
        else:
            path = os.path.join(tmp, "input.pages")
            what = write_real_pages(path, a.mib * MIB)
        size = os.path.getsize(path)
        print(f"input: {what}; {size / MB:,.0f} MB; load average {load_average()}")
        if not a.only or a.only == "model":
            per, dt = model_bytes_per_page(path)
            print(f"address-space model: {per:.1f} bytes per placed page (target <= {MODEL_TARGET}: "
                  f"{'met' if per <= MODEL_TARGET else 'NOT met'}); placing took {dt:.2f} s (traced)")
        mech = ["--mechanisms", a.mechanisms] if a.mechanisms else []
        commands = [("zram", ["simulate", "zram"]), ("all", ["simulate", "all", *mech])]
        for key, args in commands:
            if a.only and a.only != key:
                continue
            run_peak(args + [tiny])                                      # compile and cache first
            base = min(run_peak(args + [tiny])[1] for _ in range(2))     # the interpreter's own peak
            out, peak, dt = run_peak(args + [path])
            if key == "zram":
                pool = out["mm_stat"]["mem_used_total"]
                ok = peak <= pool + ZRAM_TARGET
                print(f"simulate zram: peak RSS {peak / MB:,.0f} MB = {peak / size:.2f} x input; "
                      f"mem_used_total {pool / MB:,.0f} MB; peak - mem_used_total {(peak - pool) / MB:,.0f} MB "
                      f"(target <= {ZRAM_TARGET / MB:.0f} MB: {'met' if ok else 'NOT met'}); "
                      f"baseline (16 pages) {base / MB:,.0f} MB; {dt:.0f} s")
            else:
                rows = out["mechanisms"]
                pools = {n: r["mm_stat"]["mem_used_total"] for n, r in rows.items() if r.get("mm_stat")}
                biggest = max(pools.values()) if pools else 0
                lost = [n for n, r in rows.items() if not r["verified_readback"]]
                at_1g = abs(size - (1 << 30)) <= PAGE_SIZE * 16
                print(f"simulate all ({len(rows)} mechanisms): peak RSS {peak / MB:,.0f} MB = {peak / size:.2f} x "
                      f"input; largest mem_used_total {biggest / MB:,.0f} MB; peak - that {(peak - biggest) / MB:,.0f}"
                      f" MB; baseline (16 pages) {base / MB:,.0f} MB; {dt:.0f} s; read-back "
                      f"{'ok' if not lost else 'FAILED under ' + ', '.join(lost)}")
                verdict = ("met" if peak <= ALL_TARGET else "NOT met") if at_1g else "not measured at this size"
                print(f"  target: <= 1.5 GB at 1 GiB of input ({verdict}), and an 8 GiB set runs; "
                      f"per mechanism mem_used_total (MB): " + ", ".join(f"{n} {v / MB:,.0f}" for n, v in pools.items()))
        print(f"load average after: {load_average()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
