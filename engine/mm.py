"""Address spaces: the top of the indirection chain.

    virtual address -> PTE -> page frame                        (resident)
                          \\-> swap entry -> zram slot -> ...    (swapped out; see engine.swap)

A :class:`Machine` owns physical page frames (with the shared zero page) and the processes.
Each :class:`Mm` (``struct mm_struct``) has VMAs and a page table mapping page-aligned virtual
addresses to :class:`Pte` entries. Frames keep a ``mapcount``; a frame mapped by more than one
PTE, or a KSM page, is write-protected and a write to it is a copy-on-write fault. Reading any
virtual address returns exactly what was last written there.

The state is in arrays, not in one Python object per page: each VMA's page table is a set of
dense columns with one row per page (as the kernel's page tables are dense per range), and the
machine's frame table a set of columns indexed by pfn (:class:`Machine`). ``mm.ptes`` is a
mapping over them (:class:`PageTable`), and a :class:`Pte` or :class:`Frame` is a view of one
row, made on access, whose attributes read and write the columns. Two views of one frame are
equal (``==``); only the zero page is a single object (``machine.zero_frame``). A placed page
costs about 66 bytes of model (tests/test_mm_compact.py measures it); hot paths read the
columns as numpy arrays at once (swap-out candidates, placement, KSM's compiled scan).

Everything that repoints a link of the chain (KSM merging, swap-out, COW) goes through this
module, so each mechanism shares one model of memory rather than a private structure.
"""
from __future__ import annotations

import bisect
from array import array
from collections.abc import ItemsView, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import xxhash

from .errors import InputError
from .events import Event, EventBus, event
from .pages import PAGE_SIZE, PageSet

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


#: the first pfn handed out (rows below it are unused, except row 0: the zero page)
PFN_BASE = 0x1000
_ZEROS = bytes(PAGE_SIZE)


def _col(code: str, fill: int, n: int) -> array:
    return array(code, [fill]) * n


def _arange(lo: int, n: int) -> array:
    """``array("q", range(lo, lo + n))``, made without a Python int per element."""
    a = array("q")
    a.frombytes(np.arange(lo, lo + n, dtype=np.int64).tobytes())
    return a


