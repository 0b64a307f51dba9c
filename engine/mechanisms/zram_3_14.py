"""zram as of Linux 3.14 (released 2014-03-30), with the zsmalloc of that release.

Read in the Linux 3.14.1 stable tree (``drivers/block/zram/zram_drv.c``, ``zram_drv.h``,
``mm/zsmalloc.c``; the tree at github.com/nadavitay/linux-3.14.1, whose copies of these files
are unmodified since import). Line numbers below are of those files.

Write path (``zram_bvec_write``, zram_drv.c:420-527), modelled step by step:

1. a page whose words are all zero (``page_zero_filled``, :256) is not stored: the slot gets
   the ``ZRAM_ZERO`` flag and ``pages_zero`` counts it; it is **not** counted in
   ``pages_stored``, so ``orig_data_size`` leaves it out. (Same-filled pages with another
   fill word came in 4.13; today's engine counts them in ``pages_stored``.)
2. the page is compressed with LZO1X-1 (``lzo1x_1_compress``, :462). 3.14 had no other
   compressor (LZ4 and the zcomp backends came in 3.15). The default here is the engine's
   ``kernel-lzo`` model. Its output was checked byte for byte against 3.14.1's own
   ``lib/lzo/lzo1x_compress.c``, built in user space (a harness outside the repository), on
   1,164 pages (the 762 of the embedded real-memory default and 402 synthetic ones): no page
   differed in length or in bytes.
3. **size threshold**: ``if (unlikely(clen > max_zpage_size))`` (:475) the page is stored
   whole (``clen = PAGE_SIZE``), with ``max_zpage_size = PAGE_SIZE / 4 * 3`` = 3072
   (zram_drv.h:34). The comparison is strict: a page compressing to exactly 3072 bytes is
   stored compressed. (Today's rule is ``comp_len >= huge_class_size``, 3625 on this machine.)
4. ``zs_malloc(pool, clen)`` (:483), with no handle header in the object; the old object of
   the slot is freed after the new one is written; ``compr_size`` and ``pages_stored`` grow.

The 3.14 allocator, modelled here (:class:`Zs314Pool`), differs from today's (``engine.zsmalloc``):
at most 4 pages per zspage (``ZS_MAX_ZSPAGE_ORDER 2``, zsmalloc.c:108), the chain length that
maximises the used percentage (``get_pages_per_zspage``, :417), 255 classes of 16-byte steps
that are never merged, no in-object handle header (the handle is the object's location),
two fullness lists (almost full first, then almost empty, the threshold a quarter,
``fullness_threshold_frac = 4``, :186), a new or moved zspage inserted at the head of its
list, and no compaction (``zs_compact`` came in 4.1). ``mem_used_total`` is the sum of the
classes' ``pages_allocated`` (``zs_get_total_size_bytes``, :1090).

Not in 3.14 and so refused or absent: ``mem_limit`` (3.18), ``mem_used_max``, ``mm_stat``
(4.1; the statistics here are the 3.14 sysfs files under their own names), huge-page
accounting, compaction. zram 3.14 keeps no hash and shares nothing.
"""
from __future__ import annotations

import numpy as np

from .. import events as ev
from ..events import EventBus
from ..pages import PAGE_SIZE
from ..zram import ZRAM_HUGE, ZRAM_SAME, ZramDevice
from . import events as dev
from .base import Citation, ZramLevelMechanism, register

REF = "zram-3.14"
MAX_ZPAGE_SIZE = PAGE_SIZE // 4 * 3          # zram_drv.h:34 -> 3072

