"""zram offline merge (Alexey Romanov, RFC, 21 Nov 2022, "Introduce merge identical pages
mechanism").

Nothing happens on store. A trigger (``echo 1 > /sys/block/zramX/merge``) scans the slots
0..N-1, skipping unallocated, same-filled (and written-back or recompressed) slots; huge slots
are included. For each slot it copies the *compressed object* and hashes it with
``xxhash(object, size, 0)`` (XXH64) into a temporary table of N buckets. It walks the bucket
newest first, skipping entries with the same handle or a different size, and memcmps the
compressed bytes. On equality, unless the current slot's handle is already shared, the slot
is repointed to the candidate's handle (``slot -> handle``), its own object is freed, a
per-device tree keyed by handle counts the sharers, ``compr_data_size`` drops by the size,
both slots are flagged MERGED and ``pages_merged`` goes up. Unmatched slots join the bucket.

``variant="posted"`` keeps the accounting of the posted code. A freed MERGED slot subtracts
its size from ``compr_data_size`` again, although the merge already did, and it decrements
``pages_merged`` for every merged slot, the surviving one included. Both counters can
therefore fall below their true values. ``variant="corrected"`` changes ``compr_data_size``
only when an object is really freed, and keeps ``pages_merged`` equal to the number of
slots that point at another slot's object.
"""
from __future__ import annotations

import numpy as np

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash
from ..zram import ZRAM_HUGE, ZRAM_SAME, ZramDevice
from . import events as dev
from .base import OfflineZramMechanism, register

ZRAM_MERGED = 8
RBTREE_NODE_SIZE = 40       # struct zram_rbtree_node {rb_node 24, handle 8, cnt 8}
HLIST_HEAD_SIZE = 8         # temporary table: one hlist_head per slot, during the scan only


