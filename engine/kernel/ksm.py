"""Run a page set through the live ksmd and read every counter.

The pages are mapped into child processes this module starts itself (one per process of the
manifest, or one), made ``MADV_MERGEABLE`` (THP off), and ksmd runs with fast settings:
``pages_to_scan`` larger than the page count, so one batch is exactly one full scan, and a
short sleep between batches. After each full scan the harness writes ``run=0``, which waits
for ksmd to finish its batch, so every snapshot is taken at a quiescent scan boundary; it
then reads the counters and writes ``run=1`` again. It stops when the counters have stayed the
same over two more full scans. Optional writes (copy-on-write breaks) follow, then the same
loop again. On the way out: the children are killed (by the PIDs started here), ``run=2``
unmerges everything, and every knob is restored (``advisor_mode`` first, ``max_page_sharing``
and ``merge_across_nodes`` after unmerging, ``run`` last).

``pages_scanned`` and ``pages_skipped`` are cumulative since boot in the kernel; they are
reported as the increase over this run.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

from ..errors import KernelUnavailable
from .safety import KernelSession

KSM = "/sys/kernel/mm/ksm"
# restore order: advisor_mode first (it resets pages_to_scan), run last
RESTORE_ORDER = ("advisor_mode", "advisor_max_cpu", "advisor_min_pages_to_scan", "advisor_max_pages_to_scan",
                 "advisor_target_scan_time", "pages_to_scan", "sleep_millisecs", "use_zero_pages", "smart_scan",
                 "stable_node_chains_prune_millisecs", "max_page_sharing", "merge_across_nodes", "run")
COUNTERS = ("pages_scanned", "pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
            "pages_skipped", "full_scans", "stable_node_chains", "stable_node_dups", "ksm_zero_pages",
            "general_profit")

CHILD = r"""
import ctypes, mmap, sys
path, n = sys.argv[1], int(sys.argv[2])
m = mmap.mmap(-1, n * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=mmap.PROT_READ | mmap.PROT_WRITE)
m.madvise(mmap.MADV_NOHUGEPAGE)
with open(path, 'rb') as f:
    m[:] = f.read()