# mm/zsmalloc.c of 3.14 (x86-64, 4 KiB pages)
ZS_MAX_PAGES_PER_ZSPAGE = 4                  # 1 << ZS_MAX_ZSPAGE_ORDER (2)
ZS_MIN_ALLOC_SIZE = 32                       # MAX(32, 4 << PAGE_SHIFT >> OBJ_INDEX_BITS)
ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> 8         # 16
ZS_SIZE_CLASSES = (PAGE_SIZE - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA + 1   # 255
FULLNESS_THRESHOLD_FRAC = 4
OBJ_INDEX_BITS = 30                          # BITS_PER_LONG - (MAX_PHYSMEM_BITS 46 - PAGE_SHIFT)
ALMOST_FULL, ALMOST_EMPTY, EMPTY, FULL = 0, 1, 2, 3


def pages_per_zspage_314(class_size: int) -> int:
    """``get_pages_per_zspage`` of 3.14: the chain length (1..4) with the highest used
    percentage, computed in integer percent; the first one reaching the maximum wins."""
    best, best_pc = 1, 0
    for i in range(1, ZS_MAX_PAGES_PER_ZSPAGE + 1):
        size = i * PAGE_SIZE
        usedpc = (size - size % class_size) * 100 // size
        if usedpc > best_pc:
            best, best_pc = i, usedpc
    return best


def size_class_index_314(size: int) -> int:
    return -(-(size - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA) if size > ZS_MIN_ALLOC_SIZE else 0


class _Class:
    __slots__ = ("index", "size", "pages_per_zspage", "objs", "lists", "pages_allocated")

    def __init__(self, index):
        self.index = index
        self.size = min(ZS_MIN_ALLOC_SIZE + index * ZS_SIZE_CLASS_DELTA, PAGE_SIZE)
        self.pages_per_zspage = pages_per_zspage_314(self.size)
        self.objs = self.pages_per_zspage * PAGE_SIZE // self.size
        self.lists = ([], [])                # ALMOST_FULL, ALMOST_EMPTY; index 0 is the list head
        self.pages_allocated = 0

    def group_of(self, inuse: int) -> int:
        if inuse == 0:
            return EMPTY
        if inuse == self.objs:
            return FULL
        if inuse <= self.objs // FULLNESS_THRESHOLD_FRAC:
            return ALMOST_EMPTY
        return ALMOST_FULL


class _Zspage:
    __slots__ = ("id", "cls", "pfn", "free", "inuse", "group", "mem")

    def __init__(self, zid, cls, pfn):
        self.id = zid
        self.cls = cls
        self.pfn = pfn
        self.free = list(range(cls.objs - 1, -1, -1))     # pop() takes object 0 first
        self.inuse = 0
        self.group = EMPTY
        self.mem = bytearray(cls.pages_per_zspage * PAGE_SIZE)


class Zs314Pool:
    """The zsmalloc allocator of Linux 3.14, with the interface the zram device uses."""

    def __init__(self, bus: EventBus | None = None):
        self.bus = bus if bus is not None else EventBus()
        self.size_class = [_Class(i) for i in range(ZS_SIZE_CLASSES)]
        self.huge_class_size = MAX_ZPAGE_SIZE + 1
        self.pages_allocated = 0
        self.pages_compacted = 0
        self._objs: dict[int, tuple[_Zspage, int]] = {}
        self._zspages: dict[int, _Zspage] = {}
        self._next_pfn = 0x100000
        self._next_id = 1

    def total_pages(self) -> int:
        return self.pages_allocated

    def live_handles(self) -> int:
        return len(self._objs)

    @staticmethod
    def _insert(z, g):
        z.group = g
        if g < EMPTY:
            z.cls.lists[g].insert(0, z)          # insert_zspage: the new zspage becomes the head

    @staticmethod
    def _remove(z):
        if z.group < EMPTY:
            z.cls.lists[z.group].remove(z)

    def _fix(self, z) -> int:
        g = z.cls.group_of(z.inuse)
        if g != z.group:
            self._remove(z)
            self._insert(z, g)
        return g

    def malloc(self, size: int, data=None) -> int:
        if size <= 0 or size > PAGE_SIZE:
            raise ValueError(f"zs_malloc: invalid size {size}")
        cls = self.size_class[size_class_index_314(size)]
        z = cls.lists[ALMOST_FULL][0] if cls.lists[ALMOST_FULL] else \
            cls.lists[ALMOST_EMPTY][0] if cls.lists[ALMOST_EMPTY] else None     # find_get_zspage
        if z is None:
            z = _Zspage(self._next_id, cls, self._next_pfn)
            self._next_id += 1
            self._next_pfn += cls.pages_per_zspage
            self._zspages[z.id] = z
            cls.pages_allocated += cls.pages_per_zspage
            self.pages_allocated += cls.pages_per_zspage
            if self.bus.enabled:
                self.bus.emit(ev.ZspageAllocated(z.id, cls.index, cls.pages_per_zspage))
        idx = z.free.pop()
        z.inuse += 1
        self._fix(z)
        handle = (z.pfn << OBJ_INDEX_BITS) | idx          # the object's location is its handle
        self._objs[handle] = (z, idx)
        if data is not None:
            off = idx * cls.size
            z.mem[off:off + len(data)] = data
        if self.bus.enabled:
            self.bus.emit(ev.ObjectAllocated(handle, size, cls.index, cls.size, z.id, idx))
        return handle

    def read(self, handle: int, length: int) -> bytes:
        z, idx = self._objs[handle]
        off = idx * z.cls.size
        return bytes(z.mem[off:off + length])

    def free(self, handle: int) -> None:
        z, idx = self._objs.pop(handle)
        z.free.append(idx)
        z.inuse -= 1
        if self.bus.enabled:
            self.bus.emit(ev.ObjectFreed(handle, z.cls.index, z.id, idx))
        if self._fix(z) == EMPTY:
            cls = z.cls
            del self._zspages[z.id]
            cls.pages_allocated -= cls.pages_per_zspage
            self.pages_allocated -= cls.pages_per_zspage
            if self.bus.enabled:
                self.bus.emit(ev.ZspageFreed(z.id, cls.index, cls.pages_per_zspage, "free"))

    def compact(self) -> int:
        return 0                                           # no zs_compact before 4.1

    def check(self) -> None:
        for c in self.size_class:
            for g, lst in enumerate(c.lists):
                for z in lst:
                    assert z.group == g, (z.id, g)
        for z in self._zspages.values():
            assert z.group == z.cls.group_of(z.inuse) and z.group != EMPTY, z.id
            assert z.inuse + len(z.free) == z.cls.objs, z.id
            assert (z.group < EMPTY) == (z in z.cls.lists[z.group] if z.group < EMPTY else False)
        assert sum(z.inuse for z in self._zspages.values()) == len(self._objs)
        assert sum(z.cls.pages_per_zspage for z in self._zspages.values()) == self.pages_allocated
        assert sum(c.pages_allocated for c in self.size_class) == self.pages_allocated


class Zram314Device(ZramDevice):
    """A zram device with the 3.14 write path and allocator."""

    def __init__(self, disksize: int, algo="kernel-lzo", mem_limit: int = 0, bus=None):
        if mem_limit:
            raise ValueError("zram 3.14 has no mem_limit (it came in 3.18)")
        super().__init__(disksize, algo, 0, bus, detect_same_filled=True)
        self.pool = Zs314Pool(self.bus)
        self.huge_class_size = MAX_ZPAGE_SIZE + 1
        self.pages_zero = 0
        self.good_compress = 0
        self.bad_compress = 0

    # only all-zero pages are caught before compression in 3.14
    def prepare_batch(self, chunk, same_flags):
        for j in np.flatnonzero(same_flags):
            if chunk[j, :8].any():
                same_flags[j] = 0
        return None

    def write_page(self, index: int, page) -> bool:
        self.check_index(index)
        if len(page) != PAGE_SIZE:
            raise ValueError(f"zram: a page is {PAGE_SIZE} bytes, got {len(page)}")
        if bytes(page).count(0) == PAGE_SIZE:
            return self.write_same_filled_page(index, 0)
        block, cached = self.comp.compress(page)
        return self.store_page(index, page, block, cached)

    def write_same_filled_page(self, index: int, fill: int) -> bool:
        if self.bus.enabled:
            self.bus.emit(ev.SameFilledDetected(index, 0))
        self.slot_free(index, "overwrite")
        self.flags[index] = ZRAM_SAME                    # ZRAM_ZERO
        self.handle[index] = 0
        self.pages_zero += 1
        if self.bus.enabled:
            self.bus.emit(ev.SlotWritten(index, "same", 0, 0))
        return True

    def stores_whole(self, clen: int) -> bool:
        """The 3.14 rule: stored uncompressed iff ``clen > max_zpage_size``."""
        return clen > MAX_ZPAGE_SIZE

    def store_object(self, index, page, block, cached, force_huge=False) -> bool:
        clen = len(block)
        huge = force_huge or self.stores_whole(clen)
        if self.bus.enabled:
            self.bus.emit(ev.PageCompressed(index, self.algorithm, clen, huge, cached))
        if huge:
            self.bad_compress += 1
            clen = PAGE_SIZE
            block = page.tobytes() if isinstance(page, np.ndarray) else bytes(page)
        handle = self.pool.malloc(clen, block)
        self.max_used_pages = max(self.max_used_pages, self.pool.pages_allocated)
        self.slot_free(index, "overwrite")
        self.handle[index] = handle
        self.size[index] = clen
        self.flags[index] = ZRAM_HUGE if huge else 0
        self.pages_stored += 1
        self.compr_data_size += clen
        if clen <= PAGE_SIZE // 2:
            self.good_compress += 1
        if self.bus.enabled:
            self.bus.emit(ev.SlotWritten(index, "huge" if huge else "normal", clen, handle))
        return True

    def slot_free(self, index: int, reason: str) -> None:
        fl = self.flags[index]
        size = self.size[index]
        if not (fl & ZRAM_SAME) and size == 0:
            return
        if self.bus.enabled:
            self.bus.emit(ev.SlotFreed(index, reason, "same" if fl & ZRAM_SAME else "huge" if fl & ZRAM_HUGE
                                       else "normal", size))
        if fl & ZRAM_SAME:
            self.pages_zero -= 1
        else:
            if size > MAX_ZPAGE_SIZE:
                self.bad_compress -= 1
            if size <= PAGE_SIZE // 2:
                self.good_compress -= 1
            self.pool.free(self.handle[index])
            self.compr_data_size -= size
            self.pages_stored -= 1
        self.flags[index] = 0
        self.handle[index] = 0
        self.size[index] = 0

    def mm_stat(self) -> dict:
        """The 3.14 sysfs statistics (one file each; there was no ``mm_stat`` line yet)."""
        return {"orig_data_size": self.pages_stored * PAGE_SIZE, "compr_data_size": self.compr_data_size,
                "mem_used_total": self.pool.total_pages() * PAGE_SIZE, "zero_pages": self.pages_zero,
                "notify_free": self.notify_free, "failed_writes": self.failed_writes}


@register
class Zram314(ZramLevelMechanism):
    name = "zram_3_14"
    title = "zram in Linux 3.14 (compress on swap-out, whole page above max_zpage_size)"
    link = dev.LINK_NONE
    when = dev.WHEN_INLINE
    hashes = "nothing (all-zero test only)"
    identity = "none: identical pages are stored twice"
    metadata = "none beyond the slot table"
    source = "Linux 3.14 drivers/block/zram/zram_drv.c, zram_drv.h, mm/zsmalloc.c (read in 3.14.1)"
    kind = "prior-art"
    date = "2014-03-30"
    reference = REF
    summary = "compress on swap-out (LZO); a page compressing to more than 3072 bytes is stored uncompressed"
    citations = (
        Citation(REF, "v3.14.1 drivers/block/zram/zram_drv.h:31-32",
                 "Pages that compress to size greater than this are stored uncompressed in memory."),
        Citation(REF, "v3.14.1 drivers/block/zram/zram_drv.h:34",
                 "static const size_t max_zpage_size = PAGE_SIZE / 4 * 3;"),
        Citation(REF, "v3.14.1 drivers/block/zram/zram_drv.c:475", "if (unlikely(clen > max_zpage_size)) {"),
        Citation(REF, "v3.14.1 drivers/block/zram/zram_drv.c:462",
                 "ret = lzo1x_1_compress(uncmem, PAGE_SIZE, src, &clen,"),
        Citation(REF, "v3.14.1 drivers/block/zram/zram_drv.c:449", "if (page_zero_filled(uncmem)) {"),
        Citation(REF, "v3.14.1 mm/zsmalloc.c:108", "#define ZS_MAX_ZSPAGE_ORDER 2"),
        Citation(REF, "v3.14.1 mm/zsmalloc.c:186", "static const int fullness_threshold_frac = 4;"),
    )

    def __init__(self, algo="kernel-lzo", mem_limit=0):
        super().__init__(algo, mem_limit)
        self.variant = f"max_zpage_size={MAX_ZPAGE_SIZE} (clen > max_zpage_size stored whole), compressor={algo}"

    def make_device(self, disksize, bus):
        return Zram314Device(disksize, self.algo, self.mem_limit, bus)
