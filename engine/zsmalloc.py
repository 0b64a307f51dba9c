"""zsmalloc, the allocator behind zram: size classes, zspages, handles, fullness, compaction.

This is the real algorithm of ``mm/zsmalloc.c`` (x86-64, 4 KiB pages, chain size 8), not a
formula: objects live in zspages that hold their actual bytes, handles point at objects,
zspages move between fullness groups, and ``compact`` migrates objects like ``zs_compact``.
The pool's page count (``total_pages``, zram's ``mem_used_total / 4096``) after any sequence
of allocations, frees and compactions equals the kernel's.

Vocabulary (the kernel's):

* **size class**: objects of one slot size; ``pages_per_zspage`` pages hold
  ``objs_per_zspage`` slots. Neighbouring indexes with the same geometry share one class.
* **zspage**: a chain of 1..8 pages carved into slots; keeps a LIFO free list of slot indexes
  in the first 8 bytes of each free slot (``next << 1``).
* **handle**: a stable token the user keeps (the kernel's is the address of an 8-byte slab
  object holding the encoded location ``pfn << 24 | obj_idx``). Non-huge objects start with
  an 8-byte header ``handle | 1``; the payload follows.
* **fullness group**: 0 empty, 1..10 by tenths of use, 11 full. Allocation takes the head of
  the fullest non-full group; every group change inserts at the head of the new list.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from . import events as ev
from .events import EventBus
from .pages import PAGE_SIZE

ZS_MIN_ALLOC_SIZE = 32
ZS_MAX_ALLOC_SIZE = PAGE_SIZE
ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> 8           # 16
ZS_HANDLE_SIZE = 8
ZS_SIZE_CLASSES = -(-(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA) + 1  # 255
OBJ_INDEX_BITS = 24                            # 64 - (MAX_POSSIBLE_PHYSMEM_BITS 52 - PAGE_SHIFT 12)
OBJ_ALLOCATED_TAG = 1
OBJ_TAG_BITS = 1
FULLNESS_GROUPS = 12                           # 0 empty, 1..10 "<= x0%", 11 full
GROUP_EMPTY, GROUP_FULL = 0, 11
_U64 = (1 << 64) - 1
_END_LINK = (_U64 << OBJ_TAG_BITS) & _U64      # all ones << 1: end of the free list
_ALLOC_ORDER = tuple(range(GROUP_FULL - 1, -1, -1))
_pack_u64 = struct.Struct("<Q").pack_into
#: first handle value (handles are 8-byte aligned "slab addresses")
HANDLE_BASE = 0xFFFF888000000000
#: first page frame number handed to zspages
PFN_BASE = 0x100000
#: the pool's attributes that hold object state (absent while the state is in arrays)
_OBJECT_STATE = ("size_class", "classes", "_class_by_request", "_handles", "_free_handles", "_next_handle",
                 "_free_pfns", "_next_pfn", "_next_zspage_id")


def zspage_chain_size(class_size: int, max_pages: int = 8) -> int:
    """Pages per zspage: the count in 1..max_pages wasting the fewest bytes (first wins)."""
    if class_size & (class_size - 1) == 0:
        return 1
    best, best_waste = 1, None
    for i in range(1, max_pages + 1):
        waste = (i * PAGE_SIZE) % class_size
        if best_waste is None or waste < best_waste:
            best, best_waste = i, waste
    return best


def size_class_index(size: int) -> int:
    """Class index for an allocation of ``size`` bytes *including* the 8-byte handle header."""
    idx = 0
    if size > ZS_MIN_ALLOC_SIZE:
        idx = -(-(size - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA)
    return min(ZS_SIZE_CLASSES - 1, idx)


class SizeClass:
    __slots__ = ("index", "size", "pages_per_zspage", "objs_per_zspage", "huge", "fullness",
                 "objs_allocated", "objs_inuse", "indexes")

    def __init__(self, index: int, size: int, pages_per_zspage: int, objs_per_zspage: int):
        self.index = index
        self.size = size
        self.pages_per_zspage = pages_per_zspage
        self.objs_per_zspage = objs_per_zspage
        self.huge = objs_per_zspage == 1 and pages_per_zspage == 1
        # one dict per group used as an ordered set; the *last* key is the list head
        self.fullness: list[dict[Zspage, None]] = [dict() for _ in range(FULLNESS_GROUPS)]
        self.objs_allocated = 0
        self.objs_inuse = 0
        self.indexes: list[int] = []           # every table index that maps to this class

    def group_of(self, inuse: int) -> int:
        if inuse == 0:
            return GROUP_EMPTY
        if inuse == self.objs_per_zspage:
            return GROUP_FULL
        return (100 * inuse // self.objs_per_zspage) // 10 + 1

    @property
    def zspages(self) -> int:
        return self.objs_allocated // self.objs_per_zspage

    def __repr__(self):
        return (f"SizeClass(index={self.index}, size={self.size}, pages={self.pages_per_zspage}, "
                f"objs={self.objs_per_zspage})")


class Zspage:
    """A chain of pages carved into equal slots, with the real bytes of its objects."""

    __slots__ = ("id", "cls", "inuse", "free", "mem", "handles", "pfns", "group")

    def __init__(self, zid: int, cls: SizeClass, pfns: list[int]):
        self.id = zid
        self.cls = cls
        self.inuse = 0
        n = cls.objs_per_zspage
        self.free = list(range(n - 1, -1, -1))  # stack: free[-1] is the free-list head (obj 0)
        self.mem = bytearray(cls.pages_per_zspage * PAGE_SIZE)
        self.handles: list[int] = [0] * n       # handle of the object in each slot (0 = free)
        self.pfns = pfns
        self.group = GROUP_EMPTY
        if not cls.huge:
            # free-list links in the first word of each slot: slot i -> i + 1, last -> end
            words = np.frombuffer(self.mem, dtype=np.uint64)
            stride = cls.size // 8
            links = (np.arange(1, n + 1, dtype=np.uint64) << np.uint64(OBJ_TAG_BITS))
            links[-1] = np.uint64(_END_LINK)
            words[0:stride * n:stride] = links
            del words

    def obj_offset(self, obj_idx: int) -> int:
        return obj_idx * self.cls.size

    def encoded_obj(self, obj_idx: int) -> int:
        """The kernel's ``obj`` value: pfn of the page the object starts in << 24 | obj_idx."""
        off = obj_idx * self.cls.size
        return (self.pfns[off // PAGE_SIZE] << OBJ_INDEX_BITS) | obj_idx

    def __hash__(self):
        return self.id

    def __eq__(self, other):
        return self is other

    def __repr__(self):
        return f"Zspage(id={self.id}, class={self.cls.index}, inuse={self.inuse}/{self.cls.objs_per_zspage})"


@dataclass
class ZsPoolStats:
    pages_allocated: int
    pages_compacted: int
    objs_allocated: int
    objs_inuse: int
    zspages: int


class ZsPool:
    """A zsmalloc pool. ``malloc``/``write``/``read``/``free``/``compact`` as ``zs_*``.

    Extension interface (what a pool design such as object folding, in
    ``engine.mechanisms.zsmalloc_fold``, overrides or calls; everything else is private):

    * objects and handles, in the kernel's names: ``location(handle)`` (the zspage and
      object index a handle names), ``record_obj(handle, zspage, idx)`` (point a handle at
      an object), ``cache_free_handle(handle)`` (forget a handle without touching its
      object), ``obj_free(zspage, idx)`` (put a slot back on its zspage's free list),
      ``putback_zspage(zspage)`` (file a zspage in its fullness group), ``free_zspage(zspage,
      reason)``, ``size_classes()`` (the distinct classes in either form);
    * hooks: ``obj_migrated(src, idx, dst, new_idx)`` (compaction moved an object) and
      ``expected_handles()`` (what ``check`` counts);
    * the array form of zram's compiled paths: ``arrays`` (``engine._zram_fast.PoolArrays``,
      or None while the state is in objects), ``enter_arrays(expect_pages)`` and
      ``leave_arrays()``, which a design with state of its own extends, and
      ``OBJECT_FORM_ATTRS``, the attributes absent in array form (touching one converts the
      pool back; a design adds its own).
    """

    OBJECT_FORM_ATTRS = _OBJECT_STATE

    def __init__(self, name: str = "zram", max_pages_per_zspage: int = 8, bus: EventBus | None = None):
        self.name = name
        self.bus = bus if bus is not None else EventBus()
        self.max_pages_per_zspage = max_pages_per_zspage
        self.size_class: list[SizeClass] = [None] * ZS_SIZE_CLASSES  # type: ignore[list-item]
        self.huge_class_size = 0
        prev: SizeClass | None = None
        for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
            size = min(ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA, ZS_MAX_ALLOC_SIZE)
            ppz = zspage_chain_size(size, max_pages_per_zspage)
            objs = ppz * PAGE_SIZE // size
            if ppz != 1 and objs != 1 and not self.huge_class_size:
                # the largest class that packs more than one object into a multi-page zspage;
                # zram stores anything whose compressed length reaches this as a whole page
                self.huge_class_size = size - (ZS_HANDLE_SIZE - 1)
            if prev is not None and prev.pages_per_zspage == ppz and prev.objs_per_zspage == objs:
                self.size_class[i] = prev
                prev.indexes.append(i)
                continue
            prev = SizeClass(i, size, ppz, objs)
            prev.indexes.append(i)
            self.size_class[i] = prev
        # the class for each zs_malloc request size (payload bytes 0..4096), looked up once
        self._class_by_request: list[SizeClass] = [
            self.size_class[size_class_index(s + ZS_HANDLE_SIZE)] for s in range(ZS_MAX_ALLOC_SIZE + 1)]
        self.classes: list[SizeClass] = []     # distinct classes, largest index first
        for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
            c = self.size_class[i]
            if c.index == i:
                self.classes.append(c)
        self.pages_allocated = 0
        self.pages_compacted = 0
        self._handles: dict[int, tuple[Zspage, int]] = {}
        self._free_handles: list[int] = []
        self._next_handle = HANDLE_BASE
        self._free_pfns: list[int] = []
        self._next_pfn = PFN_BASE
        self._next_zspage_id = 1
        #: the pool's state as arrays while zram's compiled write path owns it (see
        #: ``enter_arrays``); None while the state is in objects (``Zspage``, dicts)
        self._arrays = None

    # -- array form (zram's compiled write path) ---------------------------------------------
    @property
    def arrays(self):
        """The pool's state as arrays (``engine._zram_fast.PoolArrays``) while zram's compiled
        paths own it; None while it is in objects."""
        return self._arrays

    def __getattr__(self, name):
        # Only reached when normal lookup fails: in array form the object state is absent, and
        # touching any part of it converts the pool back first, so every method sees objects.
        d = self.__dict__
        if name in type(self).OBJECT_FORM_ATTRS and d.get("_arrays") is not None:
            self.leave_arrays()
            return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def enter_arrays(self, expect_pages: int = 0):
        """Move the pool's state into arrays (``engine._zram_fast.PoolArrays``), exactly:
        every zspage with its id, class, bytes, page frames, free list and place in its
        fullness list, every handle's location, and the free stacks of handles and frames."""
        if self._arrays is not None:
            return self._arrays
        from . import _zram_fast as F
        classes = self.classes
        C = np.zeros((ZS_SIZE_CLASSES, F.C_COLS), np.int64)
        for c in classes:
            C[c.index] = (c.size, c.pages_per_zspage, c.objs_per_zspage, c.huge, c.objs_allocated, c.objs_inuse)
        CR = np.array([c.index for c in self._class_by_request], np.int64)
        order = [z for c in classes for g in range(FULLNESS_GROUPS) for z in c.fullness[g]]
        slot_of = {z.id: s for s, z in enumerate(order)}
        next_hid = (self._next_handle - HANDLE_BASE) >> 3
        next_frame = self._next_pfn - PFN_BASE
        # ``expect_pages``: the most objects the caller expects (zram: its slots), so the
        # arrays are reserved once (uncommitted until used) instead of grown step by step
        pa = F.PoolArrays(C, CR, cap_h=max(1024, next_hid + 1024, expect_pages + 2),
                          cap_z=max(256, len(order) + 256, expect_pages + 2),
                          cap_frames=max(next_frame + 256, F._reserve_frames(expect_pages)))
        pa.H[:next_hid] = -1
        Z, ZP, CH, A = pa.Z, pa.ZP, pa.CH, pa.A
        for c in classes:
            for g in range(FULLNESS_GROUPS):
                lst = [slot_of[z.id] for z in c.fullness[g]]          # oldest first; the last is the head
                if not lst:
                    continue
                CH[c.index, g] = lst[-1]
                for i, s in enumerate(lst):
                    Z[s, F.Z_NEXT] = lst[i - 1] if i > 0 else -1
                    Z[s, F.Z_PREV] = lst[i + 1] if i + 1 < len(lst) else -1
        for s, z in enumerate(order):
            c = z.cls
            frames = [p - PFN_BASE for p in z.pfns]
            Z[s, F.Z_ID], Z[s, F.Z_CLS], Z[s, F.Z_INUSE], Z[s, F.Z_GROUP] = z.id, c.index, z.inuse, z.group
            Z[s, F.Z_FREE] = z.free[-1] if z.free else -1
            Z[s, F.Z_HUGEH] = ((z.handles[0] - HANDLE_BASE) >> 3) if c.huge and z.handles[0] else -1
            ZP[s] = -1
            ZP[s, :len(frames)] = frames
            A[frames] = np.frombuffer(z.mem, np.uint8).reshape(len(frames), PAGE_SIZE)
        H = pa.H
        for h, (z, idx) in self._handles.items():
            hid = (h - HANDLE_BASE) >> 3
            H[hid, 0] = slot_of[z.id]
            H[hid, 1] = idx
        fh = [(h - HANDLE_BASE) >> 3 for h in self._free_handles]
        pa.HF[:len(fh)] = fh
        fp = [p - PFN_BASE for p in self._free_pfns]
        pa.PF[:len(fp)] = fp
        P = pa.P
        P[F.P_PAGES] = self.pages_allocated
        P[F.P_NEXT_FRAME] = next_frame
        P[F.P_NFREE_FRAMES] = len(fp)
        P[F.P_NEXT_HID] = next_hid
        P[F.P_NFREE_H] = len(fh)
        P[F.P_NEXT_ZID] = self._next_zspage_id
        P[F.P_NFREE_Z] = 0
        P[F.P_NEXT_ZSLOT] = len(order)
        P[F.P_LIVE] = len(self._handles)
        d = self.__dict__
        self._hidden = (self.size_class, self.classes, self._class_by_request)
        for c in classes:
            c.fullness = [dict() for _ in range(FULLNESS_GROUPS)]
        for name in type(self).OBJECT_FORM_ATTRS:
            del d[name]
        self._arrays = pa
        return pa

    def leave_arrays(self) -> None:
        """Rebuild the object state from the arrays (the inverse of ``enter_arrays``)."""
        pa = self._arrays
        if pa is None:
            return
        from . import _zram_fast as F
        size_class, classes, by_request = self._hidden
        P, C, Z, ZP, CH, A, H = pa.P, pa.C, pa.Z, pa.ZP, pa.CH, pa.A, pa.H
        zobj: dict[int, Zspage] = {}
        for c in classes:
            c.objs_allocated = int(C[c.index, F.C_ALLOC])
            c.objs_inuse = int(C[c.index, F.C_INUSE])
            c.fullness = [dict() for _ in range(FULLNESS_GROUPS)]
            words_per_slot = c.size // 8
            for g in range(FULLNESS_GROUPS):
                chain = []
                s = int(CH[c.index, g])
                while s >= 0:
                    chain.append(s)
                    s = int(Z[s, F.Z_NEXT])
                lst = c.fullness[g]
                for s in reversed(chain):                             # oldest first, head last
                    z = Zspage.__new__(Zspage)
                    z.id = int(Z[s, F.Z_ID])
                    z.cls = c
                    z.inuse = int(Z[s, F.Z_INUSE])
                    z.group = g
                    frames = ZP[s, :c.pages_per_zspage]
                    z.pfns = [int(f) + PFN_BASE for f in frames]
                    z.mem = bytearray(A[frames].tobytes())
                    z.handles = [0] * c.objs_per_zspage
                    free = []
                    i = int(Z[s, F.Z_FREE])
                    if c.huge:
                        if i >= 0:
                            free.append(i)
                    else:
                        words = np.frombuffer(z.mem, np.uint64)
                        while i >= 0:
                            free.append(i)
                            link = int(words[i * words_per_slot])
                            i = -1 if link == _END_LINK else link >> OBJ_TAG_BITS
                    free.reverse()                                    # a stack: the head is last
                    z.free = free
                    lst[z] = None
                    zobj[s] = z
        handles: dict[int, tuple[Zspage, int]] = {}
        live = np.flatnonzero(H[:P[F.P_NEXT_HID], 0] >= 0)
        for hid, s, idx in zip(live.tolist(), H[live, 0].tolist(), H[live, 1].tolist()):
            h = HANDLE_BASE + (hid << 3)
            z = zobj[s]
            z.handles[idx] = h
            handles[h] = (z, idx)
        self.size_class, self.classes, self._class_by_request = size_class, classes, by_request
        self._handles = handles
        self._free_handles = [HANDLE_BASE + (h << 3) for h in pa.HF[:P[F.P_NFREE_H]].tolist()]
        self._next_handle = HANDLE_BASE + (int(P[F.P_NEXT_HID]) << 3)
        self._free_pfns = [PFN_BASE + f for f in pa.PF[:P[F.P_NFREE_FRAMES]].tolist()]
        self._next_pfn = PFN_BASE + int(P[F.P_NEXT_FRAME])
        self._next_zspage_id = int(P[F.P_NEXT_ZID])
        self.pages_allocated = int(P[F.P_PAGES])
        self._arrays = None
        del self._hidden

    # -- geometry ---------------------------------------------------------------------------
    def class_for(self, size: int) -> SizeClass:
        """The class that ``zs_malloc(size)`` uses (size without the header)."""
        return self.size_class[size_class_index(size + ZS_HANDLE_SIZE)]

    def class_table(self) -> list[dict]:
        out = []
        for c in sorted(self.classes, key=lambda c: c.index):
            lo = min(c.indexes)
            out.append({"index": c.index, "size": c.size, "pages_per_zspage": c.pages_per_zspage,
                        "objs_per_zspage": c.objs_per_zspage, "huge": c.huge,
                        "min_request": max(1, ZS_MIN_ALLOC_SIZE + (lo - 1) * ZS_SIZE_CLASS_DELTA + 1 - ZS_HANDLE_SIZE)
                        if lo else 1,
                        "max_request": min(ZS_MAX_ALLOC_SIZE, c.size - (0 if c.huge else ZS_HANDLE_SIZE))
                        if c.index < ZS_SIZE_CLASSES - 1 else ZS_MAX_ALLOC_SIZE})
        return out

    def total_pages(self) -> int:
        """``zs_get_total_pages``: pages held by all zspages."""
        return self.pages_allocated

    # -- handles ----------------------------------------------------------------------------
    def _new_handle(self) -> int:
        if self._free_handles:
            return self._free_handles.pop()
        h = self._next_handle
        self._next_handle += 8
        return h

    def location(self, handle: int) -> tuple[Zspage, int]:
        try:
            return self._handles[handle]
        except KeyError:
            raise KeyError(f"{self.name}: invalid zsmalloc handle {handle:#x}") from None

    def handle_obj(self, handle: int) -> int:
        """The encoded object value the handle currently holds (``pfn << 24 | obj_idx``)."""
        z, i = self.location(handle)
        return z.encoded_obj(i)

    def record_obj(self, handle: int, z: Zspage, idx: int) -> None:
        """``record_obj``: the handle now names object ``idx`` of zspage ``z``."""
        self._handles[handle] = (z, idx)

    def cache_free_handle(self, handle: int) -> None:
        """``cache_free_handle``: forget ``handle`` and keep it for reuse; its object is left
        alone (a design whose handles share objects frees the object itself)."""
        del self._handles[handle]
        self._free_handles.append(handle)

    def size_classes(self) -> list[SizeClass]:
        """The distinct size classes, largest index first, in either form (touching
        ``classes`` in array form would convert the pool back)."""
        if self._arrays is not None:
            return self._hidden[1]
        return self.classes

    def live_handles(self) -> int:
        if self._arrays is not None:
            from ._zram_fast import P_LIVE
            return int(self._arrays.P[P_LIVE])
        return len(self._handles)

    # -- zspages ----------------------------------------------------------------------------
    def _alloc_zspage(self, cls: SizeClass) -> Zspage:
        pfns = []
        for _ in range(cls.pages_per_zspage):
            if self._free_pfns:
                pfns.append(self._free_pfns.pop())
            else:
                pfns.append(self._next_pfn)
                self._next_pfn += 1
        z = Zspage(self._next_zspage_id, cls, pfns)
        self._next_zspage_id += 1
        self.pages_allocated += cls.pages_per_zspage
        cls.objs_allocated += cls.objs_per_zspage
        if self.bus.enabled:
            self.bus.emit(ev.ZspageAllocated(z.id, cls.index, cls.pages_per_zspage))
        return z

    def free_zspage(self, z: Zspage, reason: str) -> None:
        """``free_zspage``: release an empty zspage (in its fullness list) and its pages."""
        cls = z.cls
        del cls.fullness[z.group][z]
        self.pages_allocated -= cls.pages_per_zspage
        cls.objs_allocated -= cls.objs_per_zspage
        self._free_pfns.extend(reversed(z.pfns))
        if self.bus.enabled:
            self.bus.emit(ev.ZspageFreed(z.id, cls.index, cls.pages_per_zspage, reason))

    @staticmethod
    def _insert(z: Zspage, group: int) -> None:
        z.group = group
        z.cls.fullness[group][z] = None

    @staticmethod
    def _fix_fullness(z: Zspage) -> int:
        g = z.cls.group_of(z.inuse)
        if g != z.group:
            cls = z.cls
            del cls.fullness[z.group][z]
            z.group = g
            cls.fullness[g][z] = None
        return g

    # -- object level -----------------------------------------------------------------------
    def obj_free(self, z: Zspage, idx: int) -> None:
        """``obj_free``: put slot ``idx`` back at the head of ``z``'s free list (the caller
        fixes the class's counts and the zspage's fullness group)."""
        if not z.cls.huge:
            nxt = z.free[-1] if z.free else None
            link = (nxt << OBJ_TAG_BITS) if nxt is not None else _END_LINK
            _pack_u64(z.mem, idx * z.cls.size, link)
        z.free.append(idx)
        z.inuse -= 1
        z.handles[idx] = 0

    def malloc(self, size: int, data=None) -> int:
        """``zs_malloc``: return a handle for an object of ``size`` payload bytes.

        With ``data``, the payload is also written (``zs_obj_write``) in the same step.
        """
        if size <= 0 or size > ZS_MAX_ALLOC_SIZE:
            raise ValueError(f"zs_malloc: invalid size {size}")
        cls = self._class_by_request[size]
        handle = self._free_handles.pop() if self._free_handles else self._new_handle()
        fl = cls.fullness
        z = None
        for g in _ALLOC_ORDER:                          # fullest non-full group first (10 .. 0)
            lst = fl[g]
            if lst:
                z = next(reversed(lst))
                break
        new = z is None
        if new:
            z = self._alloc_zspage(cls)
        # obj_malloc: pop the head of the zspage's free list, tag the header with the handle
        idx = z.free.pop()
        z.inuse += 1
        z.handles[idx] = handle
        off = idx * cls.size
        if not cls.huge:
            _pack_u64(z.mem, off, handle | OBJ_ALLOCATED_TAG)
            off += ZS_HANDLE_SIZE
        self._handles[handle] = (z, idx)
        g = cls.group_of(z.inuse)
        if new:
            z.group = g
            fl[g][z] = None
        elif g != z.group:                              # fix_fullness_group: head of the new list
            del fl[z.group][z]
            z.group = g
            fl[g][z] = None
        cls.objs_inuse += 1
        if data is not None:
            z.mem[off:off + len(data)] = data
        if self.bus.enabled:
            self.bus.emit(ev.ObjectAllocated(handle, size, cls.index, cls.size, z.id, idx))
        return handle

    def write(self, handle: int, data) -> None:
        """``zs_obj_write``: copy the payload into the object (after the header unless huge)."""
        z, idx = self._handles[handle]
        off = idx * z.cls.size + (0 if z.cls.huge else ZS_HANDLE_SIZE)
        z.mem[off:off + len(data)] = data

    def read(self, handle: int, length: int) -> bytes:
        """``zs_obj_read``: the first ``length`` payload bytes of the object."""
        z, idx = self.location(handle)
        off = idx * z.cls.size + (0 if z.cls.huge else ZS_HANDLE_SIZE)
        return bytes(z.mem[off:off + length])

    def free(self, handle: int) -> None:
        """``zs_free``: release the object; an emptied zspage is returned at once."""
        z, idx = self._handles.pop(handle)
        self.obj_free(z, idx)
        z.cls.objs_inuse -= 1
        self._free_handles.append(handle)
        if self.bus.enabled:
            self.bus.emit(ev.ObjectFreed(handle, z.cls.index, z.id, idx))
        if self._fix_fullness(z) == GROUP_EMPTY:
            self.free_zspage(z, "free")

    # -- compaction -------------------------------------------------------------------------
    @staticmethod
    def _can_compact(cls: SizeClass) -> int:
        wasted = cls.objs_allocated - cls.objs_inuse
        return (wasted // cls.objs_per_zspage) * cls.pages_per_zspage

    @staticmethod
    def _isolate(cls: SizeClass, groups) -> Zspage | None:
        for g in groups:
            lst = cls.fullness[g]
            if lst:
                z = next(reversed(lst))
                del lst[z]
                return z
        return None

    def putback_zspage(self, z: Zspage) -> int:
        """``putback_zspage``: file an isolated zspage at the head of its fullness group."""
        g = z.cls.group_of(z.inuse)
        self._insert(z, g)
        return g

    def _migrate(self, src: Zspage, dst: Zspage) -> None:
        cls = src.cls
        size = cls.size
        for idx in range(cls.objs_per_zspage):     # slots in address order
            handle = src.handles[idx]
            if not handle:
                continue
            new_idx = dst.free.pop()
            dst.inuse += 1
            dst.handles[new_idx] = handle
            so, do = idx * size, new_idx * size
            dst.mem[do:do + size] = src.mem[so:so + size]   # whole slot, header included
            self._handles[handle] = (dst, new_idx)           # record_obj: handle -> new object
            self.obj_migrated(src, idx, dst, new_idx)
            self.obj_free(src, idx)
            if self.bus.enabled:
                self.bus.emit(ev.ObjectMigrated(handle, cls.index, src.id, dst.id))
            if dst.inuse == cls.objs_per_zspage or src.inuse == 0:
                break

    def obj_migrated(self, src: Zspage, idx: int, dst: Zspage, new_idx: int) -> None:
        """Compaction moved object ``idx`` of ``src`` to ``new_idx`` of ``dst`` (its handle
        already names the new place): a hook for pools where several handles can share one
        object (folding)."""

    def _compact_class(self, cls: SizeClass) -> int:
        freed = 0
        dst = None
        dst_groups = range(GROUP_FULL - 1, GROUP_EMPTY, -1)   # 10 .. 1
        src_groups = range(GROUP_EMPTY + 1, GROUP_FULL)       # 1 .. 10
        while self._can_compact(cls) > 0:
            if dst is None:
                dst = self._isolate(cls, dst_groups)
                if dst is None:
                    break
            src = self._isolate(cls, src_groups)
            if src is None:
                break
            self._migrate(src, dst)
            if self.putback_zspage(src) == GROUP_EMPTY:
                self.free_zspage(src, "compact")
                freed += cls.pages_per_zspage
            if dst.inuse == cls.objs_per_zspage:
                self.putback_zspage(dst)
                dst = None
        if dst is not None:
            self.putback_zspage(dst)
        return freed

    def compact(self) -> int:
        """``zs_compact``: compact every class, largest first; return pages freed."""
        total = 0
        for cls in self.classes:
            freed = self._compact_class(cls)
            if freed and self.bus.enabled:
                self.bus.emit(ev.Compacted(cls.index, freed))
            total += freed
        self.pages_compacted += total
        return total

    def stats(self) -> ZsPoolStats:
        return ZsPoolStats(self.pages_allocated, self.pages_compacted,
                           sum(c.objs_allocated for c in self.classes),
                           sum(c.objs_inuse for c in self.classes),
                           sum(c.zspages for c in self.classes))

    def check(self) -> None:
        """Internal consistency (used by tests): group membership, counts, page total."""
        pages = 0
        for c in self.classes:
            n = 0
            inuse = 0
            for g, lst in enumerate(c.fullness):
                for z in lst:
                    assert z.group == g, (z, g)
                    assert c.group_of(z.inuse) == g, (z, g)
                    assert z.inuse == sum(1 for h in z.handles if h), z
                    assert z.inuse + len(z.free) == c.objs_per_zspage, z
                    n += 1
                    inuse += z.inuse
            assert n * c.objs_per_zspage == c.objs_allocated, c
            assert inuse == c.objs_inuse, c
            pages += n * c.pages_per_zspage
        assert pages == self.pages_allocated
        assert len(self._handles) == self.expected_handles()
        for h, (z, idx) in self._handles.items():
            assert z.handles[idx], (h, z, idx)            # every handle names an allocated object

    def expected_handles(self) -> int:
        """The live handles ``check`` expects: one per object in use (a design whose handles
        share objects adds its extra handles)."""
        return sum(c.objs_inuse for c in self.classes)
