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

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash
from ..zram import ZRAM_HUGE, ZRAM_SAME, ZramDevice
from . import events as dev
from .base import OfflineZramMechanism, register

ZRAM_MERGED = 8
RBTREE_NODE_SIZE = 40       # struct zram_rbtree_node {rb_node 24, handle 8, cnt 8}
HLIST_HEAD_SIZE = 8         # temporary table: one hlist_head per slot, during the scan only


class ZramMergeDevice(ZramDevice):
    mechanism = "zram_merge"

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

    def merge(self) -> int:
        """``zram_do_scan``: one offline pass; returns the number of merges made."""
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

    def _slot_free(self, index: int, reason: str) -> None:
        fl = self.flags[index]
        if not fl & ZRAM_MERGED:
            return super()._slot_free(index, reason)
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
        return len(self.device.shared) * RBTREE_NODE_SIZE

    def pages_merged(self) -> int:
        return self.device.pages_merged
