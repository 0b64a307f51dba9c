"""One zram scenario, run on the model or on the live kernel with identical operations.

The order is fixed and documented (it is the CLI's contract): store every page of the page set
into slots 0..n-1; discard ``discard``; overwrite slot ``overwrite[k]`` with page
``k mod len(overwrite_with)`` of the overwrite file; compact. ``mem_limit`` is set before the
first store. ``algo`` is the compressor (default the kernel's default, ``lzo-rle``);
``io_pages`` is the number of pages per write and discard request (runs of consecutive slots
cut into pieces of that size): a page refused by ``mem_limit`` ends its request, and the rest
of that request is not stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError, PagemergeError
from .compress import DEFAULT_COMPRESSOR
from .pages import PAGE_SIZE, PageSet
from .zram import MAX_IO_PAGES, ZramDevice, ZramStats, io_spans

#: pages per streamed write of a scenario (32 MiB of input resident at a time)
STREAM_PAGES = 8192


@dataclass
class ZramScenario:
    pages: PageSet
    algo: str = DEFAULT_COMPRESSOR
    discard: list[int] = field(default_factory=list)
    overwrite: list[int] = field(default_factory=list)
    overwrite_with: PageSet | None = None
    compact: bool = False
    mem_limit: int = 0
    io_pages: int = 1

    def __post_init__(self):
        from .errors import InputError
        if self.overwrite and self.overwrite_with is None:
            raise InputError("--overwrite needs --overwrite-with FILE (the pages to write)")
        if not isinstance(self.io_pages, int) or not 1 <= self.io_pages <= MAX_IO_PAGES:
            raise InputError(f"--io-pages: must be 1..{MAX_IO_PAGES} (pages per request; a direct "
                             f"write of up to {MAX_IO_PAGES} pages is one bio), got {self.io_pages}")

    @property
    def comp_algorithm(self) -> str:
        """The kernel's name of the scenario's compressor (``lzo-rle``, ``lzo``, ``lz4``)."""
        from .compress import get_compressor
        return get_compressor(self.algo).kernel_name

    @property
    def disksize(self) -> int:
        top = len(self.pages)
        for lst in (self.discard, self.overwrite):
            if lst:
                top = max(top, max(lst) + 1)
        return top * PAGE_SIZE

    def _chunk_pages(self) -> int:
        """Pages per streamed write: about :data:`STREAM_PAGES`, a whole number of I/Os, so
        every request is the one a single write of the whole set would have made."""
        return max(self.io_pages, STREAM_PAGES - STREAM_PAGES % self.io_pages)

    def _overwrite_pieces(self):
        """The overwrite, streamed: ``(positions, rows)`` pieces of about :data:`STREAM_PAGES`
        pages, cut only where an I/O starts (``io_spans``), so the requests are those of one
        write of the whole list; each piece's rows are gathered from the overwrite file, and
        that file's pages are released once the piece is written."""
        ow = self.overwrite_with
        m = len(ow)
        n = len(self.overwrite)
        cuts = [0]
        for pos, _slot, _cnt in io_spans(self.overwrite, self.io_pages):
            if pos - cuts[-1] >= STREAM_PAGES:
                cuts.append(pos)
        cuts.append(n)
        for a, b in zip(cuts, cuts[1:]):
            if b > a:
                rows = np.arange(a, b, dtype=np.int64) % m
                yield self.overwrite[a:b], ow.array[rows]
                ow.release()

    def apply(self, target, progress: bool | None = False) -> ZramStats:
        """Run the operations on ``target`` (a ZramDevice or a KernelZram) and return its stats.
        ``progress``: a tqdm bar for the stores (None: only on a terminal).

        The page set is streamed: it is written a chunk at a time (a whole number of I/Os,
        so the requests are exactly those of one write of every page), and each chunk of a
        memory-mapped file is released from memory once it is stored (``PageSet.chunks``), so
        the input never stays resident as a whole."""
        from tqdm.auto import tqdm
        with tqdm(total=len(self.pages), unit="page", desc="store", leave=False,
                  disable=None if progress is None else not progress) as bar:
            for first, chunk in self.pages.chunks(self._chunk_pages()):
                target.write_pages(chunk, indexes=range(first, first + chunk.shape[0]), progress=bar,
                                   io_pages=self.io_pages)
        if self.discard:
            target.discard(self.discard, io_pages=self.io_pages)
        if self.overwrite:
            for indexes, rows in self._overwrite_pieces():
                target.write_pages(rows, indexes=indexes, io_pages=self.io_pages)
        if self.compact:
            target.compact()
        return target.stats()

    def model(self, bus=None) -> ZramDevice:
        return ZramDevice(self.disksize, self.algo, mem_limit=self.mem_limit, bus=bus)

    def run_model(self, bus=None, progress: bool | None = False) -> ZramStats:
        return self.apply(self.model(bus), progress)

    def run_kernel(self, progress: bool | None = False) -> ZramStats:
        from .kernel.zram0 import KernelZram
        with KernelZram(self.disksize, self.comp_algorithm, mem_limit=self.mem_limit, io_pages=self.io_pages) as k:
            return self.apply(k, progress)


