"""The method of claim 1 of US 9,977,598, step by step as claimed.

On swap-out of a candidate page from the first memory space (a process's address space) to
the second (compressed memory):

1. compress the candidate page to obtain a first compressed page;
2. take a first hash value *of the first compressed page*;
3. if the compressed page is **smaller** than a predetermined size (parameter
   ``predetermined_size``, default zram's huge threshold, derived from the zsmalloc class
   table), compare, using the first hash value, with the hash values of the stored
   *compressed* pages, all of them smaller than that size; on a match, **map the virtual
   address** of the candidate to the found compressed page;
4. if the compressed page is **larger**, compare, using the first hash value, with the hash
   values kept for the stored *uncompressed* pages, whose compressed forms were larger than
   that size; on a match, map the virtual address to the found uncompressed page.

The claim does not cover the case where the compressed page equals the predetermined size.
The model treats it as the larger case, where zram stores the page whole, and its events say
``branch="equal (as larger)"``.

On a miss, the page is stored: compressed if it is smaller than the size, else uncompressed.
It is then indexed by its hash. The "specific data structure" of claim 2 is these two hash
indexes. "Mapping a virtual address to the found page" is modelled on the chain: the
candidate's PTE gets a swap entry that names the found page's slot, and that slot's
``swap_map`` count rises. No new slot is made (link ``virtual address -> stored page``).

Identity: ``identity="full"`` (the default) confirms a hash match by comparing the bytes:
the compressed bytes in the small case, the raw page in the large case. ``"hash-only"`` does
what the claim literally recites, a comparison *using* hash values, and nothing more. With a
colliding hash it can share different contents, and the read-back check reports it. Claim 1
does not mention same-filled pages, so the store compresses every page
(``same_filled=False``); ``True`` adds zram's same-filled shortcut in front.
"""
from __future__ import annotations

from ..hashes import get_hash
from ..pages import PAGE_SIZE
from ..swap import SwapDevice
from ..zram import ZramDevice, is_same_filled
from . import events as dev
from .base import Mechanism, register

INDEX_ENTRY_SIZE = 40       # model assumption: rb_node 24 + hash 8 + page reference 8 per stored page