class Frame:
    """A physical page frame (``struct page``/folio): a view of row ``pfn`` of its machine's
    frame table (:class:`Machine`), made on access. Two views of one frame are equal (``==``)
    and hash alike; only the zero page is one object (``machine.zero_frame``, so ``is`` works
    for it), any other frame is compared with ``==``.

    A frame placed from a page set is a view of that page: it holds no copy of the bytes until
    it is first written (copy on write into a private ``bytearray``), so placing a multi-GiB
    page set costs a few table columns per page, not the pages again. :attr:`data` is always a
    bytes-like object of 4096 bytes (``bytes`` or ``bytearray``: len, slicing, comparisons,
    ``count``, ``bytes()``, the buffer protocol for hashing): for a view it is a fresh copy read
    from the page set, and the page set releases what such reads brought into memory
    (:meth:`engine.pages.PageSet.page_bytes`). A KSM page keeps the copy it was first read into
    (the stable tree compares against it again and again; it is never written in place).
    :meth:`buffer` gives the bytes without a copy. A freed frame's own bytes are released (its
    content is gone, as in the kernel; nothing reads a freed frame's bytes as a page's)."""

    __slots__ = ("_m", "pfn")

    def __init__(self, machine: "Machine", pfn: int):
        self._m = machine
        self.pfn = pfn

    def __eq__(self, other):
        return type(other) is Frame and other.pfn == self.pfn and other._m is self._m

    def __ne__(self, other):
        return type(other) is not Frame or other.pfn != self.pfn or other._m is not self._m

    def __hash__(self):
        return hash(self.pfn)

    # -- the frame table's columns ---------------------------------------------------------
    @property
    def mapcount(self) -> int:
        return self._m._mapcount[self.pfn]

    @mapcount.setter
    def mapcount(self, v: int) -> None:
        self._m._mapcount[self.pfn] = v

    @property
    def pins(self) -> int:
        """Extra references (GUP pins, e.g. O_DIRECT in flight)."""
        return self._m._pins[self.pfn]

    @pins.setter
    def pins(self, v: int) -> None:
        self._m._pins[self.pfn] = v

    @property
    def ksm(self) -> bool:
        """PageKsm."""
        return bool(self._m._ksm[self.pfn])

    @ksm.setter
    def ksm(self, v: bool) -> None:
        self._m._ksm[self.pfn] = 1 if v else 0

    @property
    def freed(self) -> bool:
        return bool(self._m._freed[self.pfn])

    @freed.setter
    def freed(self, v: bool) -> None:
        self._m._freed[self.pfn] = 1 if v else 0

    @property
    def stable_node(self):
        """The KSM stable node this KSM page belongs to (kept only for frames that have one)."""
        return self._m._stable_nodes.get(self.pfn)

    @stable_node.setter
    def stable_node(self, node) -> None:
        if node is None:
            self._m._stable_nodes.pop(self.pfn, None)
        else:
            self._m._stable_nodes[self.pfn] = node

    @property
    def _hash(self):
        """The cached XXH64 of the bytes, or None (cleared by every write)."""
        m = self._m
        return m._hash[self.pfn] if m._hashed[self.pfn] else None

    @_hash.setter
    def _hash(self, h) -> None:
        m = self._m
        if h is None:
            m._hashed[self.pfn] = 0
        else:
            m._hash[self.pfn] = h
            m._hashed[self.pfn] = 1

    @property
    def _data(self):
        """The frame's own bytes, or None (an unwritten view of its page set)."""
        return self._m._own.get(self.pfn)

    @property
    def _src(self):
        s = self._m._srcid[self.pfn]
        return self._m._sources[s] if s >= 0 else None

    @property
    def _idx(self) -> int:
        return self._m._srcidx[self.pfn]

    # -- bytes -------------------------------------------------------------------------------
    @property
    def data(self):
        """The frame's 4096 bytes (``bytes`` or ``bytearray``); see the class docstring."""
        m = self._m
        p = self.pfn
        d = m._own.get(p)
        if d is None:
            s = m._srcid[p]
            if s < 0:
                return _ZEROS                    # a freed frame: its bytes were released
            d = m._sources[s].page_bytes(m._srcidx[p])
            if m._ksm[p]:
                m._own[p] = d
                m._srcid[p] = -1
        return d

    def buffer(self):
        """The frame's bytes without a copy: a memoryview into the page set for a view, else
        the frame's own buffer (valid until the next write)."""
        m = self._m
        p = self.pfn
        d = m._own.get(p)
        if d is None:
            s = m._srcid[p]
            return m._sources[s].page_view(m._srcidx[p]) if s >= 0 else _ZEROS
        return d

    @property
    def is_view(self) -> bool:
        """True while the frame is an unwritten view of its page set (holds no copy)."""
        return self._m._srcid[self.pfn] >= 0

    @property
    def source(self):
        """``(page_set, index)`` while the frame is an unwritten view of page ``index`` of
        ``page_set`` (its bytes are ``page_set.array[index]``: compiled code can read them
        there, with no copy), else None (the frame holds its own bytes: :meth:`buffer`)."""
        m = self._m
        s = m._srcid[self.pfn]
        return (m._sources[s], m._srcidx[self.pfn]) if s >= 0 else None

    @property
    def refcount(self) -> int:
        """Page references: one per mapping plus pins (the kernel's page_count)."""
        m = self._m
        return m._mapcount[self.pfn] + m._pins[self.pfn]

    def content_hash(self) -> int:
        """XXH64 of the bytes (seed 0), cached until the next write."""
        m = self._m
        p = self.pfn
        if m._hashed[p]:
            return m._hash[p]
        h = m._hash[p] = xxhash.xxh64_intdigest(self.buffer())
        m._hashed[p] = 1
        return h

    def write(self, offset: int, data) -> None:
        m = self._m
        p = self.pfn
        d = m._own.get(p)
        if type(d) is not bytearray:             # copy on first write: the frame's own bytes
            d = m._own[p] = bytearray(self.buffer() if d is None else d)
            m._srcid[p] = -1
        d[offset:offset + len(data)] = data
        m._hashed[p] = 0

    def copy_data(self):
        """What a new frame copying this one starts from, as ``alloc_frame(**frame.copy_data())``
        takes it: the same view for a view (no bytes copied), else the bytes."""
        m = self._m
        p = self.pfn
        s = m._srcid[p]
        if s >= 0:
            return {"src": m._sources[s], "idx": m._srcidx[p]}
        d = m._own.get(p)
        return {"data": d if d is not None else _ZEROS}

    def __repr__(self):
        return f"Frame(pfn={self.pfn:#x}, mapcount={self.mapcount}{', ksm' if self.ksm else ''})"


