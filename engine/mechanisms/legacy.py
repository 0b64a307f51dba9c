"""Pieces shared by the prior-art mechanisms (ESX 2002, Difference Engine 2008, KSM 2.6.32).

* :class:`SwapDisk`: the swap area of systems that had no compressed swap. A page that leaves
  memory is kept whole, uncompressed. It stands for a disk swap partition; the model keeps its
  pages in a zsmalloc pool of whole-page objects, so that the chain (PTE -> swap entry -> slot
  -> handle -> object) and the read-back check are the same as for every other mechanism. Its
  ``mm_stat`` therefore counts pages on "disk", not a zram device.
* :class:`ContentSharing`: content-based page sharing by a hash table of resident pages and a
  full compare, with ESX's "hint" entries for pages not yet shared (Waldspurger 2002, section
  4.2-4.3). Shared pages are mapped read-only into every sharer and copied on the first write.
  The engine marks such a frame with its write-protected shared-page flag (``Frame.ksm``, the
  kernel's ``PageKsm``), so a write always copies it and swap-out leaves it resident; the
  ``mm.cow`` events of those copies therefore say ``ksm=True``.
"""
from __future__ import annotations

import random

import numpy as np

from ..pages import PAGE_SIZE
from ..zram import ZRAM_HUGE, ZramDevice
from . import events as dev

#: ESX's frame entry: "Each frame is encoded compactly in 16 bytes" (section 4.3)
ESX_FRAME_SIZE = 16


class SwapDisk(ZramDevice):
    """A swap area that stores every page whole (no compression, no same-filled test)."""

    def __init__(self, disksize: int, bus=None):
        super().__init__(disksize, "kernel-lz4", 0, bus, detect_same_filled=False)

    def write_page(self, index: int, page) -> bool:
        self.check_index(index)
        raw = page.tobytes() if isinstance(page, np.ndarray) else bytes(page)
        if len(raw) != PAGE_SIZE:
            raise ValueError(f"a page is {PAGE_SIZE} bytes, got {len(raw)}")
        if self.flags[index] or self.size[index]:
            self.slot_free(index, "overwrite")
        handle = self.pool.malloc(PAGE_SIZE, raw)
        self.max_used_pages = max(self.max_used_pages, self.pool.pages_allocated)
        self.handle[index] = handle
        self.size[index] = PAGE_SIZE
        self.flags[index] = ZRAM_HUGE
        self.huge_pages += 1
        self.pages_stored += 1
        self.compr_data_size += PAGE_SIZE
        return True

    def write_pages(self, pages, indexes=None, *args, **kwargs) -> int:
        n = pages.shape[0] if isinstance(pages, np.ndarray) else len(pages)
        indexes = range(n) if indexes is None else indexes
        self.last_failed = []
        for p, i in zip(pages, indexes):
            self.write_page(i, p)
        return 0


class _Hint:
    __slots__ = ("mm", "va")

    def __init__(self, mm, va):
        self.mm = mm
        self.va = va


class _Shared:
    __slots__ = ("frame",)

    def __init__(self, frame):
        self.frame = frame


