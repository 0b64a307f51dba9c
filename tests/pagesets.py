"""Page sets the tests build themselves (synthetic, hand-made, and real process memory)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from engine.pages import PAGE_SIZE, PageSet

MIN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}


def text_pages(n: int, distinct: int = 1) -> PageSet:
    pages = []
    for i in range(n):
        k = i % distinct
        s = (f"The quick brown fox {k} jumps over the lazy dog. " * 100).encode()[:PAGE_SIZE]
        pages.append(s)
    return PageSet.from_pages(pages, "text")


def same_filled_pages() -> PageSet:
    words = [0, 0x0101010101010101, 0xDEADBEEFCAFEF00D, 0x00000000000000FF, 0xFFFFFFFFFFFFFFFF]
    pages = [w.to_bytes(8, "little") * 512 for w in words]
    pages += [bytes(PAGE_SIZE)] * 5
    return PageSet.from_pages(pages, "same-filled")


def random_pages(n: int, seed: int = 1) -> PageSet:
    rng = np.random.default_rng(seed)
    return PageSet.from_bytes(rng.integers(0, 256, n * PAGE_SIZE, dtype=np.uint8).tobytes(), "random")


def ladder_pages(lo: int = 3540, hi: int = 3720, step: int = 4, seed: int = 3) -> PageSet:
    """Random prefixes of growing length then a repeated filler: compressed lengths climb
    through the huge threshold (3625) a few bytes at a time."""
    rng = np.random.default_rng(seed)
    pages = []
    for k in range(lo, hi, step):
        head = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
        pages.append(head + b"\x00" * (PAGE_SIZE - k))
    return PageSet.from_pages(pages, "ladder")


def mixed_pages(seed: int = 5) -> PageSet:
    """A mix with duplicates, same-filled, compressible and incompressible pages."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(900):
        r = i % 9
        if r == 0:
            out.append(bytes(PAGE_SIZE))
        elif r in (1, 2):
            out.append(rng.integers(0, 256, PAGE_SIZE, dtype=np.uint8).tobytes())
        elif r == 3:
            out.append((b"%08d" % (i // 90)) * 512)
        else:
            k = int(rng.integers(16, 3000))
            out.append(rng.integers(0, 16, k, dtype=np.uint8).tobytes() + b"\x11" * (PAGE_SIZE - k))
    return PageSet.from_pages(out, "mixed")


PY_WORKLOAD = r"""
import collections, json, sys
d = {("k%d" % i): [i, str(i) * (i % 7)] for i in range(30000)}
s = json.dumps(d)
c = collections.Counter(s)
buf = bytearray(4096 * 200)
for i in range(0, len(buf), 4096):
    buf[i:i + 64] = bytes([i // 4096 % 256]) * 64
print("ready", flush=True)
sys.stdin.read()
"""


def start_workload_process(code: str = PY_WORKLOAD) -> subprocess.Popen:
    """A process the test starts itself, with a minimal environment (no user data, no secrets)."""
    # its own session: capture refuses members of its own process group
    p = subprocess.Popen([sys.executable, "-S", "-c", code], env=MIN_ENV, cwd="/", start_new_session=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert b"ready" in p.stdout.readline()
    return p


def real_process_pages(tmp_path) -> PageSet:
    from engine.workloads.capture import capture_pids
    p = start_workload_process()
    try:
        out = os.path.join(tmp_path, "real.pages")
        capture_pids([p.pid], out)
    finally:
        p.kill()
        p.wait()
    return PageSet.open(out)