def diff_stats(a: ZramStats, b: ZramStats) -> list[tuple[str, str, int, int]]:
    """Fields that differ: (group, field, a, b)."""
    out = []
    for group in ("mm_stat", "io_stat"):
        da, db = getattr(a, group), getattr(b, group)
        for k in da:
            if da[k] != db.get(k):
                out.append((group, k, da[k], db.get(k)))
    return out


# ---- KSM -------------------------------------------------------------------------------------
#: the latest full scan a trace write may name
MAX_TRACE_SCAN = 10_000
#: full scans allowed for ksmd to settle after the last write (or after the start); a run that
#: has not converged by then ends with an error instead of scanning on
CONVERGE_SCANS = 1_000


class TraceWrite(tuple):
    """One write of a KSM trace, ``(after_scan, page, offset, bytes)``, that remembers the
    trace line it came from (``line``; None when not read from a file)."""

    def __new__(cls, write, line: int | None = None):
        t = super().__new__(cls, write)
        t.line = line
        return t


def cow_bytes(index: int) -> bytes:
    """What a ``--cow`` write puts in the first 8 bytes of page ``index``: unique per page."""
    return (index | (1 << 63)).to_bytes(8, "little")


@dataclass
class KsmScenario:
    """A page set in one or more processes, made mergeable, scanned by ksmd to convergence;
    optional writes over time (``trace``: after full scan N, write bytes into a page), optional
    copy-on-write writes after convergence (``cow``: page indexes), then scanned to
    convergence again.

    Processes come from the manifest (first appearance order; pages in address order) or,
    without one, one process at consecutive addresses.
    """

    pages: PageSet
    manifest: object | None = None
    use_zero_pages: bool = False
    max_page_sharing: int = 256
    smart_scan: int = 0
    cow: list[int] = field(default_factory=list)
    #: writes over time: (after full scan N, page index, offset, bytes)
    trace: list[tuple[int, int, int, bytes]] = field(default_factory=list)

    def __post_init__(self):
        from .errors import InputError
        for w in self.trace:
            n, i, off, data = w
            if n > MAX_TRACE_SCAN:
                raise InputError(f"--trace: {_where(w)}: after_scan {n} is more than {MAX_TRACE_SCAN} full scans")
            if not 0 <= i < len(self.pages) or off < 0 or off + len(data) > PAGE_SIZE or n < 1:
                raise InputError(f"--trace: write to page {i} at offset {off} after scan {n} is out of range")
        for i in self.cow:
            if not 0 <= i < len(self.pages):
                raise InputError(f"--cow: page {i} is beyond the page set ({len(self.pages)} pages)")
        if self.max_page_sharing < 2:
            raise InputError("--max-page-sharing: must be at least 2")

    def groups(self) -> list[tuple[int, list[int]]]:
        if self.manifest is None:
            return [(0, list(range(len(self.pages))))]
        order: dict[int, list[int]] = {}
        for i, pid in enumerate(self.manifest.pid):
            order.setdefault(pid, []).append(i)
        return [(pid, sorted(idx, key=lambda i: self.manifest.vaddr[i])) for pid, idx in order.items()]

    # -- model ----------------------------------------------------------------------------------
    def build_model(self, bus=None):
        from .ksm import Ksmd
        from .mm import Machine
        m = Machine(bus=bus)
        k = Ksmd(m, pages_to_scan=max(100, len(self.pages) + 64), sleep_millisecs=10,
                 max_page_sharing=self.max_page_sharing, use_zero_pages=self.use_zero_pages,
                 smart_scan=bool(self.smart_scan))
        mms = m.place_pages(self.pages, self.manifest)
        for mm in mms:
            for vma in list(mm.vmas):
                k.madvise_mergeable(mm, vma.start, vma.end - vma.start)
        where = {}
        if self.manifest is None:
            base = mms[0].vmas[0].start
            where = {i: (mms[0], base + i * PAGE_SIZE) for i in range(len(self.pages))}
        else:
            by_pid = {mm.pid: mm for mm in mms}
            where = {i: (by_pid[pid], va) for i, (pid, va) in enumerate(zip(self.manifest.pid, self.manifest.vaddr))}
        return m, k, mms, where

    # -- the run, the same on the model and on the kernel ---------------------------------------
    def _drive(self, scan_once, counters, write, plan=None) -> tuple[list[int], list[tuple]]:
        """Scan and write as the scenario says; return (convergence points, writes applied as
        (after_scan, page, offset, data)). With ``plan`` (another run's result), replay exactly
        its writes after the same scans and stop after the same number of scans."""
        from .ksm import convergence_key
        if plan is not None:
            points, writes = plan
            n = 0
            for at, page, off, data in sorted(writes, key=lambda w: w[0]):
                while n < at:
                    n = scan_once()
                write(page, off, data)
            while n < points[-1]:
                n = scan_once()
            return list(points), list(writes)
        pending = sorted(self.trace, key=lambda w: w[0])
        cow_pending = bool(self.cow)
        applied, points, hist = [], [], []
        # the scans are bounded: every write is due by MAX_TRACE_SCAN, and after the last
        # write (or the start, or the --cow writes) ksmd has CONVERGE_SCANS full scans to settle
        settle_from, last = 0, "the start"
        while True:
            n = scan_once()
            due = [w for w in pending if w[0] <= n]
            for w in due:
                _at, page, off, data = w
                write(page, off, data)
                applied.append((n, page, off, data))
            pending = pending[len(due):]
            if due:
                hist = []
                settle_from, last = n, _where(due[-1])
            hist.append(convergence_key(counters(), self.smart_scan))
            if len(hist) > 2 and all(h == hist[-1] for h in hist[-3:]) and not pending:
                points.append(n)
                if not cow_pending:
                    return points, applied
                for i in self.cow:
                    write(i, 0, cow_bytes(i))
                    applied.append((n, i, 0, cow_bytes(i)))
                cow_pending = False
                hist = []
                settle_from, last = n, "the --cow writes"
            if not pending and n - settle_from > CONVERGE_SCANS:
                raise PagemergeError(f"ksm: did not converge within {CONVERGE_SCANS} full scans after {last} "
                                     f"(scan {settle_from}); its counters kept changing")
            if n > MAX_TRACE_SCAN + 2 * CONVERGE_SCANS + 3:      # held by the two checks above
                raise PagemergeError(f"ksm: stopped after {n} full scans without converging")

    def run_model(self, follow: dict | None = None, bus=None) -> dict:
        """Run on the model. ``follow``: a kernel result, whose scans and writes are replayed
        exactly (the kernel's ksmd may complete more scans between two looks than asked)."""
        m, k, mms, where = self.build_model(bus)
        k.set_run(1)

        def scan_once():
            k.full_scan()
            return k.seqnr

        def write(i, off, data):
            mm, va = where[i]
            mm.write(va + off, data)

        plan = None
        if follow is not None:
            plan = (follow["full_scans_at"], [(at, page, off, bytes.fromhex(d)) for at, page, off, d in follow["writes"]])
        points, writes = self._drive(scan_once, k.counters, write, plan)
        return self._result(k.counters(), [k.ksm_stat(mm) for mm in mms], [mm.pid for mm in mms], points, writes)

    def run_kernel(self) -> dict:
        from .kernel.ksm import KernelKsm
        groups = self.groups()
        pos = {}
        for gi, (_pid, idx) in enumerate(groups):
            for j, i in enumerate(idx):
                pos[i] = (gi, j)
        data = [[self.pages.page(i) for i in idx] for _pid, idx in groups]
        for _attempt in range(KERNEL_ATTEMPTS):
            with KernelKsm(data, max_page_sharing=self.max_page_sharing, use_zero_pages=self.use_zero_pages,
                           smart_scan=self.smart_scan) as kk:
                def write(i, off, blob, kk=kk):
                    gi, j = pos[i]
                    kk.write(gi, j, off, blob)

                points, writes = self._drive(kk.scan_once, kk.counters, write)
                if kk.skipped_scans == 0:
                    return self._result(kk.counters(), kk.ksm_stat(), [pid for pid, _ in groups], points, writes)
                skipped = kk.skipped_scans
            # a snapshot came a full scan late (the harness was kept off the CPU): the scan
            # counts, writes and convergence point of this run are not those of one scan at a
            # time, so it is not compared; the run is repeated from the start on fresh processes
        raise PagemergeError(f"ksm: the live ksmd could not be stopped after each full scan in {KERNEL_ATTEMPTS} "
                             f"runs (the last ran {skipped} scan(s) past a snapshot); the machine is too busy "
                             "for scan-by-scan snapshots, try again when it is quieter")

    @staticmethod
    def _result(counters: dict, stats: list[dict], pids: list[int], points: list[int], writes: list) -> dict:
        total = {k: sum(s[k] for s in stats) for k in ("ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages",
                                                       "ksm_process_profit")}
        return {"ksm": counters, "ksm_stat": total,
                "processes": [{"pid": p, **s} for p, s in zip(pids, stats)],
                "full_scans_at": points,
                "writes": [[at, page, off, data.hex() if isinstance(data, (bytes, bytearray)) else data]
                           for at, page, off, data in writes]}


