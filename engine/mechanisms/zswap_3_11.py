"""zswap as merged in Linux 3.11 (released 2013-09-02), with its zbud allocator.

Read in a Linux 3.11 tree (github.com/PKUCloud/linux-3.11-cloud, whose ``mm/zswap.c`` and
``mm/zbud.c`` are unmodified since its "Initial version of Linux-3.11" commit; line numbers
below are of those files).

zswap is a frontswap backend: a page on its way to the swap device is offered to zswap
first, keyed by its swap entry (type, offset). ``zswap_frontswap_store`` (zswap.c:603-701):

1. if the pool is over ``max_pool_percent`` of RAM (default 20, zswap.c:88) it tries to
   write back pages; the model has no notion of RAM size, so the limit is off by default
   (``max_pool_pages=0``); set, an over-limit store is refused (``pool_limit_hit`` and
   ``reject_reclaim_fail``; the write-back of old entries is not modelled);
2. the page is compressed (default compressor ``lzo``, zswap.c:83; the model uses the engine's
   ``kernel-lzo`` by default. 3.11's ``lib/lzo/lzo1x_compress.c`` is the same file as 3.14.1's
   (same git blob), against which that model's output was checked byte for byte on 1,164 pages,
   see :mod:`.zram_3_14`);
3. **the rejection rule**: the object is ``len = dlen + sizeof(struct zswap_header)``
   (zswap.c:649; the header is the 8-byte swap entry), and ``zbud_alloc`` refuses with
   ``-ENOSPC`` any ``size > PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE`` (zbud.c:260), that is
   more than 4096 - 64 - 64 = 3968 bytes: a page compressing to more than 3960 bytes is
   rejected (``reject_compress_poor``, zswap.c:652-653) and goes to the swap device
   uncompressed. zswap stores no page whole in memory;
4. otherwise the object goes into zbud and the entry into an rb-tree by swap offset
   (``zswap_rb_insert``, zswap.c:675; a dict keyed by offset in the model, since the tree's
   order decides nothing); an entry already at that offset is replaced (``duplicate_entry``).

There is no hashing and no sharing of identical pages (zswap's same-filled pages came in 4.14;
sharing of duplicates was proposed in 2016 and not merged).

zbud (zbud.c): each page holds at most two objects ("buddies"), the first after a 64-byte
header chunk and the last at the page's end, sizes rounded up to 64-byte chunks
(``NCHUNKS_ORDER 6``, zbud.c:65); an allocation takes the first page on the first non-empty
"unbuddied" list with at least as many free chunks (zbud.c:267), else a new page; a page with
both buddies moves to the "buddied" list; a page with none left is freed at once.

In the model the swap device behind zswap is a plain swap area that keeps pages whole
(:class:`~engine.mechanisms.legacy.SwapDisk`); ``mm_stat`` reports zswap's debugfs counters
under their own names.
"""
from __future__ import annotations

import numpy as np

from ..pages import PAGE_SIZE
from . import events as dev
from .base import Citation, Mechanism, register
from .legacy import SwapDisk

REF = "zswap-3.11"
NCHUNKS_ORDER = 6
CHUNK_SHIFT = 12 - NCHUNKS_ORDER
CHUNK_SIZE = 1 << CHUNK_SHIFT                 # 64
NCHUNKS = PAGE_SIZE >> CHUNK_SHIFT            # 64
ZHDR_SIZE_ALIGNED = CHUNK_SIZE
ZBUD_MAX_SIZE = PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE    # 3968
ZSWAP_HEADER_SIZE = 8                         # struct zswap_header { swp_entry_t swpentry; }
ZSWAP_ENTRY_SIZE = 48                         # struct zswap_entry: rb_node 24, offset 8, refcount 4, length 4, handle 8
FIRST, LAST = 0, 1


