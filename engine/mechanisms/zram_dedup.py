"""zram inline handle dedup (Joonsoo Kim, 2017, "zram: implement deduplication in zram").

Inline in the write path, after the same-filled test and *before* compression: a 32-bit
checksum of the uncompressed page (``jhash`` as posted, ``xxhash`` as later Android ports);
hash buckets (``clamp(num_pages >> 7, 1024, 2**31)``) of trees of ``zram_entry`` ordered by
checksum; every entry with an equal checksum is tried, newest first, and verified by a full
compare (the stored object is decompressed unless it was stored as a whole page). On a match
the slot points at the existing entry, whose refcount goes up (``slot -> handle``): no
compression and no allocation. ``dup_data_size`` counts the compressed bytes not stored;
``meta_data_size`` counts the 48-byte entries.

Variants: ``compare="all"`` (the later series) or ``"first"`` (v1: only the first entry with
an equal checksum); ``accounting="consistent"`` (``compr_data_size`` counts each stored
object once) or ``"port"`` (a vendor port's drift: added once per new object, subtracted for
every freed slot).
"""
from __future__ import annotations

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash, hash_rows
from ..pages import PAGE_SIZE
from ..zram import ZRAM_HUGE, ZRAM_SAME, ZramDevice
from . import events as dev
from .base import ZramLevelMechanism, register

ZRAM_ENTRY_SIZE = 48        # struct zram_entry {rb_node 24, len 4, checksum 4, refcount 8, handle 8}
BUCKET_SIZE = 16            # spinlock + rb_root per hash bucket


class ZramEntry:
    __slots__ = ("handle", "len", "checksum", "refcount")

    def __init__(self, handle: int, length: int, checksum: int):
        self.handle = handle
        self.len = length
        self.checksum = checksum
        self.refcount = 1


class ZramDedupDevice(ZramDevice):
    """A zram device whose slots point at refcounted ``zram_entry`` objects."""

    mechanism = "zram_dedup"

    def __init__(self, disksize, algo=DEFAULT_COMPRESSOR, mem_limit=0, bus=None, hash="jhash", compare="all",
                 accounting="consistent", work=None):
        super().__init__(disksize, algo, mem_limit, bus)
        self.hash_name, self.hash_fn = get_hash(hash)
        self.compare = compare
        self.accounting = accounting
        self.hash_size = min(max(self.num_pages >> 7, 1024), 1 << 31)
        self.index: dict[int, list[ZramEntry]] = {}   # checksum -> entries, newest first
        self.entries = 0
        self.dup_data_size = 0
        self.work = work
        self._pending: list[int] = []      # checksums of the current batch, in store order

    def _chunk_hook(self, chunk, same_flags) -> None:
        rows = chunk[same_flags == 0]
        self._pending = hash_rows(self.hash_name, self.hash_fn, rows)[::-1] if len(rows) else []

    @property
    def meta_data_size(self) -> int:
        return self.entries * ZRAM_ENTRY_SIZE

    def write_page(self, index: int, page) -> bool:
        self._pending = []
        return super().write_page(index, page)

    def _store_nonsame(self, index, page, block, cached) -> bool:
        w = self.work
        checksum = (self._pending.pop() if self._pending else self.hash_fn(page)) & 0xFFFFFFFF
        w.pages_hashed += 1
        w.bytes_hashed += PAGE_SIZE
        listening = self.bus.enabled
        if listening:
            self.bus.emit(dev.DedupHash(self.mechanism, "uncompressed page", self.hash_name, PAGE_SIZE,
                                        dev.WHEN_INLINE, checksum))
        cands = self.index.get(checksum)
        if cands:
            page_b = bytes(page)
            for entry in (cands if self.compare == "all" else cands[:1]):
                data = self.pool.read(entry.handle, entry.len)
                if entry.len != PAGE_SIZE:
                    data = self.comp.decompress(data, PAGE_SIZE)
                    w.decompressions += 1
                w.compares += 1
                w.bytes_compared += PAGE_SIZE
                equal = data == page_b
                if listening:
                    self.bus.emit(dev.DedupCompare(self.mechanism, "full compare", "uncompressed page",
                                                   PAGE_SIZE, equal))
                if equal:
                    return self._share(index, entry)
        w.compressions += 1
        ok = self._store_object(index, page, block, cached)
        if ok:
            entry = ZramEntry(self.handle[index], self.size[index], checksum)
            self.handle[index] = entry
            self.index.setdefault(checksum, []).insert(0, entry)
            self.entries += 1
        return ok

    def _share(self, index: int, entry: ZramEntry) -> bool:
        entry.refcount += 1
        self.dup_data_size += entry.len
        self._slot_free(index, "overwrite")
        self.handle[index] = entry
        self.size[index] = entry.len
        if entry.len == PAGE_SIZE:
            self.flags[index] = ZRAM_HUGE
            self.huge_pages += 1
        self.pages_stored += 1
        if self.bus.enabled:
            self.bus.emit(dev.DedupShare(self.mechanism, dev.LINK_SLOT_HANDLE, f"slot {index}",
                                         f"handle {entry.handle:#x}", entry.refcount))
        return True

    def _slot_free(self, index: int, reason: str) -> None:
        fl = self.flags[index]
        entry = self.handle[index]
        if fl & ZRAM_SAME or not isinstance(entry, ZramEntry):
            return super()._slot_free(index, reason)
        size = self.size[index]
        if fl & ZRAM_HUGE:
            self.huge_pages -= 1
        entry.refcount -= 1
        freed = entry.refcount == 0
        if freed:
            self.index[entry.checksum].remove(entry)
            if not self.index[entry.checksum]:
                del self.index[entry.checksum]
            self.pool.free(entry.handle)
            self.entries -= 1
            if self.accounting == "consistent":
                self.compr_data_size -= size
        else:
            self.dup_data_size -= entry.len
        if self.accounting == "port":
            self.compr_data_size -= size
        if self.bus.enabled:
            self.bus.emit(dev.DedupRelease(self.mechanism, dev.LINK_SLOT_HANDLE, f"handle {entry.handle:#x}",
                                           entry.refcount, freed))
        self.pages_stored -= 1
        self.flags[index] = 0
        self.handle[index] = 0
        self.size[index] = 0

    def read_page(self, index: int) -> bytes:
        entry = self.handle[index]
        if isinstance(entry, ZramEntry):
            data = self.pool.read(entry.handle, entry.len)
            if entry.len == PAGE_SIZE:
                return data
            self.work_decompressions += 1
            return self.comp.decompress(data, PAGE_SIZE)
        return super().read_page(index)

    def mm_stat(self) -> dict:
        d = super().mm_stat()
        d["dup_data_size"] = self.dup_data_size
        d["meta_data_size"] = self.meta_data_size
        return d