m.madvise(mmap.MADV_MERGEABLE)
print('ready %d' % ctypes.addressof(ctypes.c_char.from_buffer(m)), flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd or cmd[0] == 'exit':
        break
    if cmd[0] == 'write':          # write <page> <offset> <hex bytes>
        i, off, data = int(cmd[1]), int(cmd[2]), bytes.fromhex(cmd[3])
        m[i * 4096 + off:i * 4096 + off + len(data)] = data
    elif cmd[0] == 'unmergeable':
        m.madvise(mmap.MADV_UNMERGEABLE)
    print('ok', flush=True)
"""


def ksm_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.isfile(f"{KSM}/run"):
        return "no KSM on this kernel (CONFIG_KSM)"
    if _read("run") != "0":
        return f"{KSM}/run is {_read('run')}, not 0: someone else is using KSM"
    others = _other_mergeable()
    if others:
        return f"other processes use KSM (pids {', '.join(map(str, others[:5]))})"
    return None


def _read(knob: str) -> str:
    with open(f"{KSM}/{knob}") as f:
        return f.read().strip()


def _other_mergeable(exclude=()) -> list[int]:
    out = []
    for p in glob.glob("/proc/[0-9]*/ksm_stat"):
        pid = int(p.split("/")[2])
        if pid in exclude:
            continue
        try:
            with open(p) as f:
                txt = f.read()
        except OSError:
            continue
        if "ksm_mergeable: yes" in txt or "ksm_merge_any: yes" in txt:
            out.append(pid)
    return out


def _knob_value(raw: str) -> str:
    if "[" in raw:                                   # "[none] scan-time" -> "none"
        return raw[raw.index("[") + 1:raw.index("]")]
    return raw


def read_ksm_stat(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/ksm_stat") as f:
        for line in f:
            k, _, v = line.partition(" ")
            k = k.rstrip(":")
            v = v.strip()
            if k in ("ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages", "ksm_process_profit"):
                out[k] = int(v)
    return out


class KernelKsm(KernelSession):
    """A session on the live ksmd with processes holding the page set. Context manager."""

    def __init__(self, groups, *, max_page_sharing: int = 256, use_zero_pages: bool = False,
                 smart_scan: int = 0, sleep_millisecs: int = 10, scan_timeout: float = 60.0):
        """``groups``: one list of 4 KiB pages (bytes-like) per process, in scan order."""
        self.groups = groups
        self.settings = {"max_page_sharing": max_page_sharing, "use_zero_pages": int(bool(use_zero_pages)),
                         "smart_scan": int(smart_scan), "merge_across_nodes": 1,
                         "pages_to_scan": max(100, sum(len(g) for g in groups) + 64),
                         "sleep_millisecs": sleep_millisecs}
        self.scan_timeout = scan_timeout
        #: full scans ksmd completed past the one each scan_once waited for (see scan_once)
        self.skipped_scans = 0
        self.children: list[subprocess.Popen] = []
        self._saved: dict[str, str] = {}
        self.what = f"kernel ksm ({KSM})"
        self._base = {}

    def _setup(self, stack: ExitStack) -> None:
        why = ksm_unavailable_reason()
        if why:
            raise KernelUnavailable(f"{KSM}: {why}")
        for k in RESTORE_ORDER:
            self._saved[k] = _knob_value(_read(k))
        stack.callback(self._teardown)
        self._write("run", "2")
        self._write("advisor_mode", "none")
        for k, v in self.settings.items():
            self._write(k, str(v))
        self._tmp = tempfile.mkdtemp(prefix="pagemerge-ksm-")
        for gi, pages in enumerate(self.groups):
            path = os.path.join(self._tmp, f"g{gi}.pages")
            with open(path, "wb") as f:
                for p in pages:
                    f.write(bytes(p))
            child = subprocess.Popen([sys.executable, "-S", "-c", CHILD, path, str(len(pages))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={"PATH": "/usr/bin:/bin"}, cwd="/", text=True)
            self.children.append(child)
            line = child.stdout.readline()
            if not line.startswith("ready"):
                raise KernelUnavailable(f"ksm child {gi} did not start: {child.stderr.read().strip()[:200]}")
        self._base = {k: int(_read(k)) for k in ("pages_scanned", "pages_skipped")}

    def _teardown(self) -> None:
        for c in self.children:           # only processes started here, by PID
            try:
                c.kill()
            except ProcessLookupError:
                pass
            c.wait()
        self.children = []
        try:
            self._write("run", "2")
        finally:
            for k in RESTORE_ORDER:
                if k in self._saved:
                    try:
                        self._write(k, self._saved[k])
                    except OSError:
                        pass
            if hasattr(self, "_tmp"):
                for f in glob.glob(os.path.join(self._tmp, "*")):
                    os.unlink(f)
                os.rmdir(self._tmp)

    @staticmethod
    def _write(knob: str, value: str) -> None:
        with open(f"{KSM}/{knob}", "w") as f:
            f.write(value)

    # -- scanning -------------------------------------------------------------------------------
    def counters(self) -> dict:
        c = {k: int(_read(k)) for k in COUNTERS}
        for k, v in self._base.items():
            c[k] -= v
        return c

    def ksm_stat(self) -> list[dict]:
        return [read_ksm_stat(c.pid) for c in self.children]

    def scan_once(self) -> int:
        """Let ksmd complete at least one more full scan, stop it at a batch boundary, and
        return the full_scans count."""
        start = int(_read("full_scans"))
        self._write("run", "1")
        deadline = time.monotonic() + self.scan_timeout
        while int(_read("full_scans")) == start:
            if time.monotonic() > deadline:
                raise KernelUnavailable(f"{KSM}: ksmd did not complete a scan in {self.scan_timeout:.0f} s")
            time.sleep(0.0005)
        self._write("run", "0")          # blocks until ksmd's current batch is done
        n = int(_read("full_scans"))
        # ksmd sleeps sleep_millisecs between batches (one batch is one full scan); a harness
        # kept off the CPU longer than that (a loaded machine) stops it a scan or more late,
        # so the snapshot series has a gap: counted here, and such a run is not a valid
        # observation (KsmScenario.run_kernel repeats it)
        self.skipped_scans += n - start - 1
        return n

    def run_until_converged(self, extra: int = 2, max_scans: int = 200) -> list[tuple[int, dict]]:
        """Scan until the counters are the same over ``extra`` more full scans; return the
        snapshots (full_scans, counters)."""
        from ..ksm import convergence_key
        snaps = []
        hist = []
        while len(snaps) < max_scans:
            n = self.scan_once()
            c = self.counters()
            snaps.append((n, c))
            hist.append(convergence_key(c, self.settings["smart_scan"]))
            if len(hist) > extra and all(h == hist[-1] for h in hist[-extra - 1:]):
                break
        return snaps

    def write(self, group: int, page: int, offset: int, data: bytes) -> None:
        c = self.children[group]
        c.stdin.write(f"write {page} {offset} {data.hex()}\n")
        c.stdin.flush()
        if c.stdout.readline().strip() != "ok":
            raise KernelUnavailable("ksm child did not acknowledge a write")