def size_to_chunks(size: int) -> int:
    return (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT


class _ZbudPage:
    __slots__ = ("addr", "first_chunks", "last_chunks", "mem")

    def __init__(self, addr):
        self.addr = addr
        self.first_chunks = 0
        self.last_chunks = 0
        self.mem = bytearray(PAGE_SIZE)


class ZbudPool:
    """zbud of Linux 3.11: two buddies per page."""

    def __init__(self):
        self.unbuddied: list[list[_ZbudPage]] = [[] for _ in range(NCHUNKS)]   # index 0 = list head
        self.buddied: list[_ZbudPage] = []
        self.pages: dict[int, _ZbudPage] = {}
        self.pages_nr = 0
        self._next_addr = 0xFFFF880000000000
        self._free_addrs: list[int] = []
        self._live = 0
        self.pages_compacted = 0

    @staticmethod
    def num_free_chunks(z) -> int:
        return NCHUNKS - z.first_chunks - z.last_chunks - 1

    def alloc(self, size: int) -> int:
        """``zbud_alloc``: a handle, or raises ``MemoryError('ENOSPC')`` for a too large size."""
        if size <= 0:
            raise ValueError("zbud_alloc: EINVAL")
        if size > ZBUD_MAX_SIZE:
            raise MemoryError("ENOSPC")
        chunks = size_to_chunks(size)
        z = None
        for i in range(chunks, NCHUNKS):
            if self.unbuddied[i]:
                z = self.unbuddied[i].pop(0)
                bud = FIRST if z.first_chunks == 0 else LAST
                break
        if z is None:
            addr = self._free_addrs.pop() if self._free_addrs else self._next_addr
            if addr == self._next_addr:
                self._next_addr += PAGE_SIZE
            z = _ZbudPage(addr)
            self.pages[addr] = z
            self.pages_nr += 1
            bud = FIRST
        if bud == FIRST:
            z.first_chunks = chunks
        else:
            z.last_chunks = chunks
        if z.first_chunks == 0 or z.last_chunks == 0:
            self.unbuddied[self.num_free_chunks(z)].insert(0, z)
        else:
            self.buddied.insert(0, z)
        self._live += 1
        return z.addr + ZHDR_SIZE_ALIGNED if bud == FIRST else z.addr + PAGE_SIZE - (z.last_chunks << CHUNK_SHIFT)

    def _locate(self, handle: int):
        z = self.pages[handle & ~(PAGE_SIZE - 1)]
        return z, handle - z.addr

    def write(self, handle: int, data) -> None:
        z, off = self._locate(handle)
        z.mem[off:off + len(data)] = data

    def read(self, handle: int, length: int) -> bytes:
        z, off = self._locate(handle)
        return bytes(z.mem[off:off + length])

    def free(self, handle: int) -> None:
        z, _off = self._locate(handle)
        was_buddied = z.first_chunks and z.last_chunks
        old_free = self.num_free_chunks(z)
        if (handle - ZHDR_SIZE_ALIGNED) & (PAGE_SIZE - 1):
            z.last_chunks = 0
        else:
            z.first_chunks = 0
        (self.buddied if was_buddied else self.unbuddied[old_free]).remove(z)
        self._live -= 1
        if z.first_chunks == 0 and z.last_chunks == 0:
            del self.pages[z.addr]
            self._free_addrs.append(z.addr)
            self.pages_nr -= 1
        else:
            self.unbuddied[self.num_free_chunks(z)].insert(0, z)

    # the pool interface the contract tests use
    def total_pages(self) -> int:
        return self.pages_nr

    def live_handles(self) -> int:
        return self._live

    def compact(self) -> int:
        return 0

    def check(self) -> None:
        listed = set(map(id, self.buddied))
        for i, lst in enumerate(self.unbuddied):
            for z in lst:
                assert self.num_free_chunks(z) == i and (z.first_chunks == 0 or z.last_chunks == 0)
                listed.add(id(z))
        for z in self.buddied:
            assert z.first_chunks and z.last_chunks
        assert listed == set(map(id, self.pages.values())) and len(self.pages) == self.pages_nr
        assert self._live == sum((z.first_chunks > 0) + (z.last_chunks > 0) for z in self.pages.values())


class ZswapStore:
    """frontswap store/load/invalidate of zswap 3.11 in front of a swap device."""

    def __init__(self, nslots: int, algo: str, bus, mechanism: str, max_pool_pages: int = 0, work=None):
        from ..compress import get_compressor
        self.comp = get_compressor(algo)
        self.bus = bus
        self.mechanism = mechanism
        self.pool = ZbudPool()
        self.disk = SwapDisk(nslots * PAGE_SIZE, bus)
        self.tree: dict[int, tuple[int, int]] = {}      # offset -> (handle, dlen)
        self.max_pool_pages = max_pool_pages
        self.work = work
        self.stored_pages = 0
        self.pool_limit_hit = 0
        self.reject_reclaim_fail = 0
        self.reject_compress_poor = 0
        self.duplicate_entry = 0
        self.work_compressions = 0
        self.work_decompressions = 0

    def rejects(self, dlen: int) -> bool:
        """zswap 3.11 refuses a page whose compressed length plus its 8-byte header is more
        than zbud can hold (3968 bytes)."""
        return dlen + ZSWAP_HEADER_SIZE > ZBUD_MAX_SIZE

    def store(self, offset: int, page, block: bytes | None = None) -> str:
        """Store one page at swap ``offset``; returns where it went: ``zswap`` or ``swap``
        (rejected, written to the swap device)."""
        raw = page.tobytes() if isinstance(page, np.ndarray) else bytes(page)
        if offset in self.tree:                          # zswap_rb_insert found one: replace it
            self.duplicate_entry += 1
            self._invalidate(offset)
        if self.disk.size[offset]:
            self.disk.slot_free_notify(offset)
        if self.max_pool_pages and self.pool.pages_nr > self.max_pool_pages:
            self.pool_limit_hit += 1
            self.reject_reclaim_fail += 1
            return self._to_swap(offset, raw, "pool limit")
        if block is None:
            block = self.comp.compress(raw)[0]
        self.work_compressions += 1
        dlen = len(block)
        try:
            handle = self.pool.alloc(dlen + ZSWAP_HEADER_SIZE)
        except MemoryError:
            self.reject_compress_poor += 1
            return self._to_swap(offset, raw, "compress poor")
        self.pool.write(handle, offset.to_bytes(ZSWAP_HEADER_SIZE, "little") + block)
        self.tree[offset] = (handle, dlen)
        self.stored_pages += 1
        return "zswap"

    def _to_swap(self, offset, raw, why) -> str:
        self.disk.write_page(offset, raw)
        return "swap"

    def load(self, offset: int) -> bytes:
        e = self.tree.get(offset)
        if e is None:
            return self.disk.read_page(offset)
        handle, dlen = e
        self.work_decompressions += 1
        return self.comp.decompress(self.pool.read(handle, ZSWAP_HEADER_SIZE + dlen)[ZSWAP_HEADER_SIZE:], PAGE_SIZE)

    def _invalidate(self, offset: int) -> None:
        handle, _dlen = self.tree.pop(offset)
        self.pool.free(handle)
        self.stored_pages -= 1

    def invalidate(self, offset: int) -> None:
        """``zswap_frontswap_invalidate_page`` (and the swap device's own free)."""
        if offset in self.tree:
            self._invalidate(offset)
        if self.disk.size[offset]:
            self.disk.slot_free_notify(offset)

    def compressed_bytes(self) -> int:
        return sum(d for _h, d in self.tree.values())

    def mm_stat(self) -> dict:
        """zswap's debugfs counters (3.11 names), plus the swap device's pages."""
        return {"stored_pages": self.stored_pages, "pool_pages": self.pool.pages_nr,
                "pool_limit_hit": self.pool_limit_hit, "reject_reclaim_fail": self.reject_reclaim_fail,
                "reject_compress_poor": self.reject_compress_poor, "duplicate_entry": self.duplicate_entry,
                "swap_device_pages": self.disk.pages_stored}


@register
class Zswap311(Mechanism):
    name = "zswap_3_11"
    title = "zswap in Linux 3.11 (frontswap, compress on swap-out, zbud, reject above 3960 B)"
    link = dev.LINK_NONE
    when = dev.WHEN_SWAPOUT
    hashes = "nothing"
    identity = "none: identical pages are stored twice"
    metadata = f"zswap_entry {ZSWAP_ENTRY_SIZE} B per stored page (rb-tree by swap offset)"
    source = "Linux 3.11 mm/zswap.c, mm/zbud.c"
    kind = "prior-art"
    date = "2013-09-02"
    reference = REF
    summary = "compress pages on their way to swap into zbud; pages compressing to more than 3960 B go to swap uncompressed"
    citations = (
        Citation(REF, "v3.11 mm/zswap.c:649", "len = dlen + sizeof(struct zswap_header);"),
        Citation(REF, "v3.11 mm/zswap.c:652-653", "if (ret == -ENOSPC) { zswap_reject_compress_poor++;"),
        Citation(REF, "v3.11 mm/zbud.c:260", "if (size > PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE)"),
        Citation(REF, "v3.11 mm/zswap.c:675", "ret = zswap_rb_insert(&tree->rbroot, entry, &dupentry);"),
        Citation(REF, "v3.11 mm/zswap.c:83", '#define ZSWAP_COMPRESSOR_DEFAULT "lzo"'),
        Citation(REF, "v3.11 mm/zswap.c:88", "static unsigned int zswap_max_pool_percent = 20;"),
        Citation(REF, "v3.11 mm/zbud.c:65", "#define NCHUNKS_ORDER	6"),
    )

    def __init__(self, algo="kernel-lzo", mem_limit=0, max_pool_pages=0):
        super().__init__(algo, mem_limit)
        if mem_limit:
            raise ValueError("zswap 3.11 has no mem_limit (its limit is max_pool_percent)")
        self.max_pool_pages = max_pool_pages
        self.variant = f"compressor={algo}, max_pool_pages={max_pool_pages or 'no limit'}"

    def attach(self, machine, nslots):
        from ..swap import SwapDevice
        self.device = ZswapStore(nslots, self.algo, machine.bus, self.name, self.max_pool_pages, self.work)
        self.swapdev = SwapDevice(machine, self, nslots)

    # the swap backend protocol
    def swap_out_pages(self, datas, ctxs, swapdev) -> list:
        slots = []
        for d in datas:
            slot = swapdev.get_slot()
            self.device.store(slot, d)
            slots.append(slot)
        return slots

    def load(self, slot: int) -> bytes:
        return self.device.load(slot)

    def slot_free_notify(self, slot: int) -> None:
        self.device.invalidate(slot)

    def metadata_bytes(self) -> int:
        return len(self.device.tree) * ZSWAP_ENTRY_SIZE

    def mm_stat(self) -> dict:
        return self.device.mm_stat()

    def finish(self) -> None:
        self.work.compressions += self.device.work_compressions
        self.work.decompressions += self.device.work_decompressions
        super().finish()