#: runs of the live ksmd tried before giving up when snapshots keep coming a scan late
KERNEL_ATTEMPTS = 3


def _where(w) -> str:
    """A trace write named for a message: its trace line when known."""
    line = getattr(w, "line", None)
    at, page = w[0], w[1]
    return f"trace line {line} (write to page {page} after scan {at})" if line else \
        f"the write to page {page} after scan {at}"


def diff_ksm(model: dict, kernel: dict, smart_scan: int = 0) -> list[tuple[str, str, int, int]]:
    """Fields that differ. With smart scan only pages_unshared + pages_volatile is compared."""
    out = []
    skip = ("pages_unshared", "pages_volatile") if smart_scan else ()
    for k, v in model["ksm"].items():
        if k in skip:
            continue
        if kernel["ksm"].get(k) != v:
            out.append(("ksm", k, v, kernel["ksm"].get(k)))
    if smart_scan:
        a = model["ksm"]["pages_unshared"] + model["ksm"]["pages_volatile"]
        b = kernel["ksm"]["pages_unshared"] + kernel["ksm"]["pages_volatile"]
        if a != b:
            out.append(("ksm", "pages_unshared+pages_volatile", a, b))
    for k, v in model["ksm_stat"].items():
        if kernel["ksm_stat"].get(k) != v:
            out.append(("ksm_stat", k, v, kernel["ksm_stat"].get(k)))
    for i, (pm, pk) in enumerate(zip(model["processes"], kernel["processes"])):
        for k in ("ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages", "ksm_process_profit"):
            if pm[k] != pk[k]:
                out.append((f"process[{i}]", k, pm[k], pk[k]))
    return out