@register
class ZramDedup(ZramLevelMechanism):
    name = "zram_dedup"
    title = "zram inline dedup (Joonsoo Kim, 2017)"
    link = dev.LINK_SLOT_HANDLE
    when = dev.WHEN_INLINE
    hashes = "the uncompressed page, 32-bit jhash as posted (xxhash in later ports), before compression"
    identity = "checksum match, then a full compare with the stored page (decompressed unless stored whole)"
    metadata = f"zram_entry {ZRAM_ENTRY_SIZE} B per stored object + {BUCKET_SIZE} B per hash bucket"
    source = "LKML 2017, Message-ID 1494556204-25796-1-git-send-email-iamjoonsoo.kim@lge.com; Android ports"
    kind = "design"
    date = "2017-05-12"
    reference = "kim-dedup-2017-v5"
    summary = "inline zram dedup: jhash of the uncompressed page, full compare, slot repointed to a refcounted entry"

    def __init__(self, algo=DEFAULT_COMPRESSOR, mem_limit=0, hash="jhash", compare="all", accounting="consistent"):
        super().__init__(algo, mem_limit)
        self.hash = hash
        self.compare = compare
        self.accounting = accounting
        self.variant = f"hash={get_hash(hash)[0]}, compare={compare}, accounting={accounting}"

    def make_device(self, disksize, bus):
        return ZramDedupDevice(disksize, self.algo, self.mem_limit, bus, hash=self.hash, compare=self.compare,
                               accounting=self.accounting, work=self.work)

    def saved_bytes(self) -> int:
        return self.device.dup_data_size

    def metadata_bytes(self) -> int:
        return self.device.meta_data_size + self.device.hash_size * BUCKET_SIZE

    def pages_merged(self) -> int:
        return sum(e.refcount - 1 for lst in self.device.index.values() for e in lst)
