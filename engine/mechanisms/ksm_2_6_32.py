"""KSM as merged in Linux 2.6.32 (released 2009-12-03).

Read in a Linux 2.6.32.2 tree (github.com/zybsyzlz/linux-2.6.32, ``mm/ksm.c`` and
``include/linux/jhash.h`` unmodified since import; line numbers below are of those files) and
its ``Documentation/vm/ksm.txt``. What differs from today's KSM (``engine.ksm``), and how the
model follows 2.6.32:

* **checksum**: ``calc_checksum`` is ``jhash2(addr, PAGE_SIZE / 4, 17)`` (ksm.c:589), and the
  ``jhash2`` of 2.6.32 is Bob Jenkins' *lookup2* (``JHASH_GOLDEN_RATIO`` 0x9e3779b9, the
  9-step ``__jhash_mix``, ``c += length * 4`` before the final mix; jhash.h:38-108), not the
  lookup3 ``jhash`` the kernel switched to in 2.6.37, nor today's XXH64. It is computed over
  the page as 1024 little-endian 32-bit words (:func:`jhash2_2632`); checked against 2.6.32's
  ``jhash.h`` built in user space on 862 pages (the embedded real-memory default and 100
  random pages), all equal; the zero page's checksum is 0x31cbe0fa. As today, it is only a
  volatility filter: identity is a full ``memcmp`` in the content-ordered trees.
* **order of the tests** (``cmp_and_merge_page``, ksm.c:1082-1175): the stable tree is
  searched *first*, for every page; only a page that matched no KSM page has its checksum
  taken, and a page whose checksum changed since its last visit is left out of the unstable
  tree. Today the checksum is taken first and a volatile page skips the stable tree too.
* **no stable-node chains, no max_page_sharing, no use_zero_pages, no smart scan**: those came
  in 4.13, 4.13, 4.11 and 6.7. The model runs the engine's ksmd with no sharing limit, so no
  chain is ever made.
* **stable tree nodes are rmap_items**: 2.6.32 had no ``struct stable_node`` (2.6.33 added
  it); the metadata is ``rmap_item`` only, 64 bytes each (ksm.c:118-130 on x86-64).
* **a KSM page left with one mapping is broken** back into an ordinary page by ksmd
  (``ksm_do_scan``, ksm.c:1324-1333); today such a page stays a KSM page.
* **max_kernel_pages** (ksm.c:165, 834-836): merging two pages into a new KSM page stops once
  ``pages_shared`` reaches it; 2.6.32's default is a quarter of RAM (ksm.c:1672), which the
  model has no notion of, so the default here is 0 (no limit) and it can be set.
* ``try_to_merge_two_pages`` allocates a fresh kernel page and copies into it (ksm.c:838);
  the model turns the scanned page into the KSM page, as today. Only the page frame number
  differs; no counter does.
* **KSM pages were not swappable** ("KSM's merged pages are at present locked into kernel
  memory for as long as they are shared: so cannot be swapped out", ksm.txt:19-21; swapping
  came in 2.6.33). On the chain this means a merged page stays at ``PTE -> KSM page`` and is
  never a swap candidate; only unmerged pages reach the swap device. 2.6.32 had no zram, so the
  swap device is a plain swap area that keeps pages whole
  (:class:`~engine.mechanisms.legacy.SwapDisk`).

Counters are those of 2.6.32's sysfs: ``pages_shared``, ``pages_sharing``, ``pages_unshared``,
``pages_volatile``, ``full_scans`` (and ``max_kernel_pages``). The engine's ksmd emits its
``ksm.*`` events (its ``ksm.checksum`` event is not emitted here, because its documentation
names XXH64); this module adds ``dedup.hash`` (the jhash2 checksum) and ``dedup.share``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..compress import DEFAULT_COMPRESSOR
from ..ksm import Ksmd, PagesMerged, RMAP_ITEM_SIZE
from ..pages import PAGE_SIZE
from . import events as dev
from .base import Citation, register
from .ksm_mechanism import KsmMechanism
from .legacy import SwapDisk

REF = "ksm-linux-2.6.32"
JHASH_GOLDEN_RATIO = 0x9E3779B9
KSM_CHECKSUM_INITVAL = 17
NO_LIMIT = 1 << 62
_M = 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _mix(a, b, c):
    a = (a - b - c) & _M; a ^= (c >> 13)
    b = (b - c - a) & _M; b ^= (a << 8) & _M
    c = (c - a - b) & _M; c ^= (b >> 13)
    a = (a - b - c) & _M; a ^= (c >> 12)
    b = (b - c - a) & _M; b ^= (a << 16) & _M
    c = (c - a - b) & _M; c ^= (b >> 5)
    a = (a - b - c) & _M; a ^= (c >> 3)
    b = (b - c - a) & _M; b ^= (a << 10) & _M
    c = (c - a - b) & _M; c ^= (b >> 15)
    return a, b, c


@njit(cache=True, nogil=True)
def _jhash2(k, initval):
    length = k.shape[0]
    a = b = np.int64(JHASH_GOLDEN_RATIO)
    c = np.int64(initval)
    i = 0
    n = length
    while n >= 3:
        a = (a + k[i]) & _M
        b = (b + k[i + 1]) & _M
        c = (c + k[i + 2]) & _M
        a, b, c = _mix(a, b, c)
        i += 3
        n -= 3
    c = (c + length * 4) & _M
    if n == 2:
        b = (b + k[i + 1]) & _M
    if n >= 1:
        a = (a + k[i]) & _M
    a, b, c = _mix(a, b, c)
    return c


def jhash2_2632(data, initval: int = KSM_CHECKSUM_INITVAL) -> int:
    """``jhash2(words, len(data) / 4, initval)`` as in Linux 2.6.32 (lookup2), over the bytes
    read as little-endian 32-bit words. With the default ``initval`` this is 2.6.32's KSM
    checksum of a page."""
    words = np.frombuffer(bytes(data), dtype="<u4").astype(np.int64)
    return int(_jhash2(words, initval))


class Ksmd2632(Ksmd):
    """ksmd with the 2.6.32 decision procedure and checksum."""

    def __init__(self, machine, *, mechanism="ksm_2_6_32", max_kernel_pages=0, tree_key=None,
                 pages_to_scan=100):
        super().__init__(machine, pages_to_scan=pages_to_scan, max_page_sharing=NO_LIMIT, use_zero_pages=False,
                         smart_scan=False, tree_key=tree_key)
        self.mechanism = mechanism
        self.max_kernel_pages = max_kernel_pages
        self.work_bytes_compared = 0

    def calc_checksum(self, page) -> int:
        self.pages_hashed += 1
        c = jhash2_2632(page.data)
        if self.bus.enabled:
            self.bus.emit(dev.DedupHash(self.mechanism, "uncompressed page", "jhash2 (lookup2, initval 17)",
                                        PAGE_SIZE, dev.WHEN_SCAN, c))
        return c

    def _shared(self, item, kpage) -> None:
        if self.bus.enabled:
            self.bus.emit(dev.DedupCompare(self.mechanism, "full compare", "uncompressed page", PAGE_SIZE, True))
            self.bus.emit(dev.DedupShare(self.mechanism, dev.LINK_PTE, f"pid {item.mm.pid} va {item.address:#x}",
                                         f"pfn {kpage.pfn:#x}", kpage.mapcount))

    def _cmp_and_merge_page(self, page, item) -> None:
        node = page.stable_node if page.ksm else None
        if node is not None and item.head is node:
            # ksm_do_scan: a KSM page this item already shares; only its last mapping left:
            # replace it by an ordinary page
            if page.mapcount == 1:
                self._break_cow(item)
                self._remove_from_tree(item)
                pte = item.mm.ptes.get(item.address)
                if pte is not None and pte.frame is not None:
                    item.oldchecksum = self.calc_checksum(pte.frame)
            return
        self._remove_from_tree(item)
        kpage = self._stable_tree_search(page)               # the stable tree first, every page
        if kpage is not None:
            ok = True if kpage == page else self._merge_one_page(item, page, kpage)
            if ok:
                old_pfn = page.pfn
                self._stable_tree_append(item, kpage.stable_node)
                self._shared(item, kpage)
                if self.bus.enabled:
                    self.bus.emit(PagesMerged(kpage.pfn, "stable_hit", ((item.mm.pid, item.address, old_pfn),),
                                              PAGE_SIZE))
            return
        if page.ksm:                                          # a forked KSM page left outside the tree
            self._break_cow(item)
            return
        checksum = self.calc_checksum(page)
        if item.oldchecksum != checksum:
            item.oldchecksum = checksum
            return
        key = self._tree_key(page)
        tree_item, tree_page = self._unstable_search_insert(item, page, key)
        if tree_item is None:
            return
        if self.max_kernel_pages and self.max_kernel_pages <= self.pages_shared:
            return                                            # try_to_merge_two_pages refuses
        tree_pfn = tree_page.pfn
        if not self._merge_one_page(item, page, None):
            return
        if not self._merge_one_page(tree_item, tree_page, page):
            self._break_cow(item)
            return
        snode = self._stable_tree_insert(page)
        self._stable_tree_append(tree_item, snode)
        self._stable_tree_append(item, snode)
        self._shared(tree_item, page)
        self._shared(item, page)
        if self.bus.enabled:
            self.bus.emit(PagesMerged(page.pfn, "unstable_match",
                                      ((tree_item.mm.pid, tree_item.address, tree_pfn),
                                       (item.mm.pid, item.address, page.pfn)), PAGE_SIZE))

    def counters_2632(self) -> dict:
        """The counters 2.6.32's /sys/kernel/mm/ksm shows."""
        return {"pages_shared": self.pages_shared, "pages_sharing": self.pages_sharing,
                "pages_unshared": self.pages_unshared, "pages_volatile": self.pages_volatile,
                "full_scans": self.seqnr, "max_kernel_pages": self.max_kernel_pages}