class Pte:
    """A page-table entry: a view of row ``row`` of its VMA's page-table arrays, made on
    access. It maps a present frame, the zero page, or holds a swap entry; its attributes read
    and write the arrays."""

    __slots__ = ("_v", "_r", "_m")

    def __init__(self, vma: "Vma", row: int, machine: "Machine"):
        self._v = vma
        self._r = row
        self._m = machine

    @property
    def frame(self) -> Frame | None:
        p = self._v._pfn[self._r]
        if p > 0:
            return Frame(self._m, p)
        return None if p < 0 else self._m.zero_frame

    @frame.setter
    def frame(self, f: Frame | None) -> None:
        self._v._pfn[self._r] = -1 if f is None else f.pfn

    @property
    def pfn(self) -> int:
        """The mapped frame's pfn (0: the zero page), or -1 when not present."""
        return self._v._pfn[self._r]

    @property
    def present(self) -> bool:
        return self._v._pfn[self._r] >= 0

    @property
    def writable(self) -> bool:
        return bool(self._v._wr[self._r])

    @writable.setter
    def writable(self, v: bool) -> None:
        self._v._wr[self._r] = 1 if v else 0

    @property
    def swp(self):
        """The swap entry (engine.swap) when not present, else None."""
        s = self._v._swp[self._r]
        return None if s < 0 else s

    @swp.setter
    def swp(self, s) -> None:
        self._v._swp[self._r] = -1 if s is None else s

    @property
    def ksm_zero(self) -> bool:
        """The zero page placed by KSM (the kernel marks it with the dirty bit)."""
        return bool(self._v._kz[self._r])

    @ksm_zero.setter
    def ksm_zero(self, v: bool) -> None:
        self._v._kz[self._r] = 1 if v else 0

    @property
    def atime(self) -> int:
        """Last access (the machine's access clock), for LRU selection."""
        return self._v._atime[self._r]

    @atime.setter
    def atime(self, t: int) -> None:
        self._v._atime[self._r] = t

    @property
    def birth(self) -> int:
        """When the page was first mapped, for FIFO selection."""
        return self._v._birth[self._r]

    @birth.setter
    def birth(self, t: int) -> None:
        self._v._birth[self._r] = t

    def __repr__(self):
        return (f"Pte({self._v.start + self._r * PAGE_SIZE:#x}, pfn={self.pfn}, swp={self.swp}, "
                f"writable={self.writable})")


#: the page-table columns of a VMA: (attribute, array type code, value of an empty row)
PT_COLUMNS = (("_used", "B", 0), ("_pfn", "q", -1), ("_swp", "q", -1), ("_wr", "B", 0), ("_kz", "B", 0),
              ("_atime", "q", 0), ("_birth", "q", 0))


