"""Address spaces: the top of the indirection chain.

    virtual address -> PTE -> page frame                        (resident)
                          \\-> swap entry -> zram slot -> ...    (swapped out; see engine.swap)

A :class:`Machine` owns physical page frames (with the shared zero page) and the processes.
Each :class:`Mm` (``struct mm_struct``) has VMAs and a page table mapping page-aligned virtual
addresses to :class:`Pte` entries. Frames keep a ``mapcount``; a frame mapped by more than one
PTE, or a KSM page, is write-protected and a write to it is a copy-on-write fault. Reading any
virtual address returns exactly what was last written there.

Everything that repoints a link of the chain (KSM merging, swap-out, COW) goes through this
module, so each mechanism shares one model of memory rather than a private structure.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import xxhash

from .errors import InputError
from .events import EventBus, event, Event
from .pages import PAGE_SIZE, PageSet

from typing import ClassVar

VM_READ = 0x1
VM_WRITE = 0x2
VM_SHARED = 0x8
VM_MERGEABLE = 0x80000000
#: the default base address for pages placed without a manifest (a typical mmap area)
DEFAULT_BASE = 0x7F0000000000


# ---- events of the memory model ------------------------------------------------------------
@event
class CowFault(Event):
    kind: ClassVar[str] = "mm.cow_fault"
    doc: ClassVar[str] = "a write hit a write-protected or shared frame; the writer got a private copy (PTE repointed)"
    pid: int
    vaddr: int
    old_pfn: int
    new_pfn: int
    ksm: bool


@event
class ZeroPageUnshared(Event):
    kind: ClassVar[str] = "mm.zero_page_unshared"
    doc: ClassVar[str] = "a write or unshare replaced a PTE mapping the zero page by a private page"
    pid: int
    vaddr: int
    ksm_zero: bool


class Frame:
    """A physical page frame (``struct page``/folio) with its bytes.

    A frame placed from a page set is a view of that page (``src``, ``idx``): it holds no copy
    of the bytes until it is first written (copy on write into a private ``bytearray``), so
    placing a multi-GiB page set costs a few Python objects per page, not the pages again.
    :attr:`data` is always a bytes-like object of 4096 bytes (``bytes`` or ``bytearray``: len,
    slicing, comparisons, ``count``, ``bytes()``, the buffer protocol for hashing): for a
    view it is a fresh copy read from the page set, and the page set releases what such reads
    brought into memory (:meth:`engine.pages.PageSet.page_bytes`). A KSM page keeps the copy
    it was first read into (the stable tree compares against it again and again; it is never
    written in place). :meth:`buffer` gives the bytes without a copy."""

    __slots__ = ("pfn", "_data", "_src", "_idx", "mapcount", "pins", "stable_node", "ksm", "freed", "_hash")

    def __init__(self, pfn: int, data=None, src=None, idx: int = 0):
        self.pfn = pfn
        self._src = src             # the page set this frame is a view of, until written
        self._idx = idx             # its page index there
        if src is not None:
            self._data = None
        elif data is None:
            self._data = bytearray(PAGE_SIZE)
        else:
            # bytes are immutable: kept as they are (a write copies them); anything else is copied
            self._data = data if type(data) is bytes else bytearray(data)
        self.mapcount = 0
        self.pins = 0               # extra references (GUP pins, e.g. O_DIRECT in flight)
        self.stable_node = None     # the KSM stable node this KSM page belongs to
        self.ksm = False            # PageKsm
        self.freed = False
        self._hash = None

    @property
    def data(self):
        """The frame's 4096 bytes (``bytes`` or ``bytearray``); see the class docstring."""
        d = self._data
        if d is None:
            d = self._src.page_bytes(self._idx)
            if self.ksm:
                self._data = d
        return d

    def buffer(self):
        """The frame's bytes without a copy: a memoryview into the page set for a view, else
        the frame's own buffer (valid until the next write)."""
        d = self._data
        return self._src.page_view(self._idx) if d is None else d

    @property
    def is_view(self) -> bool:
        """True while the frame is an unwritten view of its page set (holds no copy)."""
        return self._data is None

    @property
    def source(self):
        """``(page_set, index)`` while the frame is an unwritten view of page ``index`` of
        ``page_set`` (its bytes are ``page_set.array[index]``: compiled code can read them
        there, with no copy), else None (the frame holds its own bytes: :meth:`buffer`)."""
        return (self._src, self._idx) if self._data is None else None

    @property
    def refcount(self) -> int:
        """Page references: one per mapping plus pins (the kernel's page_count)."""
        return self.mapcount + self.pins

    def content_hash(self) -> int:
        """XXH64 of the bytes (seed 0), cached until the next write."""
        h = self._hash
        if h is None:
            d = self._data
            h = self._hash = xxhash.xxh64_intdigest(self._src.page_view(self._idx) if d is None else d)
        return h

    def write(self, offset: int, data) -> None:
        d = self._data
        if type(d) is not bytearray:             # copy on first write: the frame's own bytes
            d = self._data = bytearray(self._src.page_view(self._idx) if d is None else d)
            self._src = None
        d[offset:offset + len(data)] = data
        self._hash = None

    def copy_data(self):
        """What a new frame copying this one starts from, as ``alloc_frame(**frame.copy_data())``
        takes it: the same view for a view (no bytes copied), else the bytes."""
        d = self._data
        if d is None:
            return {"src": self._src, "idx": self._idx}
        return {"data": d}

    def __repr__(self):
        return f"Frame(pfn={self.pfn:#x}, mapcount={self.mapcount}{', ksm' if self.ksm else ''})"


