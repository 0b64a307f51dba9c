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
from .pages import PAGE_SIZE

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
    """A physical page frame (``struct page``/folio) with its bytes."""

    __slots__ = ("pfn", "data", "mapcount", "pins", "stable_node", "ksm", "freed", "_hash")

    def __init__(self, pfn: int, data=None):
        self.pfn = pfn
        self.data = bytearray(data) if data is not None else bytearray(PAGE_SIZE)
        self.mapcount = 0
        self.pins = 0               # extra references (GUP pins, e.g. O_DIRECT in flight)
        self.stable_node = None     # the KSM stable node this KSM page belongs to
        self.ksm = False            # PageKsm
        self.freed = False
        self._hash = None

    @property
    def refcount(self) -> int:
        """Page references: one per mapping plus pins (the kernel's page_count)."""
        return self.mapcount + self.pins

    def content_hash(self) -> int:
        """XXH64 of the bytes (seed 0), cached until the next write."""
        h = self._hash
        if h is None:
            h = self._hash = xxhash.xxh64_intdigest(self.data)
        return h

    def write(self, offset: int, data) -> None:
        self.data[offset:offset + len(data)] = data
        self._hash = None

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

    def alloc_frame(self, data=None) -> Frame:
        f = Frame(self._next_pfn, data)
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
        new = self.alloc_frame(old.data if old is not self.zero_frame else None)
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
        process at consecutive addresses from ``base``. Returns the processes in order."""
        arr = pages.array if hasattr(pages, "array") else pages
        if manifest is None:
            mm = self.new_mm(comm)
            mm.mmap(base, len(arr) * PAGE_SIZE, name="[pageset]")
            for i in range(len(arr)):
                mm.populate(base + i * PAGE_SIZE, arr[i])
            return [mm]
        by_pid: dict[int, Mm] = {}
        order = []
        for i, (pid, va) in enumerate(zip(manifest.pid, manifest.vaddr)):
            mm = by_pid.get(pid)
            if mm is None:
                mm = by_pid[pid] = self.new_mm(manifest.comm_of(pid) or comm, pid=pid)
                order.append(mm)
            if va % PAGE_SIZE:
                raise InputError(f"manifest: page {i} address {va:#x} is not page aligned")
            if mm.find_vma(va) is None:
                _map_run(mm, manifest, pid, i, va)
            if va in mm.ptes:
                raise InputError(f"manifest: pid {pid} address {va:#x} appears twice")
            mm.populate(va, arr[i])
        return order


def _map_run(mm: Mm, manifest, pid: int, i: int, va: int) -> None:
    """Create one VMA covering the run of consecutive addresses of ``pid`` starting at page i."""
    end = va + PAGE_SIZE
    region = manifest.region[i]
    j = i + 1
    while j < len(manifest.pid) and manifest.pid[j] == pid and manifest.vaddr[j] == end \
            and manifest.region[j] == region:
        end += PAGE_SIZE
        j += 1
    # extend to an existing neighbour-free span; VMAs must not overlap
    mm.mmap(va, end - va, name=region)