@dataclass(eq=False)
class Vma:
    """A VMA and its page table: dense arrays of one row per page (``npages``), allocated at
    the first fault: ``_used`` (a PTE is set), ``_pfn`` (the mapped frame, 0 for the zero
    page, -1 when not present), ``_swp`` (the swap entry, -1 for none), ``_wr`` (writable),
    ``_kz`` (the KSM zero page), ``_atime`` and ``_birth`` (the access clock)."""
    start: int
    end: int
    flags: int = VM_READ | VM_WRITE
    name: str = "[anon]"
    anon_vma: bool = False          # set on the first anonymous fault
    _used: array | None = field(default=None, repr=False)
    _pfn: array | None = field(default=None, repr=False)
    _swp: array | None = field(default=None, repr=False)
    _wr: array | None = field(default=None, repr=False)
    _kz: array | None = field(default=None, repr=False)
    _atime: array | None = field(default=None, repr=False)
    _birth: array | None = field(default=None, repr=False)

    def __contains__(self, addr: int) -> bool:
        return self.start <= addr < self.end

    @property
    def mergeable(self) -> bool:
        return bool(self.flags & VM_MERGEABLE)

    @property
    def npages(self) -> int:
        return (self.end - self.start) // PAGE_SIZE

    def _alloc(self) -> None:
        n = self.npages
        for name, code, fill in PT_COLUMNS:
            setattr(self, name, _col(code, fill, n))

    def rows(self) -> np.ndarray:
        """The rows that hold a PTE, ascending (an int64 array)."""
        if self._used is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero(np.frombuffer(self._used, np.uint8))

    def column(self, name: str) -> np.ndarray:
        """A page-table column as a numpy array (a copy: safe to keep while the table changes)."""
        a = getattr(self, name)
        if a is None:
            return np.zeros(0, np.int64)
        return np.frombuffer(a, np.dtype(a.typecode)).copy()

    @property
    def _addrs(self) -> list[int]:
        """The addresses with a PTE, ascending."""
        return (self.rows() * PAGE_SIZE + self.start).tolist()

    def _split_at(self, cut: int) -> "Vma":
        """Cut this VMA at ``cut``: it keeps [start, cut) and its rows; the new VMA returned
        gets [cut, end) and the rows there."""
        right = Vma(cut, self.end, self.flags, self.name, self.anon_vma)
        k = (cut - self.start) // PAGE_SIZE
        if self._used is not None:
            for name, _code, _fill in PT_COLUMNS:
                a = getattr(self, name)
                setattr(right, name, a[k:])
                setattr(self, name, a[:k])
        self.end = cut
        return right


class PageTable(Mapping):
    """``mm.ptes``: the page table as a mapping from a page-aligned virtual address to its
    :class:`Pte` (a view made on access); iteration is in address order."""

    __slots__ = ("_mm",)

    def __init__(self, mm: "Mm"):
        self._mm = mm

    def _row(self, addr):
        mm = self._mm
        try:
            if addr & (PAGE_SIZE - 1):
                return None, 0
        except TypeError:
            return None, 0
        v = mm.find_vma(addr)
        if v is None or v._used is None:
            return None, 0
        r = (addr - v.start) >> 12
        if not v._used[r]:
            return None, 0
        return v, r

    def __getitem__(self, addr) -> Pte:
        v, r = self._row(addr)
        if v is None:
            raise KeyError(addr)
        return Pte(v, r, self._mm.machine)

    def get(self, addr, default=None):
        v, r = self._row(addr)
        if v is None:
            return default
        return Pte(v, r, self._mm.machine)

    def __contains__(self, addr) -> bool:
        return self._row(addr)[0] is not None

    def __len__(self) -> int:
        return self._mm._nptes

    def __iter__(self):
        for v in list(self._mm.vmas):
            yield from (v.rows() * PAGE_SIZE + v.start).tolist()

    def _items(self):
        m = self._mm.machine
        for v in list(self._mm.vmas):
            rows = v.rows().tolist()
            start = v.start
            for r in rows:
                yield start + r * PAGE_SIZE, Pte(v, r, m)

    def items(self):
        return _PtItems(self)

    def values(self):
        return _PtValues(self)