class Pte:
    """A page-table entry: a present frame, the zero page, or a swap entry."""

    __slots__ = ("frame", "writable", "swp", "ksm_zero", "atime", "birth")

    def __init__(self, frame: Frame | None = None, writable: bool = True, swp=None, ksm_zero: bool = False):
        self.frame = frame
        self.writable = writable
        self.swp = swp              # swap entry (engine.swap) when not present
        self.ksm_zero = ksm_zero    # zero page placed by KSM (the kernel marks it with the dirty bit)
        self.atime = 0              # last access (the machine's access clock), for LRU selection
        self.birth = 0              # when the page was first mapped, for FIFO selection

    @property
    def present(self) -> bool:
        return self.frame is not None


@dataclass
class Vma:
    start: int
    end: int
    flags: int = VM_READ | VM_WRITE
    name: str = "[anon]"
    anon_vma: bool = False          # set on the first anonymous fault
    _addrs: list = field(default_factory=list, repr=False)   # sorted addresses with a PTE

    def __contains__(self, addr: int) -> bool:
        return self.start <= addr < self.end

    @property
    def mergeable(self) -> bool:
        return bool(self.flags & VM_MERGEABLE)


class Mm:
    """A process address space (``struct mm_struct``)."""

    def __init__(self, machine: "Machine", pid: int, comm: str = ""):
        self.machine = machine
        self.pid = pid
        self.comm = comm
        self.vmas: list[Vma] = []
        self.ptes: dict[int, Pte] = {}
        self.merge_any = False
        # KSM per-mm counters (``/proc/PID/ksm_stat``)
        self.ksm_rmap_items = 0
        self.ksm_merging_pages = 0
        self.ksm_zero_pages = 0
        self.ksm_registered = False
        self.exiting = False

    # -- VMAs -------------------------------------------------------------------------------
    def mmap(self, start: int, length: int, flags: int = VM_READ | VM_WRITE, name: str = "[anon]") -> Vma:
        if start % PAGE_SIZE or length <= 0 or length % PAGE_SIZE:
            raise ValueError("mmap: start and length must be page aligned")
        end = start + length
        # the VMAs are sorted and disjoint: only the one before ``start`` and the one after
        # can overlap (a scan of all of them made placing n one-page VMAs quadratic)
        i = bisect.bisect_right(self.vmas, start, key=lambda v: v.start)
        for v in self.vmas[max(0, i - 1):i + 1]:
            if v.start < end and start < v.end:
                raise ValueError(f"mmap: {start:#x}-{end:#x} overlaps {v.start:#x}-{v.end:#x}")
        vma = Vma(start, end, flags, name)
        bisect.insort(self.vmas, vma, key=lambda v: v.start)
        if self.merge_any and self.machine.ksm is not None:
            self.machine.ksm.vma_merge_any(self, vma)
        return vma

    def find_vma(self, addr: int) -> Vma | None:
        i = bisect.bisect_right(self.vmas, addr, key=lambda v: v.start) - 1
        if i >= 0 and addr < self.vmas[i].end:
            return self.vmas[i]
        return None

    def _vma_or_fault(self, addr: int) -> Vma:
        vma = self.find_vma(addr)
        if vma is None:
            raise InputError(f"pid {self.pid}: no mapping at {addr:#x} (segfault)")
        return vma

    # -- page table -------------------------------------------------------------------------
    def _set_pte(self, vma: Vma, addr: int, pte: Pte) -> None:
        clock = self.machine.tick()
        pte.atime = pte.birth = clock
        if addr not in self.ptes:
            bisect.insort(vma._addrs, addr)
        self.ptes[addr] = pte
        vma.anon_vma = True

    def _clear_pte(self, vma: Vma, addr: int) -> None:
        if self.ptes.pop(addr, None) is not None:
            i = bisect.bisect_left(vma._addrs, addr)
            del vma._addrs[i]

    def populate(self, addr: int, data) -> Frame:
        """Fault in a private anonymous page at ``addr`` holding ``data`` (a write fault)."""
        addr &= ~(PAGE_SIZE - 1)
        vma = self._vma_or_fault(addr)
        old = self.ptes.get(addr)
        if old is not None:
            self.machine._unmap(self, addr, old)
        f = self.machine.alloc_frame(data)
        f.mapcount = 1
        self._set_pte(vma, addr, Pte(f, True))
        return f

    def read(self, addr: int, length: int = PAGE_SIZE) -> bytes:
        """Read bytes at ``addr`` (within one page); swapped pages are faulted back in."""
        base = addr & ~(PAGE_SIZE - 1)
        off = addr - base
        if off + length > PAGE_SIZE:
            raise ValueError("read: crosses a page boundary")
        vma = self._vma_or_fault(base)
        pte = self.ptes.get(base)
        if pte is None:
            # a read fault on an untouched anonymous page maps the shared zero page, read-only
            pte = Pte(self.machine.zero_frame, writable=False)
            self._set_pte(vma, base, pte)
            return bytes(length)
        if pte.frame is None and pte.swp is not None:
            self.machine.swapin(self, base)
            pte = self.ptes[base]
        pte.atime = self.machine.tick()
        return bytes(pte.frame.data[off:off + length])

    def write(self, addr: int, data) -> None:
        """Write ``data`` at ``addr`` (within one page), taking a COW fault where needed."""
        base = addr & ~(PAGE_SIZE - 1)
        off = addr - base
        if off + len(data) > PAGE_SIZE:
            raise ValueError("write: crosses a page boundary")
        vma = self._vma_or_fault(base)
        if not vma.flags & VM_WRITE:
            raise InputError(f"pid {self.pid}: write to read-only mapping at {addr:#x}")
        pte = self.ptes.get(base)
        if pte is None:
            f = self.populate(base, None)
            f.write(off, data)
            return
        if pte.frame is None and pte.swp is not None:
            self.machine.swapin(self, base)
            pte = self.ptes[base]
        f = pte.frame
        if not pte.writable or f is self.machine.zero_frame:
            f = self.machine.wp_fault(self, vma, base, pte)
        pte.atime = self.machine.tick()
        f.write(off, data)

    def pin(self, addr: int) -> Frame:
        """Take an extra reference on the page at ``addr`` (``pin_user_pages``), faulting it in."""
        base = addr & ~(PAGE_SIZE - 1)
        self.read(base, 1)
        pte = self.ptes[base]
        if pte.frame is self.machine.zero_frame:
            self.write(base, b"\0")          # GUP for write breaks the zero page first
        f = self.ptes[base].frame
        f.pins += 1
        return f

    def unpin(self, addr: int) -> None:
        self.ptes[addr & ~(PAGE_SIZE - 1)].frame.pins -= 1

    def zap(self, addr: int) -> None:
        """Drop the mapping of the page at ``addr`` (``MADV_DONTNEED``): its frame loses a
        mapping, or its swap entry is released; a later read sees zeros."""
        base = addr & ~(PAGE_SIZE - 1)
        vma = self._vma_or_fault(base)
        pte = self.ptes.get(base)
        if pte is None:
            return
        self.machine._unmap(self, base, pte)
        self._clear_pte(vma, base)

    def resident(self) -> int:
        return sum(1 for p in self.ptes.values() if p.frame is not None and p.frame is not self.machine.zero_frame)

    def __repr__(self):
        return f"Mm(pid={self.pid}, comm={self.comm!r}, vmas={len(self.vmas)}, ptes={len(self.ptes)})"