class ContentSharing:
    """A global hash table of page contents: shared frames and hint entries.

    ``scan(pages)`` visits resident pages, for each:

    1. hash the page (64-bit);
    2. no entry under that hash: the page becomes a *hint* (it is not write-protected);
    3. a *shared* entry: full compare with the shared frame; if equal the page's PTE is
       repointed to the shared frame (read-only); if not, a false match, and the page is left
       alone ("considered ineligible for sharing");
    4. a *hint* entry: the hint page is re-hashed; if its hash changed, the hint is stale and is
       replaced by the current page; else a full compare, and if equal the hint page becomes
       the shared frame (write-protected) and the current page is mapped to it.

    ``hints=False`` keeps no hints: an unmatched page is entered as a candidate all the same,
    but is never re-hashed (the table stays keyed by the hash taken when it was entered).
    """

    def __init__(self, machine, mechanism: str, hash_name: str, hash_fn, work, hints: bool = True):
        self.machine = machine
        self.mechanism = mechanism
        self.hash_name = hash_name
        self.hash_fn = hash_fn
        self.work = work
        self.hints = hints
        self.table: dict[int, object] = {}
        self.false_matches = 0
        self.stale_hints = 0

    def _hash(self, data) -> int:
        h = self.hash_fn(data)
        self.work.pages_hashed += 1
        self.work.bytes_hashed += PAGE_SIZE
        bus = self.machine.bus
        if bus.enabled:
            bus.emit(dev.DedupHash(self.mechanism, "uncompressed page", self.hash_name, PAGE_SIZE, dev.WHEN_SCAN, h))
        return h

    def _compare(self, a, b) -> bool:
        self.work.compares += 1
        self.work.bytes_compared += PAGE_SIZE
        equal = a == b
        if self.machine.bus.enabled:
            self.machine.bus.emit(dev.DedupCompare(self.mechanism, "full compare", "uncompressed page", PAGE_SIZE,
                                                   equal))
        return equal

    def _eligible(self, mm, va):
        pte = mm.ptes.get(va)
        if pte is None or pte.frame is None:
            return None
        f = pte.frame
        if f is self.machine.zero_frame or f.ksm or f.pins or f.mapcount != 1:
            return None
        return f

    def _share(self, mm, va, frame) -> None:
        self.machine.replace_page(mm, va, frame, writable=False)
        if self.machine.bus.enabled:
            self.machine.bus.emit(dev.DedupShare(self.mechanism, dev.LINK_PTE, f"pid {mm.pid} va {va:#x}",
                                                 f"pfn {frame.pfn:#x}", frame.mapcount))

    def visit(self, mm, va) -> None:
        f = self._eligible(mm, va)
        if f is None:
            return
        h = self._hash(f.data)
        e = self.table.get(h)
        if e is None:
            self.table[h] = _Hint(mm, va)
            return
        if isinstance(e, _Shared):
            sf = e.frame
            if sf.freed:                                  # every sharer wrote or left: entry gone
                self.table[h] = _Hint(mm, va)
                return
            if self._compare(sf.data, f.data):
                self._share(mm, va, sf)
            else:
                self.false_matches += 1
            return
        hf = self._eligible(e.mm, e.va)
        if hf is None or hf == f:                         # the hint page left memory or changed hands
            self.table[h] = _Hint(mm, va)
            self.stale_hints += 1
            return
        if self.hints and self._hash(hf.data) != h:       # modified since it was hashed: stale hint
            self.table[h] = _Hint(mm, va)
            self.stale_hints += 1
            return
        if not self._compare(hf.data, f.data):
            self.false_matches += 1
            return
        hf.ksm = True                                     # the hint page becomes the shared COW frame
        e.mm.ptes[e.va].writable = False
        if self.machine.bus.enabled:
            self.machine.bus.emit(dev.DedupShare(self.mechanism, dev.LINK_PTE, f"pid {e.mm.pid} va {e.va:#x}",
                                                 f"pfn {hf.pfn:#x}", hf.mapcount))
        self._share(mm, va, hf)
        self.table[h] = _Shared(hf)

    def scan(self, mms, order: str = "random", seed: int = 0) -> None:
        """One pass over every resident page of ``mms``: in a seeded random order (ESX "scans
        guest pages randomly") or in address order."""
        pages = [(mm, va) for mm in mms for va in sorted(mm.ptes)]
        if order == "random":
            random.Random(seed).shuffle(pages)
        for mm, va in pages:
            self.visit(mm, va)

    # -- measures ----------------------------------------------------------------------------
    def shared_frames(self) -> list:
        return [e.frame for e in self.table.values() if isinstance(e, _Shared) and not e.frame.freed]

    def pages_merged(self) -> int:
        return sum(f.mapcount - 1 for f in self.shared_frames() if f.mapcount > 1)

    def entries(self) -> int:
        return len(self.table)