class _PtItems(ItemsView):
    def __iter__(self):
        return self._mapping._items()


class _PtValues(ValuesView):
    def __iter__(self):
        return (p for _a, p in self._mapping._items())


class Mm:
    """A process address space (``struct mm_struct``)."""

    def __init__(self, machine: "Machine", pid: int, comm: str = ""):
        self.machine = machine
        self.pid = pid
        self.comm = comm
        self.vmas: list[Vma] = []
        self._starts: list[int] = []         # the VMAs' starts, for bisect
        self._hint: Vma | None = None        # the VMA found last
        self._nptes = 0
        self.ptes = PageTable(self)
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
        i = bisect.bisect_right(self._starts, start)
        for v in self.vmas[max(0, i - 1):i + 1]:
            if v.start < end and start < v.end:
                raise ValueError(f"mmap: {start:#x}-{end:#x} overlaps {v.start:#x}-{v.end:#x}")
        vma = Vma(start, end, flags, name)
        self._insert_vma(vma)
        if self.merge_any and self.machine.ksm is not None:
            self.machine.ksm.vma_merge_any(self, vma)
        return vma

    def _insert_vma(self, vma: Vma) -> None:
        i = bisect.bisect_right(self._starts, vma.start)
        self.vmas.insert(i, vma)
        self._starts.insert(i, vma.start)

    def split_vma(self, vma: Vma, cut: int) -> Vma:
        """Split ``vma`` at ``cut`` (``split_vma``): the new VMA [cut, end) takes the page-table
        rows there; returns it."""
        right = vma._split_at(cut)
        self._insert_vma(right)
        return right

    def find_vma(self, addr: int) -> Vma | None:
        v = self._hint
        if v is not None and v.start <= addr < v.end:
            return v
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            v = self.vmas[i]
            if addr < v.end:
                self._hint = v
                return v
        return None

    def _vma_or_fault(self, addr: int) -> Vma:
        vma = self.find_vma(addr)
        if vma is None:
            raise InputError(f"pid {self.pid}: no mapping at {addr:#x} (segfault)")
        return vma

    # -- page table -------------------------------------------------------------------------
    def _set_pte(self, vma: Vma, addr: int, pfn: int, writable: bool) -> Pte:
        """Set the PTE at ``addr``: mapping frame ``pfn`` (0: the zero page), no swap entry,
        not the KSM zero page, accessed and born now."""
        if vma._used is None:
            vma._alloc()
        r = (addr - vma.start) >> 12
        clock = self.machine.tick()
        if not vma._used[r]:
            vma._used[r] = 1
            self._nptes += 1
        vma._pfn[r] = pfn
        vma._swp[r] = -1
        vma._wr[r] = 1 if writable else 0
        vma._kz[r] = 0
        vma._atime[r] = vma._birth[r] = clock
        vma.anon_vma = True
        return Pte(vma, r, self.machine)

    def _clear_pte(self, vma: Vma, addr: int) -> None:
        if vma._used is None:
            return
        r = (addr - vma.start) >> 12
        if vma._used[r]:
            vma._used[r] = 0
            vma._pfn[r] = vma._swp[r] = -1
            vma._wr[r] = vma._kz[r] = 0
            vma._atime[r] = vma._birth[r] = 0
            self._nptes -= 1

    def populate(self, addr: int, data) -> Frame:
        """Fault in a private anonymous page at ``addr`` holding ``data`` (a write fault)."""
        addr &= ~(PAGE_SIZE - 1)
        vma = self._vma_or_fault(addr)
        old = self.ptes.get(addr)
        if old is not None:
            self.machine._unmap(self, addr, old)
        f = self.machine.alloc_frame(data)
        f.mapcount = 1
        self._set_pte(vma, addr, f.pfn, True)
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
            self._set_pte(vma, base, 0, False)
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
        n = 0
        for v in self.vmas:
            if v._used is not None:
                n += int(np.count_nonzero(np.frombuffer(v._pfn, np.int64) > 0))
        return n

    def __repr__(self):
        return f"Mm(pid={self.pid}, comm={self.comm!r}, vmas={len(self.vmas)}, ptes={len(self.ptes)})"