class ZramMergeDevice(ZramDevice):
    """zram with Romanov's offline merge. Until a merge, its write path is upstream's
    (compiled where upstream's is); the merge, and the frees and overwrites of MERGED slots
    after it, run compiled too (``engine._offline_fast``) where nobody listens for events and
    the hash is one of ``engine.hashes``'s by name. The Python path is the reference.

    In array form the per-device tree (``shared``, ``sharers``) is one row per handle id
    (``_mtree``: the count of slots pointing at the handle, and the XOR of the MERGED slots
    pointing at it); ``shared`` and ``sharers`` are rebuilt from it and the slot table when
    touched."""

    mechanism = "zram_merge"
    #: the compiled path stands in for ``slot_free`` too (``_offline_fast.merge_slot_free``)
    COMPILED_HOOKS = ZramDevice.COMPILED_HOOKS
    OBJECT_FORM_ATTRS = ZramDevice.OBJECT_FORM_ATTRS + ("shared", "sharers")

    def __init__(self, disksize, algo=DEFAULT_COMPRESSOR, mem_limit=0, bus=None, hash="xxhash64", variant="posted",
                 work=None):
        super().__init__(disksize, algo, mem_limit, bus)
        self.hash_name, self.hash_fn = get_hash(hash)
        self.variant = variant
        self.shared: dict[int, int] = {}   # handle -> count of slots pointing at it
        self.sharers: dict[int, set[int]] = {}   # handle -> the MERGED slots pointing at it
        self.pages_merged = 0
        self.saved = 0                     # compressed bytes not stored (live)
        self.work = work
        #: the tree in array form (see the class docstring); None in the Python form
        self._mtree = None

    # -- array form ---------------------------------------------------------------------------
    def slots_to_arrays(self):
        slots = super().slots_to_arrays()
        shared, sharers = self.shared, self.sharers
        if shared:
            from .._zram_fast import HANDLE_BASE
            M = np.zeros((self._mtree_rows(), 2), np.int64)
            for h, cnt in shared.items():
                hid = (h - HANDLE_BASE) >> 3
                M[hid, 0] = cnt
                x = 0
                for i in sharers.get(h, ()):
                    x ^= i
                M[hid, 1] = x
            self._mtree = M
        else:
            self._mtree = None                     # made at the first merge
        return slots

    def slots_from_arrays(self, slots) -> None:
        super().slots_from_arrays(slots)
        M, self._mtree = self._mtree, None
        shared: dict[int, int] = {}
        sharers: dict[int, set[int]] = {}
        if M is not None:
            from .._zram_fast import HANDLE_BASE
            live = np.flatnonzero(M[:, 0] > 0)
            for hid, cnt in zip(live.tolist(), M[live, 0].tolist()):
                h = HANDLE_BASE + (hid << 3)
                shared[h] = cnt
                sharers[h] = set()
            fl = np.frombuffer(self.flags, np.uint8)
            handle = self.handle
            for i in np.flatnonzero(fl & ZRAM_MERGED).tolist():
                sharers.setdefault(handle[i], set()).add(i)
        self.shared, self.sharers = shared, sharers

    def _mtree_rows(self) -> int:
        pa = self.pool.arrays
        return max(1024, pa.H.shape[0]) if pa is not None else max(1024, self.num_pages + 2)

    def _mtree_ready(self):
        """The tree in array form, with a row for every handle id the pool can hand out."""
        M = self._mtree
        rows = self._mtree_rows()
        if M is None:
            M = self._mtree = np.zeros((rows, 2), np.int64)
        elif M.shape[0] < rows:
            M2 = np.zeros((rows, 2), np.int64)
            M2[:M.shape[0]] = M
            M = self._mtree = M2
        return M

    def _compiled_merge_state(self) -> bool:
        """In array form, with a merge tree (a MERGED slot may exist)."""
        return self.in_array_form() and self._mtree is not None

    def _merge_counters(self):
        return np.array([self.pages_merged, self.saved], np.int64)

    def _merge_sync(self, MD) -> None:
        self.pages_merged, self.saved = int(MD[0]), int(MD[1])

    def compiled_store_batch(self, chunk, b, idx, start, io_end, use_io, D, failed_out, skipped_out) -> None:
        if self._mtree is None:                    # nothing merged yet: upstream's store loop
            return super().compiled_store_batch(chunk, b, idx, start, io_end, use_io, D, failed_out, skipped_out)
        from .. import _offline_fast as O
        k = chunk.shape[0]
        self.comp.compressions += k - int(np.count_nonzero(b.sflags[:k]))
        zh, zsz = self.slot_arrays
        zf = np.frombuffer(self.flags, np.uint8)
        pa = self.pool.arrays
        MD = self._merge_counters()
        posted = self.variant == "posted"

        def step(j):
            M = self._mtree_ready()
            return O.merge_store_batch(pa.tup(), chunk, b.out, b.lengths, b.sflags, b.fills, idx, start, j, io_end,
                                       use_io, zf, zh, zsz, D, failed_out, skipped_out, M, MD, posted)
        try:
            self.compiled_store_loop(step, k, idx, start)
        finally:
            self._merge_sync(MD)

    def compiled_free_slots(self, indexes) -> bool:
        if self._mtree is None or not self._compiled_merge_state() or not self.compiled_eligible():
            return super().compiled_free_slots(indexes)
        from .. import _offline_fast as O
        zh, zsz = self.slot_arrays
        D = self.stats_array()
        MD = self._merge_counters()
        try:
            O.merge_free_slots(self.pool.arrays.tup(), np.frombuffer(self.flags, np.uint8), zh, zsz, D,
                               self._mtree_ready(), MD, self.variant == "posted",
                               np.asarray(indexes, np.int64).reshape(-1))
        finally:
            self.sync_stats(D)
            self._merge_sync(MD)
        return True

    def shared_handles(self) -> int:
        """Nodes of the per-device tree (handles with a count), in either form."""
        if self.slot_arrays is not None and "shared" not in self.__dict__:
            return 0 if self._mtree is None else int(np.count_nonzero(self._mtree[:, 0]))
        return len(self.shared)

    # -- the offline step ---------------------------------------------------------------------
    def merge(self) -> int:
        """``zram_do_scan``: one offline pass; returns the number of merges made."""
        from .. import _offline_fast as O
        from ..hashes import HASHES
        kind = O.HASH_KINDS.get(self.hash_name)
        if (kind is not None and HASHES.get(self.hash_name) is self.hash_fn and self.compiled_eligible()
                and self.enter_arrays(self.num_pages)):
            return self._merge_fast(kind)
        return self._merge_python()

    def _merge_fast(self, kind: int) -> int:
        from .. import _offline_fast as O
        from ..pages import PAGE_SIZE
        n = self.num_pages
        zh, zsz = self.slot_arrays
        D = self.stats_array()
        MD = self._merge_counters()
        W = np.zeros(O.W_COLS, np.int64)
        try:
            merges = O.merge_pass(self.pool.arrays.tup(), np.frombuffer(self.flags, np.uint8), zh, zsz, D,
                                  self._mtree_ready(), MD, W, kind, np.empty(n, np.int64), np.empty(n, np.int64),
                                  np.empty(PAGE_SIZE, np.uint8), np.empty(PAGE_SIZE, np.uint8))
        finally:
            self.sync_stats(D)
            self._merge_sync(MD)
            w = self.work
            w.pages_hashed += int(W[O.W_HASHED])
            w.bytes_hashed += int(W[O.W_HASHED_BYTES])
            w.compares += int(W[O.W_COMPARES])
            w.bytes_compared += int(W[O.W_COMPARED_BYTES])
        return int(merges)

    def _merge_python(self) -> int:
        w = self.work
        n = self.num_pages
        buckets: dict[int, list[tuple[int, bytes]]] = {}   # slot index and its object bytes
        merges = 0
        hashed = hashed_bytes = 0
        listening = self.bus.enabled
        flags, sizes, handles = self.flags, self.size, self.handle
        read, hash_fn = self.pool.read, self.hash_fn
        for index in range(n):
            size = sizes[index]
            if size == 0 or flags[index] & ZRAM_SAME:
                continue
            handle = handles[index]
            obj = read(handle, size)
            h = hash_fn(obj)
            hashed += 1
            hashed_bytes += size
            if listening:
                self.bus.emit(dev.DedupHash(self.mechanism, "compressed object", self.hash_name, size,
                                            dev.WHEN_OFFLINE, h))
            b = h % n
            lst = buckets.setdefault(b, [])
            merged = False
            for cand, cobj in lst:                   # newest first
                ch = self.handle[cand]
                if ch == handle or self.size[cand] != size:
                    continue
                w.compares += 1
                w.bytes_compared += size
                equal = cobj == obj
                if listening:
                    self.bus.emit(dev.DedupCompare(self.mechanism, "full compare", "compressed object", size, equal))
                if not equal:
                    continue
                if self.shared.get(handle, 1) > 1:
                    continue                         # the current slot's handle is already shared
                self._merge_into(index, cand, handle, ch, size)
                merges += 1
                merged = True
                break
            if not merged:
                lst.insert(0, (index, obj))
        w.pages_hashed += hashed
        w.bytes_hashed += hashed_bytes
        return merges

    def _merge_into(self, index: int, cand: int, handle: int, ch: int, size: int) -> None:
        self.handle[index] = ch
        old = self.sharers.get(handle)
        if old is not None:                       # a MERGED slot leaves its old handle's sharers
            old.discard(index)
        self.pool.free(handle)
        self.shared[ch] = self.shared.get(ch, 1) + 1
        self.compr_data_size -= size
        self.flags[index] |= ZRAM_MERGED
        self.flags[cand] |= ZRAM_MERGED
        self.sharers.setdefault(ch, set()).update((index, cand))
        self.pages_merged += 1
        self.saved += size
        if self.bus.enabled:
            self.bus.emit(dev.DedupShare(self.mechanism, dev.LINK_SLOT_HANDLE, f"slot {index}",
                                         f"handle {ch:#x}", self.shared[ch]))

    def slot_free(self, index: int, reason: str) -> None:
        fl = self.flags[index]
        if not fl & ZRAM_MERGED:
            return super().slot_free(index, reason)
        size = self.size[index]
        handle = self.handle[index]
        cnt = self.shared.get(handle, 1) - 1
        freed = cnt <= 0
        if fl & ZRAM_HUGE:
            self.huge_pages -= 1
        sh = self.sharers.get(handle)
        if sh is not None:
            sh.discard(index)
        if freed:
            self.shared.pop(handle, None)
            self.sharers.pop(handle, None)
            self.pool.free(handle)
        else:
            self.shared[handle] = cnt
            self.saved -= size
        if self.variant == "posted":
            self.compr_data_size -= size          # already subtracted by the merge: counted twice
            self.pages_merged -= 1                # also for the surviving slot
        else:
            if freed:
                self.compr_data_size -= size
            else:
                self.pages_merged -= 1
            if cnt == 1:                          # one sharer left: it is an ordinary slot again
                self.shared.pop(handle, None)
                for i in self.sharers.pop(handle, ()):
                    self.flags[i] &= ~ZRAM_MERGED
        if self.bus.enabled:
            self.bus.emit(dev.DedupRelease(self.mechanism, dev.LINK_SLOT_HANDLE, f"handle {handle:#x}",
                                           max(cnt, 0), freed))
        self.pages_stored -= 1
        self.flags[index] = 0
        self.handle[index] = 0
        self.size[index] = 0

    def mm_stat(self) -> dict:
        d = super().mm_stat()
        d["pages_merged"] = self.pages_merged
        return d


@register
class ZramMerge(OfflineZramMechanism):
    name = "zram_merge"
    title = "zram offline merge (Alexey Romanov, RFC 2022)"
    link = dev.LINK_SLOT_HANDLE
    when = dev.WHEN_OFFLINE
    hashes = "the compressed object, XXH64 (xxhash(obj, size, 0)), on the merge trigger"
    identity = "equal size and hash bucket, then memcmp of the compressed bytes"
    metadata = (f"rbtree node {RBTREE_NODE_SIZE} B per shared handle; "
                f"{HLIST_HEAD_SIZE} B per slot while a merge runs")
    source = "LKML 21 Nov 2022, Message-ID 20221121190020.66548-1-avromanov@sberdevices.ru"
    kind = "design"
    date = "2022-11-21"
    reference = "romanov-merge-2022"
    summary = "offline zram merge: XXH64 of compressed objects, memcmp, slots repointed to one handle"

    device_class = ZramMergeDevice
    offline_step = "merge"

    def saved_bytes(self) -> int:
        return self.device.saved

    def metadata_bytes(self) -> int:
        return self.device.shared_handles() * RBTREE_NODE_SIZE

    def pages_merged(self) -> int:
        return self.device.pages_merged