@register
class PatentClaim1(Mechanism):
    name = "patent_claim1"
    title = "US 9,977,598 claim 1 (the claimed method)"
    link = dev.LINK_VA_STORED
    when = dev.WHEN_SWAPOUT
    hashes = "the compressed page (first hash value of the first compressed page), XXH64 by default"
    identity = "hash comparison within the size branch; confirmed by a full compare unless identity=hash-only"
    metadata = f"{INDEX_ENTRY_SIZE} B index entry per stored page (model assumption; the patent gives no sizes)"
    source = "US 9,977,598 B2 (MediaTek), claim 1; priority 2014-10-27"

    def __init__(self, algo="kernel-lz4", mem_limit=0, hash="xxhash64", predetermined_size=None,
                 identity="full", same_filled=False):
        super().__init__(algo, mem_limit)
        if identity not in ("full", "hash-only"):
            raise ValueError("identity is 'full' or 'hash-only'")
        self.hash_name, self.hash_fn = get_hash(hash)
        self.predetermined_size = predetermined_size
        self.identity_mode = identity
        self.same_filled = same_filled
        self.variant = f"identity={identity}, hash={self.hash_name}, same_filled={int(same_filled)}"

    def attach(self, machine, nslots):
        self.device = ZramDevice(nslots * PAGE_SIZE, self.algo, mem_limit=self.mem_limit, bus=machine.bus,
                                 detect_same_filled=self.same_filled)
        if self.predetermined_size is None:
            self.predetermined_size = self.device.huge_class_size
        self.variant += f", predetermined_size={self.predetermined_size}"
        self.swapdev = SwapDevice(machine, self, nslots)
        self.small: dict[int, list[int]] = {}      # hash -> slots of stored compressed pages
        self.large: dict[int, list[int]] = {}      # hash -> slots of stored uncompressed pages
        self.slot_key: dict[int, tuple[str, int]] = {}

    # -- the swap backend ------------------------------------------------------------------------
    def swap_out_pages(self, datas, ctxs, swapdev: SwapDevice) -> list:
        return [self._swap_out_one(bytes(d), ctx, swapdev) for d, ctx in zip(datas, ctxs)]

    def _swap_out_one(self, page: bytes, ctx, swapdev: SwapDevice):
        w = self.work
        bus = self.device.bus
        listening = bus.enabled
        if self.same_filled and is_same_filled(page)[0]:
            slot = swapdev.get_slot()
            self.device.write_page(slot, page)
            return slot
        block, _cached = self.device.comp.compress(page)          # 1. compress the candidate page
        w.compressions += 1
        clen = len(block)
        h = self.hash_fn(block)                                   # 2. hash of the compressed page
        w.pages_hashed += 1
        w.bytes_hashed += clen
        if listening:
            bus.emit(dev.DedupHash(self.name, "compressed object", self.hash_name, clen, dev.WHEN_SWAPOUT, h))
        if clen < self.predetermined_size:                        # 3. smaller: stored compressed pages
            branch, index, what = "smaller", self.small, "compressed page"
        else:                                                     # 4. larger: stored uncompressed pages
            branch = "larger" if clen > self.predetermined_size else "equal (as larger)"
            index, what = self.large, "uncompressed page"
        for slot in index.get(h, ()):
            if self.identity_mode == "full":
                if index is self.small and self.device.size[slot] != PAGE_SIZE:
                    stored = self.device.pool.read(self.device.handle[slot], self.device.size[slot])
                    equal = stored == block
                    nbytes = clen
                else:                       # stored whole (the larger branch, or zram's huge rule)
                    stored = self.device.pool.read(self.device.handle[slot], PAGE_SIZE)
                    equal = stored == page
                    nbytes = PAGE_SIZE
                w.compares += 1
                w.bytes_compared += nbytes
                if listening:
                    bus.emit(dev.DedupCompare(self.name, "full compare", what, nbytes, equal))
            else:
                equal = True
                w.compares += 1
                if listening:
                    bus.emit(dev.DedupCompare(self.name, "hash only", what, 8, True))
            if equal:
                if listening:
                    pid, va = ctx
                    bus.emit(dev.DedupShare(self.name, dev.LINK_VA_STORED, f"pid {pid} va {va:#x} ({branch})",
                                            f"slot {slot}", swapdev.swap_map[slot] + 1))
                return slot                                      # map the virtual address to it
        slot = swapdev.get_slot()
        ok = self.device.write_page(slot, page) if index is self.small else self.device.store_uncompressed(slot, page, block)
        if not ok:
            swapdev.put_slot(slot)
            return None
        index.setdefault(h, []).append(slot)
        self.slot_key[slot] = ("small" if index is self.small else "large", h)
        return slot

    def load(self, slot: int) -> bytes:
        return self.device.read_page(slot)

    def slot_free_notify(self, slot: int) -> None:
        key = self.slot_key.pop(slot, None)
        if key is not None:
            index = self.small if key[0] == "small" else self.large
            index[key[1]].remove(slot)
            if not index[key[1]]:
                del index[key[1]]
        self.device.slot_free_notify(slot)
        if self.device.bus.enabled:
            self.device.bus.emit(dev.DedupRelease(self.name, dev.LINK_VA_STORED, f"slot {slot}", 0, True))

    def compact(self) -> None:
        self.device.compact()

    # -- measures --------------------------------------------------------------------------------
    def saved_bytes(self) -> int:
        sm = self.swapdev.swap_map
        return sum((sm[s] - 1) * self.device.size[s] for s in self.slot_key if sm[s] > 1)

    def metadata_bytes(self) -> int:
        return len(self.slot_key) * INDEX_ENTRY_SIZE

    def pages_merged(self) -> int:
        sm = self.swapdev.swap_map
        return sum(sm[s] - 1 for s in self.slot_key if sm[s] > 1)

    def mm_stat(self) -> dict:
        return self.device.mm_stat()