#: the frame-table columns of a machine: (attribute, array type code, value of an unused row)
FT_COLUMNS = (("_mapcount", "i", 0), ("_pins", "i", 0), ("_ksm", "B", 0), ("_freed", "B", 0),
              ("_srcid", "h", -1), ("_srcidx", "q", 0), ("_hash", "Q", 0), ("_hashed", "B", 0))


class Machine:
    """Physical memory (frames and the zero page), processes, and the hooks mechanisms use.

    The frame table is a set of arrays indexed by pfn (pfns are never reused): ``_mapcount``,
    ``_pins``, ``_ksm`` (PageKsm), ``_freed``, ``_srcid``/``_srcidx`` (the page set, an index
    into ``_sources``, and page a frame is an unwritten view of; -1: it holds its own bytes),
    ``_hash``/``_hashed`` (the cached XXH64); the bytes of frames that hold their own in
    ``_own`` (pfn -> bytes/bytearray), the stable node of KSM pages in ``_stable_nodes``.
    :class:`Frame` is a view of one row."""

    def __init__(self, bus: EventBus | None = None):
        self.bus = bus if bus is not None else EventBus()
        self._next_pfn = PFN_BASE
        for name, code, fill in FT_COLUMNS:
            setattr(self, name, _col(code, fill, PFN_BASE))
        self._own: dict[int, bytes | bytearray] = {0: bytearray(PAGE_SIZE)}
        self._stable_nodes: dict = {}
        self._sources: list = []
        self._source_ids: dict[int, int] = {}
        self.zero_frame = Frame(self, 0)         # the shared zero page (never freed)
        self._mapcount[0] = 1 << 30
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

    def frame(self, pfn: int) -> Frame:
        """The frame ``pfn`` (the zero page for 0)."""
        return self.zero_frame if pfn == 0 else Frame(self, pfn)

    def _source_id(self, ps) -> int:
        s = self._source_ids.get(id(ps))
        if s is None:
            s = self._source_ids[id(ps)] = len(self._sources)
            self._sources.append(ps)             # kept alive while frames view it
        return s

    def frame_column(self, name: str) -> np.ndarray:
        """A frame-table column as a numpy view (drop it before the next frame is allocated)."""
        a = getattr(self, name)
        return np.frombuffer(a, np.dtype(a.typecode))

    def alloc_frame(self, data=None, src=None, idx: int = 0) -> Frame:
        """A new frame holding ``data`` (copied unless ``bytes``), or a view of page ``idx`` of
        the page set ``src`` (no copy until written), or zeros."""
        p = self._next_pfn
        self._next_pfn = p + 1
        self.frames_allocated += 1
        self._mapcount.append(0)
        self._pins.append(0)
        self._ksm.append(0)
        self._freed.append(0)
        self._hash.append(0)
        self._hashed.append(0)
        if src is not None:
            self._srcid.append(self._source_id(src))
            self._srcidx.append(idx)
        else:
            self._srcid.append(-1)
            self._srcidx.append(0)
            # bytes are immutable: kept as they are (a write copies them); anything else is copied
            self._own[p] = bytearray(PAGE_SIZE) if data is None else data if type(data) is bytes else bytearray(data)
        return Frame(self, p)

    def _add_frames(self, n: int, sid: int, idxs) -> int:
        """``n`` new frames mapped once each (pfns returned from the first): views of pages
        ``idxs`` of source ``sid``, or (``sid`` -1) frames whose bytes the caller puts in
        ``_own``."""
        p = self._next_pfn
        self._next_pfn = p + n
        self.frames_allocated += n
        self._mapcount.extend(_col("i", 1, n))
        for name in ("_pins", "_ksm", "_freed", "_hash", "_hashed"):
            a = getattr(self, name)
            a.extend(_col(a.typecode, 0, n))
        self._srcid.extend(_col("h", sid, n))
        if sid >= 0:
            self._srcidx.extend(_arange(idxs.start, n) if type(idxs) is range and idxs.step == 1
                                else array("q", idxs))
        else:
            self._srcidx.extend(_col("q", 0, n))
        return p

    def free_frame(self, f: Frame) -> None:
        self._freed[f.pfn] = 1
        self._own.pop(f.pfn, None)               # its bytes are gone
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
        p = f.pfn
        if p == 0:
            return
        mc = self._mapcount[p] - 1
        self._mapcount[p] = mc
        if mc == 0:
            self.free_frame(f)

    def _unmap(self, mm: Mm, addr: int, pte: Pte) -> None:
        f = pte.frame
        if f is not None:
            if pte.ksm_zero and self.ksm is not None:
                self.ksm.zero_page_unmapped(mm)
            self._put_frame(f)
        elif pte.swp is not None and self.swap is not None:
            self.swap.swap_free(pte.swp)

    def replace_page(self, mm: Mm, addr: int, new: Frame, writable: bool = False, ksm_zero: bool = False) -> None:
        """Point ``mm``'s PTE at ``addr`` to ``new`` (KSM's ``replace_page``): the old frame
        loses a mapping and is freed when it has none left."""
        pte = mm.ptes[addr]
        old = pte.frame
        if new is not self.zero_frame:
            self._mapcount[new.pfn] += 1
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
        if pte is None:
            return
        f = pte.frame
        if f is None:
            return
        if f.ksm or pte.ksm_zero:
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
            n = len(arr)
            vma = mm.mmap(base, n * PAGE_SIZE, name="[pageset]")
            rows = np.arange(n, dtype=np.int64)
            self._fault_in([(mm, vma, rows, rows)], range(n), pages if view else None, arr)
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
        # fault the pages in, in manifest order (one tick of the access clock each): the rows
        # of each VMA, and each one's position in that order
        groups: dict[int, tuple] = {}
        for i, (pid, va) in enumerate(zip(pids, vaddrs)):
            mm = by_pid[pid]
            vma = mm.find_vma(va)
            g = groups.get(id(vma))
            if g is None:
                g = groups[id(vma)] = (mm, vma, [], [])
            g[2].append((va - vma.start) >> 12)
            g[3].append(i)
        self._fault_in([(mm, vma, np.array(r, np.int64), np.array(k, np.int64)) for mm, vma, r, k in groups.values()],
                       range(len(pids)), pages if view else None, arr)
        return order

    def _fault_in(self, groups, idxs, src, arr) -> None:
        """Map page ``idxs[k]`` of the set at row ``rows[j]`` of ``vma`` for each ``(mm, vma,
        rows, ks)`` of ``groups`` with ``ks[j] == k`` (fresh, untouched rows; ``k`` is also the
        page's place in the order of the access clock): a private writable frame each, a view
        of ``src`` when given, else a copy of ``arr``'s row."""
        n = len(idxs)
        if src is not None:
            p0 = self._add_frames(n, self._source_id(src), idxs)
        else:
            p0 = self._add_frames(n, -1, ())
            own = self._own
            for k, i in enumerate(idxs):
                d = arr[i]
                own[p0 + k] = d if type(d) is bytes else bytearray(d)
        clock = self._clock
        for mm, vma, rows, ks in groups:
            if vma._used is None:
                vma._alloc()
            np.frombuffer(vma._used, np.uint8)[rows] = 1
            np.frombuffer(vma._pfn, np.int64)[rows] = p0 + ks
            np.frombuffer(vma._wr, np.uint8)[rows] = 1
            t = clock + 1 + ks
            np.frombuffer(vma._atime, np.int64)[rows] = t
            np.frombuffer(vma._birth, np.int64)[rows] = t
            vma.anon_vma = True
            mm._nptes += len(rows)
        self._clock = clock + n

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