def read_trace(path: str, max_writes: int = 1_000_000) -> list[tuple[int, int, int, bytes]]:
    """A KSM write trace: one write per line, ``after_scan,page,offset,hexbytes`` (``#``
    comments allowed). Read from a regular file, bounded in size and in number of writes;
    numbers are checked for range here, against the page set in :class:`KsmScenario`."""
    from .fileio import read_text_input
    out = []
    for n, line in enumerate(read_text_input(path, "trace").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            scan, page, off, data = (x.strip() for x in line.split(","))
            if max(len(scan), len(page), len(off)) > 12:
                raise ValueError
            w = (int(scan), int(page), int(off), bytes.fromhex(data))
        except ValueError:
            raise InputError(f"{path}: line {n}: expected 'after_scan,page,offset,hexbytes', got {line[:80]!r}") from None
        if w[0] < 0 or w[1] < 0 or w[2] < 0 or not w[3]:
            raise InputError(f"{path}: line {n}: scan, page and offset must not be negative, and bytes not empty")
        if w[0] > MAX_TRACE_SCAN:
            raise InputError(f"{path}: line {n}: after_scan {w[0]} is more than {MAX_TRACE_SCAN} full scans "
                             f"(ksmd would never get there in bounded time)")
        out.append(TraceWrite(w, n))
        if len(out) > max_writes:
            raise InputError(f"{path}: more than {max_writes} writes")
    return out