@register
class Ksm2632(KsmMechanism):
    name = "ksm_2_6_32"
    title = "KSM in Linux 2.6.32 (jhash2 checksum, no chains, KSM pages not swappable)"
    hashes = "the raw page, jhash2(page, 1024 words, 17) of 2.6.32 (lookup2), only as a volatility checksum"
    identity = "full 4096-byte memcmp in the stable tree (searched first), then in the unstable tree"
    metadata = f"rmap_item {RMAP_ITEM_SIZE} B per scanned page (stable tree nodes are rmap_items in 2.6.32)"
    source = "Linux 2.6.32 mm/ksm.c, include/linux/jhash.h, Documentation/vm/ksm.txt (read in 2.6.32.2)"
    kind = "prior-art"
    date = "2009-12-03"
    reference = REF
    summary = "ksmd merges identical anonymous pages (jhash2 volatility checksum, memcmp trees); merged pages stay resident"
    citations = (
        Citation(REF, "v2.6.32.2 mm/ksm.c:589", "checksum = jhash2(addr, PAGE_SIZE / 4, 17);"),
        Citation(REF, "v2.6.32.2 include/linux/jhash.h:87",
                 "static inline u32 jhash2(const u32 *k, u32 length, u32 initval)"),
        Citation(REF, "v2.6.32.2 include/linux/jhash.h:38", "#define JHASH_GOLDEN_RATIO	0x9e3779b9"),
        Citation(REF, "v2.6.32.2 mm/ksm.c:1092", "/* We first start with searching the page inside the stable tree */"),
        Citation(REF, "v2.6.32.2 mm/ksm.c:1129", "if (rmap_item->oldchecksum != checksum) {"),
        Citation(REF, "v2.6.32.2 mm/ksm.c:1328", "Replace now-unshared ksm page by ordinary page."),
        Citation(REF, "v2.6.32.2 mm/ksm.c:834-835",
                 "if (ksm_max_kernel_pages && ksm_max_kernel_pages <= ksm_pages_shared)"),
        Citation(REF, "v2.6.32.2 Documentation/vm/ksm.txt:19-21",
                 "KSM's merged pages are at present locked into kernel memory for as long as they are shared: so "
                 "cannot be swapped out like the user pages they replace"),
    )

    def __init__(self, algo=DEFAULT_COMPRESSOR, mem_limit=0, max_kernel_pages=0, hash=None):
        super().__init__(algo, mem_limit, hash=hash)
        self.max_kernel_pages = max_kernel_pages
        self.variant = f"max_kernel_pages={max_kernel_pages or 'no limit'}"

    def make_device(self, disksize, bus):
        return SwapDisk(disksize, bus)

    def attach(self, machine, nslots):
        super(KsmMechanism, self).attach(machine, nslots)
        self.ksmd = Ksmd2632(machine, mechanism=self.name, max_kernel_pages=self.max_kernel_pages,
                             tree_key=self.tree_key, pages_to_scan=max(100, nslots + 64))

    def stable_nodes(self) -> int:
        return 0                        # no struct stable_node in 2.6.32: the tree nodes are rmap_items

    def saved_bytes(self) -> int:
        return self.ksmd.pages_sharing * PAGE_SIZE

    def pages_merged(self) -> int:
        return self.ksmd.pages_sharing

    def mm_stat(self) -> dict:
        d = self.device.mm_stat()
        d["ksm"] = self.ksmd.counters_2632()
        return d
