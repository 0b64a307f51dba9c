"""Push page sets through the live ``/dev/zram0`` and read its counters.

:class:`KernelZram` has the same operations as the model's :class:`engine.zram.ZramDevice`
(``write_pages``, ``write_page``, ``read_page``, ``discard``, ``compact``, ``stats``), so one
scenario can run on both. Writes use ``O_DIRECT`` so pages reach zram in order, one request per
I/O of ``io_pages`` pages (runs of consecutive slots cut as :func:`engine.zram.io_spans` cuts
them; each request of up to 256 pages is one bio, and a page refused by ``mem_limit`` ends it
with EIO, the rest of the request unwritten); discards use ``BLKDISCARD`` on the same spans.
``comp_algorithm`` is set before ``disksize`` (the kernel's default is ``lzo-rle``).
"""
from __future__ import annotations

import fcntl
import mmap
import os
import struct
from contextlib import ExitStack

import numpy as np

from ..errors import KernelUnavailable
from ..pages import PAGE_SIZE, PageSet
from ..zram import ZramStats, io_spans, MAX_IO_PAGES
from .safety import KernelSession

BLKDISCARD = 0x1277
SYS = "/sys/block"
#: the largest write request (1 MiB, as the reference throughput figures use)
BATCH_PAGES = MAX_IO_PAGES


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def zram_unavailable_reason(device: str = "zram0") -> str | None:
    """Why the live zram device cannot be used here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root"
    sysdir = f"{SYS}/{device}"
    if not os.path.isdir(sysdir) or not os.path.exists(f"/dev/{device}"):
        return f"no {device} on this machine (modprobe zram)"
    dev = f"/dev/{device}"
    with open("/proc/swaps") as f:
        if any(line.split()[0] == dev for line in f.read().splitlines()[1:] if line.strip()):
            return f"{dev} is in use as swap"
    with open("/proc/mounts") as f:
        if any(line.split()[0] == dev for line in f if line.strip()):
            return f"{dev} is mounted"
    if os.listdir(f"{sysdir}/holders"):
        return f"{dev} has holders"
    if _read(f"{sysdir}/initstate") == "1":
        return f"{dev} is initialised by someone else (initstate 1); refusing to reset it"
    return None


def _whole_runs(indexes):
    """(position, first slot, count) for each run of consecutive ascending slots, uncut."""
    runs = []
    for pos, i in enumerate(indexes):
        if runs and runs[-1][1] + runs[-1][2] == i:
            runs[-1][2] += 1
        else:
            runs.append([pos, i, 1])
    return runs


class KernelZram(KernelSession):
    """A session on the live zram0. Use as a context manager; it resets zram0 on the way out."""

    def __init__(self, disksize: int, algo: str = "lzo-rle", mem_limit: int = 0, device: str = "zram0",
                 io_pages: int = 1):
        from ..compress import KERNEL_NAMES
        if not 1 <= io_pages <= MAX_IO_PAGES:
            raise ValueError(f"io_pages must be 1..{MAX_IO_PAGES}")
        self.io_pages = io_pages
        self.device = device
        self.sysdir = f"{SYS}/{device}"
        self.dev = f"/dev/{device}"
        self.disksize = disksize
        self.algo = KERNEL_NAMES.get(algo, algo)
        self.mem_limit = mem_limit
        self.what = f"kernel zram ({self.dev})"
        self._fd = -1
        self.default_algo = ""
        self._buf: mmap.mmap | None = None
        self._initialised = False

    # -- lifetime ---------------------------------------------------------------------------
    def _setup(self, stack: ExitStack) -> None:
        why = zram_unavailable_reason(self.device)
        if why:
            raise KernelUnavailable(f"{self.dev}: {why}")
        algos = _read(f"{self.sysdir}/comp_algorithm").replace("[", "").replace("]", "").split()
        if self.algo not in algos:
            raise KernelUnavailable(f"{self.dev}: the kernel has no {self.algo!r} backend "
                                    f"(it offers {', '.join(algos)})")
        stack.callback(self._teardown)
        self._write("reset", "1")
        self._initialised = True
        shown = _read(f"{self.sysdir}/comp_algorithm")
        #: the backend zram0 selects by itself after a reset (the kernel's default)
        self.default_algo = shown[shown.index("[") + 1:shown.index("]")] if "[" in shown else ""
        self._write("comp_algorithm", self.algo)
        shown = _read(f"{self.sysdir}/comp_algorithm")
        if f"[{self.algo}]" not in shown:
            raise KernelUnavailable(f"{self.dev}: comp_algorithm shows {shown!r} after selecting {self.algo!r}")
        self._write("disksize", str(self.disksize))
        if self.mem_limit:
            self._write("mem_limit", str(self.mem_limit))
        self._fd = os.open(self.dev, os.O_RDWR | os.O_DIRECT)
        self._buf = mmap.mmap(-1, BATCH_PAGES * PAGE_SIZE)   # page-aligned for O_DIRECT

    def _teardown(self) -> None:
        try:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._buf is not None:
                buf, self._buf = self._buf, None
                buf.close()
        finally:                               # the device is reset whatever else failed
            if self._initialised:
                self._write("reset", "1")
                self._initialised = False

    def _write(self, attr: str, value: str) -> None:
        with open(f"{self.sysdir}/{attr}", "w") as f:
            f.write(value)

    # -- operations (same names as the model) -----------------------------------------------
    def set_mem_limit(self, nbytes: int) -> None:
        self.mem_limit = nbytes
        self._write("mem_limit", str(nbytes))

    def write_page(self, index: int, page) -> bool:
        self._buf[:PAGE_SIZE] = bytes(page)
        try:
            os.pwrite(self._fd, memoryview(self._buf)[:PAGE_SIZE], index * PAGE_SIZE)
        except OSError:
            return False
        return True

    def write_pages(self, pages: PageSet | np.ndarray, indexes=None, progress=None,
                    io_pages: int | None = None) -> int:
        """Write page i to slot ``indexes[i]`` (default i), one O_DIRECT request per I/O of
        ``io_pages`` pages (default: the session's). Returns the requests that failed (EIO:
        a page refused by ``mem_limit``; the kernel's own count is ``io_stat``)."""
        arr = pages.array if isinstance(pages, PageSet) else pages
        n = arr.shape[0]
        if indexes is None:
            indexes = range(n)
        failed = 0
        mv = memoryview(self._buf)
        try:
            for pos, slot, cnt in io_spans(indexes, io_pages or self.io_pages):
                mv[:cnt * PAGE_SIZE] = arr[pos:pos + cnt].reshape(-1)
                try:
                    os.pwrite(self._fd, mv[:cnt * PAGE_SIZE], slot * PAGE_SIZE)
                except OSError:
                    failed += 1
                if progress is not None:
                    progress.update(cnt)
        finally:
            mv.release()
        return failed

    def read_page(self, index: int) -> bytes:
        mv = memoryview(self._buf)[:PAGE_SIZE]
        n = os.preadv(self._fd, [mv], index * PAGE_SIZE)
        if n != PAGE_SIZE:
            raise OSError(f"{self.dev}: short read at slot {index}")
        return bytes(mv)

    def discard(self, indexes, io_pages: int | None = None) -> None:
        """BLKDISCARD per I/O: runs of consecutive slots, cut into ``io_pages`` pages when given."""
        indexes = list(indexes)
        for _pos, start, count in (io_spans(indexes, io_pages) if io_pages else _whole_runs(indexes)):
            fcntl.ioctl(self._fd, BLKDISCARD, struct.pack("QQ", start * PAGE_SIZE, count * PAGE_SIZE))

    def compact(self) -> None:
        self._write("compact", "1")

    def stats(self) -> ZramStats:
        return ZramStats.from_lines(_read(f"{self.sysdir}/mm_stat"), _read(f"{self.sysdir}/io_stat"), self.algo)