class Machine:
    """Physical memory (frames and the zero page), processes, and the hooks mechanisms use."""

    def __init__(self, bus: EventBus | None = None):
        self.bus = bus if bus is not None else EventBus()
        self._next_pfn = 0x1000
        self.zero_frame = Frame(0)               # the shared zero page (never freed)
        self.zero_frame.mapcount = 1 << 30
        self.mms: list[Mm] = []
        self._next_pid = 1000
        self.frames_allocated = 0
        self.ksm = None                          # set by engine.ksm.Ksmd
        self.swap = None                         # set by engine.swap
        self.cow_faults = 0
        self.cow_ksm = 0
        self._clock = 0

    def tick(self) -> int:
        """The access clock (for LRU-like candidate selection)."""
        self._clock += 1
        return self._clock

    def alloc_frame(self, data=None, src=None, idx: int = 0) -> Frame:
        """A new frame holding ``data`` (copied unless ``bytes``), or a view of page ``idx`` of
        the page set ``src`` (no copy until written), or zeros."""
        f = Frame(self._next_pfn, data, src, idx)
        self._next_pfn += 1
        self.frames_allocated += 1
        return f

    def free_frame(self, f: Frame) -> None:
        f.freed = True
        self.frames_allocated -= 1

    def new_mm(self, comm: str = "", pid: int | None = None) -> Mm:
        if pid is None:
            pid = self._next_pid
            self._next_pid += 1
        mm = Mm(self, pid, comm)
        self.mms.append(mm)
        return mm

    # -- mapping changes ----------------------------------------------------------------------
    def _put_frame(self, f: Frame) -> None:
        if f is self.zero_frame:
            return
        f.mapcount -= 1
        if f.mapcount == 0:
            self.free_frame(f)

    def _unmap(self, mm: Mm, addr: int, pte: Pte) -> None:
        if pte.frame is not None:
            if pte.ksm_zero and self.ksm is not None:
                self.ksm.zero_page_unmapped(mm)
            self._put_frame(pte.frame)
        elif pte.swp is not None and self.swap is not None:
            self.swap.swap_free(pte.swp)

    def replace_page(self, mm: Mm, addr: int, new: Frame, writable: bool = False, ksm_zero: bool = False) -> None:
        """Point ``mm``'s PTE at ``addr`` to ``new`` (KSM's ``replace_page``): the old frame
        loses a mapping and is freed when it has none left."""
        pte = mm.ptes[addr]
        old = pte.frame
        if new is not self.zero_frame:
            new.mapcount += 1
        pte.frame = new
        pte.writable = writable
        pte.ksm_zero = ksm_zero
        if old is not None:
            self._put_frame(old)

    def wp_fault(self, mm: Mm, vma: Vma, addr: int, pte: Pte) -> Frame:
        """A write to a write-protected PTE: reuse the frame if it is ours alone and not a KSM
        page, otherwise copy it (``wp_page_copy``)."""
        old = pte.frame
        if old is not self.zero_frame and not old.ksm and old.mapcount == 1:
            pte.writable = True
            return old
        new = self.alloc_frame(**old.copy_data()) if old is not self.zero_frame else self.alloc_frame()
        new.mapcount = 1
        was_ksm_zero = pte.ksm_zero
        if old is self.zero_frame:
            if was_ksm_zero and self.ksm is not None:
                self.ksm.zero_page_unmapped(mm)
            if self.bus.enabled:
                self.bus.emit(ZeroPageUnshared(mm.pid, addr, was_ksm_zero))
        else:
            self.cow_faults += 1
            if old.ksm:
                self.cow_ksm += 1
            if self.bus.enabled:
                self.bus.emit(CowFault(mm.pid, addr, old.pfn, new.pfn, old.ksm))
            self._put_frame(old)
        pte.frame = new
        pte.writable = True
        pte.ksm_zero = False
        return new

    def unshare(self, mm: Mm, addr: int) -> None:
        """Break sharing at ``addr`` without changing the bytes (``break_ksm``'s unshare fault)."""
        pte = mm.ptes.get(addr)
        if pte is None or pte.frame is None:
            return
        if pte.frame.ksm or pte.ksm_zero:
            self.wp_fault(mm, mm.find_vma(addr), addr, pte)

    def swapin(self, mm: Mm, addr: int) -> None:
        if self.swap is None:
            raise RuntimeError("swap entry without a swap device")
        self.swap.swapin(mm, addr)

    # -- placement ----------------------------------------------------------------------------
    def place_pages(self, pages, manifest=None, comm: str = "pages", base: int = DEFAULT_BASE) -> list[Mm]:
        """Map a page set into processes: by the manifest (pid, address) when given, else one
        process at consecutive addresses from ``base``. Returns the processes in order.

        Pages are faulted in in the order given (the manifest's order), which is the order of
        the access clock that LRU and FIFO selection follow. Each process gets one VMA per run
        of consecutive addresses of one region, whatever the order of its pages in the
        manifest (processes may interleave). The frames of a :class:`~engine.pages.PageSet`
        are views of its pages (no copy until written); other sequences of pages are copied."""
        view = isinstance(pages, PageSet)
        arr = pages.array if hasattr(pages, "array") else pages
        if manifest is None:
            mm = self.new_mm(comm)
            vma = mm.mmap(base, len(arr) * PAGE_SIZE, name="[pageset]")
            self._fault_in(mm, vma, [base + i * PAGE_SIZE for i in range(len(arr))], range(len(arr)),
                           pages if view else None, arr)
            return [mm]
        pids, vaddrs, regions = manifest.pid, manifest.vaddr, manifest.region
        by_pid: dict[int, Mm] = {}
        seen: dict[int, set] = {}
        order = []
        for i, (pid, va) in enumerate(zip(pids, vaddrs)):      # refusals in manifest order, before any change
            s = seen.get(pid)
            if s is None:
                s = seen[pid] = set()
                mm = by_pid[pid] = self.new_mm(manifest.comm_of(pid) or comm, pid=pid)
                order.append(mm)
            if va % PAGE_SIZE:
                raise InputError(f"manifest: page {i} address {va:#x} is not page aligned")
            if va in s:
                raise InputError(f"manifest: pid {pid} address {va:#x} appears twice")
            s.add(va)
        del seen
        rows: dict[int, list[int]] = {}
        for i, pid in enumerate(pids):
            rows.setdefault(pid, []).append(i)
        for pid, idx in rows.items():
            _map_runs(by_pid[pid], sorted(idx, key=lambda i: vaddrs[i]), vaddrs, regions)
        # fault the pages in, in manifest order (one tick of the access clock each)
        src = pages if view else None
        for i, (pid, va) in enumerate(zip(pids, vaddrs)):
            mm = by_pid[pid]
            self._fault_in(mm, mm.find_vma(va), (va,), (i,), src, arr)
        return order

    def _fault_in(self, mm: Mm, vma: Vma, addrs, idxs, src, arr) -> None:
        """Map page ``idxs[k]`` of the set at ``addrs[k]`` in ``vma`` (fresh, untouched
        addresses, ascending within one call): a private writable frame each, a view of
        ``src`` when given, else a copy of ``arr``'s row."""
        ptes = mm.ptes
        vaddrs = vma._addrs
        append = not vaddrs or addrs[0] > vaddrs[-1]
        nxt = self._next_pfn
        clock = self._clock
        for va, i in zip(addrs, idxs):
            f = Frame(nxt, None, src, i) if src is not None else Frame(nxt, arr[i])
            nxt += 1
            f.mapcount = 1
            pte = Pte(f, True)
            clock += 1
            pte.atime = pte.birth = clock
            ptes[va] = pte
            if append:
                vaddrs.append(va)
            else:
                bisect.insort(vaddrs, va)
        self.frames_allocated += nxt - self._next_pfn
        self._next_pfn = nxt
        self._clock = clock
        vma.anon_vma = True


def _map_runs(mm: Mm, idx: list[int], vaddrs, regions) -> None:
    """One VMA per run of consecutive addresses of one region among ``mm``'s pages (``idx``:
    their manifest rows, in address order)."""
    k = 0
    while k < len(idx):
        start = vaddrs[idx[k]]
        region = regions[idx[k]]
        end = start + PAGE_SIZE
        k += 1
        while k < len(idx) and vaddrs[idx[k]] == end and regions[idx[k]] == region:
            end += PAGE_SIZE
            k += 1
        mm.mmap(start, end - start, name=region)
