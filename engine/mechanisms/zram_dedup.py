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

Where nobody listens for events, the device runs a compiled write path with the same results
(``engine._dedup_fast``): the checksums, and the compression of pages whose checksum was not
seen before, in the worker threads; the lookup, the full compare of the decompressed object,
the share or the store, page by page in order, in machine code over arrays. The work counters
stay the kernel's: a page that turns out to be a duplicate was not compressed, whatever the
model computed ahead. The Python path below is the reference it is tested against.
"""
from __future__ import annotations

import numpy as np

from .. import hashes
from ..compress import DEFAULT_COMPRESSOR, KernelLZ4
from ..errors import PagemergeError
from ..hashes import get_hash, hash_rows
from ..pages import PAGE_SIZE
from ..zram import ZRAM_HUGE, ZRAM_SAME, ZramDevice, BatchBuffers
from ..zsmalloc import HANDLE_BASE
from . import events as dev
from .base import Work, ZramLevelMechanism, register

ZRAM_ENTRY_SIZE = 48        # struct zram_entry {rb_node 24, len 4, checksum 4, refcount 8, handle 8}
BUCKET_SIZE = 16            # spinlock + rb_root per hash bucket
_M32 = 0xFFFFFFFF


class ZramEntry:
    __slots__ = ("handle", "len", "checksum", "refcount")

    def __init__(self, handle: int, length: int, checksum: int):
        self.handle = handle
        self.len = length
        self.checksum = checksum
        self.refcount = 1


class ZramDedupDevice(ZramDevice):
    """A zram device whose slots point at refcounted ``zram_entry`` objects.

    Two paths with the same results: the Python one below (the reference; it runs while
    someone listens for events, or with ``compiled = False``) and the compiled one of
    ``engine._dedup_fast`` (hash in the worker threads, lookup, compare, share or store in
    machine code), which keeps the entries and the hash index in arrays while it owns them;
    touching ``handle``, ``size`` or ``index`` converts them back, exactly.
    """

    mechanism = "zram_dedup"
    #: the methods the compiled path stands in for (see ZramDevice.compiled_eligible)
    COMPILED_HOOKS = ZramDevice.COMPILED_HOOKS + ("_share",)
    OBJECT_FORM_ATTRS = ZramDevice.OBJECT_FORM_ATTRS + ("index",)

    def __init__(self, disksize, algo=DEFAULT_COMPRESSOR, mem_limit=0, bus=None, hash="jhash", compare="all",
                 accounting="consistent", work=None):
        if compare not in ("all", "first"):
            raise ValueError("compare is 'all' or 'first'")
        if accounting not in ("consistent", "port"):
            raise ValueError("accounting is 'consistent' or 'port'")
        super().__init__(disksize, algo, mem_limit, bus)
        self.hash_name, self.hash_fn = get_hash(hash)
        self.compare = compare
        self.accounting = accounting
        self.hash_size = min(max(self.num_pages >> 7, 1024), 1 << 31)
        self.index: dict[int, list[ZramEntry]] = {}   # checksum -> entries, newest first
        self.entries = 0
        self.dup_data_size = 0
        self.work = work if work is not None else Work()
        #: the entry table, its free stack, the hash chains' heads and the dedup scalars while
        #: the compiled path owns the state (engine._dedup_fast); None in object form
        self._dd = None
        self._seen = None                  # the filter of the speculative compression
        self._W = None

    @property
    def meta_data_size(self) -> int:
        return self.entries * ZRAM_ENTRY_SIZE

    def pages_merged(self) -> int:
        """Slots that share an entry with an earlier one: the sum of (refcount - 1)."""
        if self._dd is not None:
            from .._dedup_fast import DD_NEXT, E_REF
            E, _, _, DD = self._dd
            ref = E[:DD[DD_NEXT], E_REF]
            return int(np.maximum(ref - 1, 0).sum())
        return sum(e.refcount - 1 for lst in self.index.values() for e in lst)

    # -- the Python path (the reference) ------------------------------------------------------
    def write_page(self, index: int, page) -> bool:
        """Store one page: the same-filled test, then the checksum of the uncompressed page and
        the lookup (``store_page``), which compresses and allocates only when no stored page
        is identical."""
        return super().write_page(index, page)

    def prepare_batch(self, chunk, same_flags):
        """The checksum of every page of the batch that is not same-filled."""
        out = [None] * chunk.shape[0]
        rows = np.flatnonzero(same_flags == 0)
        if len(rows):
            for r, c in zip(rows.tolist(), hash_rows(self.hash_name, self.hash_fn, chunk[rows])):
                out[r] = c
        return out

    def store_page(self, index, page, block, cached, prepared=None) -> bool:
        w = self.work
        checksum = (prepared if prepared is not None else self.hash_fn(page)) & _M32
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
        ok = self.store_object(index, page, block, cached)
        if ok:
            entry = ZramEntry(self.handle[index], self.size[index], checksum)
            self.handle[index] = entry
            self.index.setdefault(checksum, []).insert(0, entry)
            self.entries += 1
        return ok

    def _share(self, index: int, entry: ZramEntry) -> bool:
        entry.refcount += 1
        self.dup_data_size += entry.len
        self.slot_free(index, "overwrite")
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

    def slot_free(self, index: int, reason: str) -> None:
        fl = self.flags[index]
        entry = self.handle[index]
        if fl & ZRAM_SAME or not isinstance(entry, ZramEntry):
            return super().slot_free(index, reason)
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
        self.check_index(index)
        if self.in_array_form() and not self.bus.enabled:
            return super().read_page(index)        # compiled: the entry named by compiled_object_id
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

    # -- the compiled path (engine._dedup_fast) -----------------------------------------------
    def _hash_kind(self) -> int:
        from .. import _dedup_fast as DF
        fn = self.hash_fn
        if fn is hashes.jhash:
            return DF.HASH_JHASH
        if fn is hashes.xxhash32 or fn is hashes.xxhash64:       # both stored as the low 32 bits
            return DF.HASH_XXH
        if fn is hashes.weak:
            return DF.HASH_ZERO
        return DF.HASH_GIVEN                                      # any other function: in Python

    def slots_to_arrays(self):
        from .. import _dedup_fast as DF
        n = self.num_pages
        E = np.empty((n + 1, DF.E_COLS), np.int64)
        EF = np.empty(n + 1, np.int64)
        BH = np.full(DF.bucket_count(n), -1, np.int64)
        DD = np.zeros(DF.DD_COLS, np.int64)
        eid: dict[int, int] = {}
        rows = []
        for lst in self.index.values():
            for entry in reversed(lst):                              # oldest first
                eid[id(entry)] = len(rows)
                rows.append(((entry.handle - HANDLE_BASE) >> 3, entry.len, entry.checksum, entry.refcount))
        m = len(rows)
        if m:
            E[:m, :4] = np.array(rows, np.int64)
        DF.load_chains(E, BH, np.arange(m, dtype=np.int64))
        DD[DF.DD_DUP], DD[DF.DD_ENTRIES], DD[DF.DD_NEXT] = self.dup_data_size, self.entries, m
        zh = np.array([eid[id(h)] if isinstance(h, ZramEntry) else h for h in self.handle], np.uint64)
        self._dd = (E, EF, BH, DD)
        return zh, np.array(self.size, np.int64)

    def slots_from_arrays(self, slots) -> None:
        from .. import _dedup_fast as DF
        zh, zsz = slots
        E, _, BH, DD = self._dd
        self._dd = None
        order = np.empty(int(DD[DF.DD_NEXT]), np.int64)
        m = DF.entries_in_chain_order(E, BH, order)
        objs: dict[int, ZramEntry] = {}
        index: dict[int, list[ZramEntry]] = {}
        for e, (hid, length, checksum, ref) in zip(order[:m].tolist(), E[order[:m], :4].tolist()):
            entry = ZramEntry(HANDLE_BASE + (hid << 3), length, checksum)
            entry.refcount = ref
            objs[e] = entry
            index.setdefault(checksum, []).append(entry)             # chain order: newest first
        handle = zh.tolist()
        fl = np.frombuffer(self.flags, np.uint8)
        for i in np.flatnonzero((zsz != 0) & ((fl & ZRAM_SAME) == 0)).tolist():
            handle[i] = objs[handle[i]]
        self.handle = handle
        self.size = zsz.tolist()
        self.index = index
        self.entries = int(DD[DF.DD_ENTRIES])
        self.dup_data_size = int(DD[DF.DD_DUP])

    def sync_stats(self, D) -> None:
        super().sync_stats(D)
        if self._dd is not None:
            from .. import _dedup_fast as DF
            DD = self._dd[3]
            self.entries = int(DD[DF.DD_ENTRIES])
            self.dup_data_size = int(DD[DF.DD_DUP])
        W = self._W
        if W is not None and W.any():
            w = self.work
            w.pages_hashed += int(W[0])
            w.bytes_hashed += int(W[1])
            w.compares += int(W[2])
            w.bytes_compared += int(W[3])
            w.compressions += int(W[4])
            w.decompressions += int(W[5])
            W[:] = 0

    def compiled_buffers(self, k, width, gathering) -> BatchBuffers:
        b = super().compiled_buffers(k, width, gathering)
        b.csums = np.zeros(k, np.int64)
        b.comped = np.zeros(k, np.uint8)
        return b

    def compiled_gathered(self, chunk, b) -> None:
        from .. import _dedup_fast as DF
        if self._hash_kind() == DF.HASH_GIVEN:
            fn = self.hash_fn
            b.csums[:chunk.shape[0]] = [fn(r) & _M32 for r in chunk]

    def _fast_params(self):
        comp = self.comp
        lz4 = isinstance(comp, KernelLZ4)
        return lz4, int(comp.acceleration if lz4 else comp.rle)

    def compiled_prepare_task(self):
        from .. import _dedup_fast as DF
        if self._seen is None:
            self._seen = np.zeros(DF.SEEN_SIZE, np.uint8)
        seen = self._seen
        lz4, param = self._fast_params()
        detect = bool(self.detect_same_filled)
        kind = self._hash_kind()
        prepare = DF.prepare

        def task(chunk, lo, hi, b):
            prepare(chunk, lo, hi, b.sflags, b.fills, b.out, b.lengths, b.csums, b.comped, detect, lz4, param, kind,
                    seen)
        return task

    def compiled_store_batch(self, chunk, b, idx, start, io_end, use_io, D, failed_out, skipped_out) -> None:
        from .. import _dedup_fast as DF
        from .._zram_fast import PAGE_SIZE as _P
        from ..compress import _lz4_kernel, _lzo_kernel
        k = chunk.shape[0]
        zh, zsz = self.slot_arrays
        zf = np.frombuffer(self.flags, np.uint8)
        pa = self.pool.arrays
        E, EF, BH, DD = self._dd
        if self._W is None:
            self._W = np.zeros(DF.W_COLS, np.int64)
        W = self._W
        lz4, param = self._fast_params()
        compare_all = self.compare == "all"
        port = self.accounting == "port"
        scratch = np.empty(_P, np.uint8)
        dpage = np.empty(_P, np.uint8)
        table = np.empty(1 << _lz4_kernel.HASH_LOG, np.uint16)
        dct = np.empty(_lzo_kernel.D_SIZE, np.uint16)
        ahead = int(np.count_nonzero(b.comped[:k]))
        runs = int(DD[DF.DD_RUNS])

        def step(j):
            return DF.store_batch(pa.tup(), chunk, b.out, b.lengths, b.sflags, b.fills, b.csums, b.comped, idx, start,
                                  j, io_end, use_io, zf, zh, zsz, D, failed_out, skipped_out, E, EF, BH, DD, W,
                                  compare_all, port, lz4, param, scratch, dpage, table, dct)
        try:
            self.compiled_store_loop(step, k, idx, start)
        finally:
            self.comp.compressions += ahead + int(DD[DF.DD_RUNS]) - runs      # what actually ran

    def compiled_store_failed(self, status, row) -> None:
        raise PagemergeError(f"{self.algorithm}: a stored object did not decompress to a page")

    def compiled_object_id(self, slot_handle: int) -> int:
        """In array form a slot holds its entry's row; the entry names the pool's handle."""
        from .._dedup_fast import E_HID
        return int(self._dd[0][slot_handle, E_HID])

    def compiled_free_slots(self, indexes) -> bool:
        if not self.in_array_form() or not self.compiled_eligible():
            return False
        from .. import _dedup_fast as DF
        E, EF, BH, DD = self._dd
        with self.array_state() as a:
            DF.free_slots(a.pool.tup(), a.flags, a.handle, a.size, a.stats, E, EF, BH, DD,
                          np.asarray(indexes, np.int64).reshape(-1), self.accounting == "port")
        return True


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
        return self.device.pages_merged()
