"""KSM (``mm/ksm.c``): ksmd on the engine's address-space model.

ksmd walks every registered mm (``MADV_MERGEABLE`` or prctl merge-any) in address order, keeps
one **rmap_item** per present anonymous page it has seen, and for each page:

1. if the page is already a KSM page on the item's stable node: nothing to do;
2. otherwise takes the item out of any tree and computes the **checksum** (low 32 bits of
   XXH64, seed 0). A page whose checksum changed since its last visit is *volatile* and is
   left alone; a new item starts at 0, so a page merges at the earliest on its second visit;
3. with ``use_zero_pages``, a page with the zero page's checksum that really is all zeros is
   mapped to the shared zero page;
4. looks the page up in the **stable tree** (KSM pages); on a full-content match it is merged
   into that KSM page (its PTE repointed, write-protected);
5. else looks it up in the **unstable tree** (pages seen this scan); on a full-content match
   both pages are merged into a new KSM page, which is inserted in the stable tree (a
   **chain** of **dups** when an identical KSM page already holds ``max_page_sharing``
   mappings); else the page is inserted in the unstable tree.

The unstable tree is emptied at the start of every full scan. Both trees identify pages by
their full contents; the checksum is only a volatility filter.

Model notes (where this differs from the C code, and why it does not change the counters at
the quiescent points where they are compared):

* The stable tree is a real red-black tree ordered by ``memcmp`` of the pages, rebalanced as
  ``lib/rbtree.c`` does (:mod:`engine.rbtree`). A lookup therefore passes the same nodes as
  in the kernel, and it has the same side effects on them: stale nodes erased, chains
  pruned, collapsed or freed.
* The unstable tree is an index from the page's 64-bit content hash to its items, and a
  match still needs the full 4096 bytes to compare equal. The unstable walk can affect a
  node it passes only when a tree page has been unmapped or changed during the current
  scan. In the engine's scenarios, writes and unmaps happen between scans, so the index
  finds exactly what the kernel's walk finds.
* Time is virtual: each batch advances the clock by ``sleep_millisecs`` (it only matters for
  ``stable_node_chains_prune_millisecs``). The scan-time advisor is not modelled
  (``advisor_mode`` none, the default).
* One NUMA node: ``merge_across_nodes`` is accepted and has no effect.

A whole full scan runs compiled (:mod:`engine._ksm_fast`) wherever the daemon is a plain
:class:`Ksmd` with the default unstable index (listeners get the same events, in the same
order, after the scan's compiled part has run): the rmap_items and
the stable tree then live in arrays, and are given back as objects, exactly, whenever anything
else needs them (:meth:`Ksmd._objects`). The Python path here is the reference it is tested
against (``compiled=False`` keeps a daemon on it).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from ._util import no_gc
from .events import Event, EventBus, event
from .mm import VM_MERGEABLE, VM_SHARED, Frame, Machine, Mm, Vma
from .pages import PAGE_SIZE
from .rbtree import RBTree

RMAP_ITEM_SIZE = 64             # sizeof(struct ksm_rmap_item) on x86-64
STABLE_NODE_SIZE = 48           # struct ksm_stable_node: union{rb_node 24 | head ptr + hlist/list 24}, hlist_head 8, kpfn 8, rmap_hlist_len 4, nid 4
STABLE_NODE_CHAIN = -1024
SEQNR_MASK = 0xFF
ZERO_CHECKSUM = 0x32D8BBDB      # low 32 bits of XXH64(4096 zero bytes, 0)

KNOBS = ("run", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "merge_across_nodes",
         "use_zero_pages", "smart_scan", "stable_node_chains_prune_millisecs")
COUNTERS = ("pages_scanned", "pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
            "pages_skipped", "full_scans", "stable_node_chains", "stable_node_dups", "ksm_zero_pages",
            "general_profit")
KSM_STAT = ("ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages", "ksm_process_profit")
_STABLE_KEYS = ("pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "stable_node_chains",
                "stable_node_dups", "ksm_zero_pages", "general_profit")


def convergence_key(counters: dict, smart_scan) -> tuple:
    """The counters that must stop changing for ksmd to count as converged. With smart scan,
    unshared and volatile oscillate from scan to scan and only their sum is stable."""
    if smart_scan:
        return tuple(counters[k] for k in _STABLE_KEYS if k not in ("pages_unshared", "pages_volatile")) + (
            counters["pages_unshared"] + counters["pages_volatile"],)
    return tuple(counters[k] for k in _STABLE_KEYS)


# ---- events ----------------------------------------------------------------------------------
@event
class RmapItemCreated(Event):
    kind: ClassVar[str] = "ksm.rmap_item_created"
    doc: ClassVar[str] = "ksmd met a new present anonymous page in a mergeable VMA and allocated its rmap_item"
    pid: int
    vaddr: int


@event
class RmapItemFreed(Event):
    kind: ClassVar[str] = "ksm.rmap_item_freed"
    doc: ClassVar[str] = "an rmap_item was freed (its page vanished, became the zero page, or the VMA/mm left KSM)"
    pid: int
    vaddr: int


@event
class ChecksumComputed(Event):
    kind: ClassVar[str] = "ksm.checksum"
    doc: ClassVar[str] = ("ksmd hashed the raw (uncompressed) page with XXH64, kept the low 32 bits, "
                          "during its background scan; changed=True means volatile, left alone")
    pid: int
    vaddr: int
    checksum: int
    changed: bool


@event
class UnstableInsert(Event):
    kind: ClassVar[str] = "ksm.unstable_insert"
    doc: ClassVar[str] = "no identical page yet: the page's rmap_item entered the unstable tree for this scan"
    pid: int
    vaddr: int


@event
class PagesMerged(Event):
    kind: ClassVar[str] = "ksm.merge"
    doc: ClassVar[str] = ("full 4096-byte compare (memcmp) found identical pages; their PTEs were repointed "
                          "to one write-protected KSM page (how: unstable_match creates it, stable_hit joins it)")
    kpfn: int
    how: str
    repointed: tuple          # ((pid, vaddr, old_pfn), ...)
    compared_bytes: int


@event
class ZeroPageMerged(Event):
    kind: ClassVar[str] = "ksm.zero_page_merge"
    doc: ClassVar[str] = "use_zero_pages: an all-zero page's PTE was repointed to the shared zero page"
    pid: int
    vaddr: int
    old_pfn: int


@event
class StableChainCreated(Event):
    kind: ClassVar[str] = "ksm.chain_created"
    doc: ClassVar[str] = "an identical KSM page reached max_page_sharing: its stable node became a chain of dups"
    kpfn: int


@event
class StableDupCreated(Event):
    kind: ClassVar[str] = "ksm.dup_created"
    doc: ClassVar[str] = "a new KSM page was added as a dup to a stable node chain"
    kpfn: int
    dups: int


@event
class StableNodeStale(Event):
    kind: ClassVar[str] = "ksm.stable_node_stale"
    doc: ClassVar[str] = "a stable node's KSM page was freed (all mappers wrote or left); the node was removed"
    kpfn: int
    items: int


@event
class KsmUnmerge(Event):
    kind: ClassVar[str] = "ksm.unmerge"
    doc: ClassVar[str] = "break_ksm: a KSM page (or KSM zero page) mapping was replaced by a private copy"
    pid: int
    vaddr: int
    reason: str


@event
class FullScanDone(Event):
    kind: ClassVar[str] = "ksm.full_scan"
    doc: ClassVar[str] = "ksmd completed a pass over every registered mm (full_scans += 1)"
    seqnr: int


# ---- structures ----------------------------------------------------------------------------
class RmapItem:
    __slots__ = ("next", "mm", "address", "oldchecksum", "age", "remaining_skips", "unstable", "seq",
                 "head", "ukey")

    def __init__(self, mm: Mm, address: int):
        self.next: RmapItem | None = None
        self.mm = mm
        self.address = address
        self.oldchecksum = 0
        self.age = 0
        self.remaining_skips = 0
        self.unstable = False         # UNSTABLE_FLAG
        self.seq = 0                  # seqnr & 0xff when inserted in the unstable tree
        self.head: StableNode | None = None   # STABLE_FLAG iff head is not None
        self.ukey = 0                 # content hash it was filed under in the unstable tree

    def __repr__(self):
        st = "stable" if self.head else ("unstable" if self.unstable else "-")
        return f"RmapItem(pid={self.mm.pid}, {self.address:#x}, {st})"


class StableNode:
    """A KSM page's node (a "dup" when it belongs to a chain), or a chain of dups."""

    __slots__ = ("frame", "hlist", "rmap_hlist_len", "chain", "dups", "prune_time",
                 "rb_left", "rb_right", "rb_parent", "rb_red")

    def __init__(self, frame: Frame | None):
        self.frame = frame
        self.rb_left = self.rb_right = self.rb_parent = None
        self.rb_red = False
        self.hlist: dict[RmapItem, None] = {}      # rmap_items; the *last* key is the list head
        self.rmap_hlist_len = 0
        self.chain: StableNode | None = None        # the chain this dup belongs to
        self.dups: list[StableNode] | None = None    # for a chain: dups, head first
        self.prune_time = 0

    @property
    def is_chain(self) -> bool:
        return self.rmap_hlist_len == STABLE_NODE_CHAIN

    def __repr__(self):
        if self.is_chain:
            return f"StableChain(dups={len(self.dups)})"
        return f"StableNode(kpfn={self.frame.pfn:#x}, len={self.rmap_hlist_len})"


class MmSlot:
    __slots__ = ("mm", "next", "fid")

    def __init__(self, mm: Mm):
        self.mm = mm
        self.next: RmapItem | None = None           # head of the address-sorted rmap list
        self.fid = -1                               # its row in the compiled path's arrays


_HEAD = object()     # ksm_mm_head


class Ksmd:
    """The KSM daemon and its sysfs interface on one :class:`~engine.mm.Machine`."""

    def __init__(self, machine: Machine, *, pages_to_scan: int = 100, sleep_millisecs: int = 20,
                 max_page_sharing: int = 256, use_zero_pages: bool = False, smart_scan: bool = True,
                 merge_across_nodes: int = 1, stable_node_chains_prune_millisecs: int = 2000,
                 tree_key=None, compiled: bool = True):
        if machine.ksm is not None:
            raise ValueError("this machine already has a ksmd")
        machine.ksm = self
        self.machine = machine
        self.bus: EventBus = machine.bus
        self.run = 0
        self.pages_to_scan = pages_to_scan
        self.sleep_millisecs = sleep_millisecs
        if max_page_sharing < 2:
            raise ValueError("max_page_sharing must be at least 2")
        self.max_page_sharing = max_page_sharing
        self.use_zero_pages = bool(use_zero_pages)
        self.smart_scan = bool(smart_scan)
        self.merge_across_nodes = merge_across_nodes
        self.stable_node_chains_prune_millisecs = stable_node_chains_prune_millisecs
        self.now_ms = 0
        # how the unstable index files pages (a full compare always decides); replaceable for the
        # weak-hash test
        self._tree_key = tree_key if tree_key is not None else Frame.content_hash
        # global state
        self.slots: list[MmSlot] = []
        self._slot_of: dict[int, MmSlot] = {}
        self._stable = RBTree()
        self.unstable: dict[int, list[RmapItem]] = {}
        # ksm_scan cursor
        self._cur = _HEAD
        self._cur_index = -1
        self.address = 0
        self._prev = None
        self.seqnr = 0
        # counters
        self.pages_scanned = 0
        self.pages_shared = 0
        self.pages_sharing = 0
        self.pages_unshared = 0
        self.pages_skipped = 0
        self.rmap_items = 0
        self.stable_node_chains = 0
        self.stable_node_dups = 0
        self.ksm_zero_pages = 0
        # work done (for the mechanism measures)
        self.pages_hashed = 0
        self.compares = 0
        # the compiled full scan (engine._ksm_fast) where it applies; the Python path otherwise
        self.compiled = compiled
        self._fast = None

    @property
    def stable(self) -> RBTree:
        """The stable tree (as objects: taken back from the compiled path's arrays if needed)."""
        self._objects()
        return self._stable

    def _objects(self) -> None:
        """Make the rmap_items and the stable tree objects again if the compiled path holds them."""
        if self._fast is not None and self._fast.active:
            self._fast.to_objects(self)

    def _fast_ok(self) -> bool:
        """Whether the next full scan may run compiled: a whole scan of a plain Ksmd with the
        unstable index on the page's own content hash (listeners get the same events)."""
        return (self.compiled and type(self) is Ksmd and self._cur is _HEAD
                and self._tree_key is Frame.content_hash)

    def stable_node_count(self) -> int:
        """Stable nodes in the tree: chains, their dups and plain nodes."""
        if self._fast is not None and self._fast.active:
            return self._fast.stable_node_count()
        return sum(1 + (len(node.dups) if node.is_chain else 0) for node in self._stable)

    # ==== registration (madvise / prctl) ====================================================
    @staticmethod
    def _compatible(vma: Vma) -> bool:
        return not vma.flags & VM_SHARED

    def _enter(self, mm: Mm) -> None:
        """``__ksm_enter``: insert the slot just before the one the cursor is on."""
        if mm.ksm_registered:
            return
        slot = MmSlot(mm)
        mm.ksm_registered = True
        self._slot_of[id(mm)] = slot
        if self._cur is _HEAD or self.run & 2:
            self.slots.append(slot)
        else:
            i = self.slots.index(self._cur)
            self.slots.insert(i, slot)

    def _split(self, mm: Mm, start: int, end: int) -> list[Vma]:
        """Split VMAs so that [start, end) is covered by whole VMAs; return those VMAs."""
        out = []
        for vma in list(mm.vmas):
            if vma.end <= start or vma.start >= end:
                continue
            for cut in (start, end):
                if vma.start < cut < vma.end:
                    right = mm.split_vma(vma, cut)        # the page-table rows go with their pages
                    if cut == start:
                        vma = right
            out.append(vma)
        return [v for v in mm.vmas if v.start >= start and v.end <= end]

    def madvise_mergeable(self, mm: Mm, start: int, length: int) -> None:
        """``madvise(start, length, MADV_MERGEABLE)``."""
        for vma in self._split(mm, start, start + length):
            if vma.mergeable or not self._compatible(vma):
                continue
            self._enter(mm)
            vma.flags |= VM_MERGEABLE

    def madvise_unmergeable(self, mm: Mm, start: int, length: int) -> None:
        """``madvise(..., MADV_UNMERGEABLE)``: unshare every KSM page in range, clear the flag.
        The rmap_items stay until ksmd next passes this mm."""
        for vma in self._split(mm, start, start + length):
            if not vma.mergeable:
                continue
            self._unmerge_range(mm, vma, vma.start, vma.end, "madvise_unmergeable")
            vma.flags &= ~VM_MERGEABLE

    def prctl_set_memory_merge(self, mm: Mm, enable: bool) -> None:
        """``prctl(PR_SET_MEMORY_MERGE, enable)``: merge-any for every compatible VMA."""
        if enable:
            if mm.merge_any:
                return
            mm.merge_any = True
            self._enter(mm)
            for vma in mm.vmas:
                if self._compatible(vma):
                    vma.flags |= VM_MERGEABLE
        else:
            if not mm.merge_any:
                return
            for vma in mm.vmas:
                if vma.mergeable:
                    self._unmerge_range(mm, vma, vma.start, vma.end, "prctl")
                    vma.flags &= ~VM_MERGEABLE
            mm.merge_any = False

    def vma_merge_any(self, mm: Mm, vma: Vma) -> None:
        if self._compatible(vma):
            vma.flags |= VM_MERGEABLE

    def _unmerge_range(self, mm: Mm, vma: Vma, start: int, end: int, reason: str) -> None:
        """``break_ksm`` over a range: every KSM page / KSM zero page gets a private copy."""
        if vma._used is None:
            return
        lo = max(0, -(-(start - vma.start) // PAGE_SIZE))
        hi = max(lo, min(vma.npages, -(-(end - vma.start) // PAGE_SIZE)))
        used = np.frombuffer(vma._used, np.uint8)[lo:hi]
        pfn = np.frombuffer(vma._pfn, np.int64)[lo:hi]
        rows = (np.flatnonzero((used != 0) & (pfn >= 0)) + lo).tolist()
        del used, pfn
        for r in rows:
            addr = vma.start + r * PAGE_SIZE
            pte = mm.ptes.get(addr)
            if pte is None:
                continue
            f = pte.frame
            if f is not None and (f.ksm or pte.ksm_zero):
                if self.bus.enabled:
                    self.bus.emit(KsmUnmerge(mm.pid, addr, reason))
                self.machine.unshare(mm, addr)

    def exit_mm(self, mm: Mm) -> None:
        """Process exit: zap its mappings; its slot is dropped now if it has no rmap_items,
        else on ksmd's next pass (``__ksm_exit``)."""
        for vma in mm.vmas:
            for addr in list(vma._addrs):
                pte = mm.ptes[addr]
                self.machine._unmap(mm, addr, pte)
                mm._clear_pte(vma, addr)
        mm.exiting = True
        slot = self._slot_of.get(id(mm))
        has_items = slot is not None and (slot.next is not None or
                                          (self._fast is not None and self._fast.active and self._fast.has_items(slot)))
        if slot is not None and not has_items and slot is not self._cur:
            self._drop_slot(slot)

    def zero_page_unmapped(self, mm: Mm) -> None:
        """``ksm_might_unmap_zero_page``: a KSM zero page PTE went away (counted at once)."""
        self.ksm_zero_pages -= 1
        mm.ksm_zero_pages -= 1

    # ==== knobs ==============================================================================
    def set_run(self, value: int) -> None:
        if value not in (0, 1, 2):
            raise ValueError("run must be 0, 1 or 2")
        if value != self.run:
            self.run = value
            if value & 2:
                self._objects()
                self._unmerge_and_remove_all()

    def set_max_page_sharing(self, value: int) -> None:
        if value < 2:
            raise ValueError("max_page_sharing must be at least 2")
        if value == self.max_page_sharing:
            return
        if self.pages_shared:
            raise OSError(16, "EBUSY: max_page_sharing changes only while pages_shared is 0")
        self._objects()
        self._remove_all_stable_nodes()
        self.max_page_sharing = value

    # ==== counters ===========================================================================
    @property
    def pages_volatile(self) -> int:
        return max(0, self.rmap_items - self.pages_shared - self.pages_sharing - self.pages_unshared)

    @property
    def general_profit(self) -> int:
        return (self.pages_sharing + self.ksm_zero_pages) * PAGE_SIZE - self.rmap_items * RMAP_ITEM_SIZE

    def counters(self) -> dict:
        return {"pages_scanned": self.pages_scanned, "pages_shared": self.pages_shared,
                "pages_sharing": self.pages_sharing, "pages_unshared": self.pages_unshared,
                "pages_volatile": self.pages_volatile, "pages_skipped": self.pages_skipped,
                "full_scans": self.seqnr, "stable_node_chains": self.stable_node_chains,
                "stable_node_dups": self.stable_node_dups, "ksm_zero_pages": self.ksm_zero_pages,
                "general_profit": self.general_profit}

    @staticmethod
    def ksm_stat(mm: Mm) -> dict:
        """``/proc/PID/ksm_stat`` (the four numeric lines)."""
        return {"ksm_rmap_items": mm.ksm_rmap_items, "ksm_zero_pages": mm.ksm_zero_pages,
                "ksm_merging_pages": mm.ksm_merging_pages,
                "ksm_process_profit": (mm.ksm_merging_pages + mm.ksm_zero_pages) * PAGE_SIZE
                - mm.ksm_rmap_items * RMAP_ITEM_SIZE}

    # ==== scanning ===========================================================================
    def do_scan(self, n: int | None = None) -> bool:
        """One ksmd batch of up to ``pages_to_scan`` pages (``ksm_do_scan``). A batch ends
        early when a full scan completes; returns True if it did."""
        if not (self.run & 1) or not self.slots:
            return False
        n = self.pages_to_scan if n is None else n
        self._objects()
        with no_gc():
            done = self._do_scan(n)
        self.now_ms += self.sleep_millisecs
        return done

    def _do_scan(self, n: int) -> bool:
        done = False
        for _ in range(n):
            r = self._scan_get_next()
            if r is None:
                done = True
                break
            item, frame = r
            self._cmp_and_merge_page(frame, item)
            self.pages_scanned += 1
        return done

    def full_scan(self) -> None:
        """Run batches until the current full scan completes."""
        if not (self.run & 1) or not self.slots:
            return
        if self._fast_ok():
            if self._fast is None:
                from ._ksm_fast import KsmArrays
                self._fast = KsmArrays()
            with no_gc():
                self._fast.scan(self)
            self.seqnr += 1
            if self.bus.enabled:
                self.bus.emit(FullScanDone(self.seqnr))
            return
        start = self.seqnr
        while self.seqnr == start and self.slots:
            self.do_scan()

    def run_until_converged(self, extra: int = 2, max_scans: int = 1000) -> int:
        """Full scans until the counters (all but pages_scanned / full_scans / pages_skipped)
        have stayed the same over ``extra`` more full scans. Returns the number of scans."""
        hist = []
        scans = 0
        while scans < max_scans:
            self.full_scan()
            scans += 1
            hist.append(convergence_key(self.counters(), self.smart_scan))
            if len(hist) > extra and all(h == hist[-1] for h in hist[-extra - 1:]):
                break
        return scans

    def _scan_get_next(self):
        machine = self.machine
        if self._cur is _HEAD:
            # a new full scan: forget the unstable tree (items keep their flag, cleaned lazily)
            self.unstable = {}
            if not self.slots:
                return None
            self._cur_index = 0
            self._cur = self.slots[0]
            self.address = 0
            self._prev = self._cur
        while True:
            slot = self._cur
            mm = slot.mm
            if not mm.exiting:
                for vma in mm.vmas:
                    if vma.end <= self.address or not vma.mergeable:
                        continue
                    if self.address < vma.start:
                        self.address = vma.start
                    if not vma.anon_vma:
                        self.address = vma.end
                        continue
                    used, pfns = vma._used, vma._pfn
                    n = 0 if used is None else len(used)
                    i = max(0, -(-(self.address - vma.start) // PAGE_SIZE))
                    while i < n:
                        if not used[i] or pfns[i] <= 0:      # no PTE, not present, or the zero page
                            i += 1
                            continue
                        a = vma.start + i * PAGE_SIZE
                        f = Frame(machine, pfns[i])
                        i += 1
                        item = self._get_next_rmap_item(slot, a)
                        if self.smart_scan and self._should_skip(f, item):
                            self.address = a + PAGE_SIZE
                            continue
                        self.address = a + PAGE_SIZE
                        return item, f
                    self.address = vma.end
            else:
                self.address = 0
                self._prev = slot
            self._remove_trailing(self._prev)
            # advance to the next slot
            idx = self.slots.index(slot)
            nxt = self.slots[idx + 1] if idx + 1 < len(self.slots) else _HEAD
            if self.address == 0:
                self._drop_slot(slot)
            self._cur = nxt
            if nxt is _HEAD:
                self.seqnr += 1
                if self.bus.enabled:
                    self.bus.emit(FullScanDone(self.seqnr))
                return None
            self.address = 0
            self._prev = nxt

    def _drop_slot(self, slot: MmSlot) -> None:
        self.slots.remove(slot)
        del self._slot_of[id(slot.mm)]
        slot.mm.ksm_registered = False
        slot.mm.merge_any = False

    def _get_next_rmap_item(self, slot: MmSlot, addr: int) -> RmapItem:
        prev = self._prev
        while True:
            item = prev.next
            if item is None:
                break
            if item.address == addr:
                self._prev = item
                return item
            if item.address > addr:
                break
            prev.next = item.next
            self._remove_from_tree(item)
            self._free_item(item)
        item = RmapItem(slot.mm, addr)
        item.next = prev.next
        prev.next = item
        self.rmap_items += 1
        slot.mm.ksm_rmap_items += 1
        if self.bus.enabled:
            self.bus.emit(RmapItemCreated(slot.mm.pid, addr))
        self._prev = item
        return item

    def _free_item(self, item: RmapItem) -> None:
        self.rmap_items -= 1
        item.mm.ksm_rmap_items -= 1
        if self.bus.enabled:
            self.bus.emit(RmapItemFreed(item.mm.pid, item.address))

    def _remove_trailing(self, prev) -> None:
        while prev.next is not None:
            item = prev.next
            prev.next = item.next
            self._remove_from_tree(item)
            self._free_item(item)

    def _should_skip(self, frame: Frame, item: RmapItem) -> bool:
        if frame.ksm:
            return False
        age = item.age
        if age != 255:
            item.age += 1
        if age < 3:
            return False
        if not item.remaining_skips:
            item.remaining_skips = 1 if age <= 3 else 2 if age <= 5 else 4 if age <= 8 else 8
            return False
        self.pages_skipped += 1
        item.remaining_skips -= 1
        self._remove_from_tree(item)
        return True

    # ==== trees =============================================================================
    def _candidate(self, node: StableNode | None, offset: int = 0) -> bool:
        return node is not None and node.rmap_hlist_len > 0 and \
            node.rmap_hlist_len + offset < self.max_page_sharing

    def _get_folio(self, node: StableNode) -> Frame | None:
        """``ksm_get_folio``: the node's KSM page, or None (and the node removed) if stale."""
        f = node.frame
        m = f._m                              # f.freed, f.stable_node: the frame table, read directly
        if m._freed[f.pfn] or m._stable_nodes.get(f.pfn) is not node:
            self._remove_node_from_stable_tree(node)
            return None
        return f

    def _remove_node_from_stable_tree(self, node: StableNode) -> None:
        n = len(node.hlist)
        if n:
            self.pages_sharing -= n - 1
            self.pages_shared -= 1
            for item in node.hlist:
                item.mm.ksm_merging_pages -= 1
                item.head = None
        node.rmap_hlist_len -= n
        node.hlist = {}
        if self.bus.enabled:
            self.bus.emit(StableNodeStale(node.frame.pfn, n))
        if node.chain is not None:
            node.chain.dups.remove(node)
            node.chain = None
            self.stable_node_dups -= 1
        else:
            self._stable.erase(node)

    def _free_chain(self, chain: StableNode) -> None:
        self._stable.erase(chain)
        self.stable_node_chains -= 1

    def _dup_any(self, node: StableNode) -> StableNode | None:
        if not node.is_chain:
            return node
        if not node.dups:
            self._free_chain(node)
            return None
        return node.dups[0]

    def _chain(self, node: StableNode, prune: bool):
        """``__stable_node_chain``: (dup or None, node after a possible collapse, frame or None)."""
        if not node.is_chain:
            if self._candidate(node):
                return node, node, self._get_folio(node)
            return None, node, None
        if not prune or self.now_ms < node.prune_time + self.stable_node_chains_prune_millisecs:
            prune = False
        else:
            node.prune_time = self.now_ms
        found = None
        found_len = 0
        tree_frame = None
        for dup in list(node.dups):
            f = self._get_folio(dup)
            if f is None:
                continue
            if found is None or (self._candidate(dup) and (not self._candidate(found) or
                                                            dup.rmap_hlist_len > found_len)):
                found, found_len, tree_frame = dup, dup.rmap_hlist_len, f
                if not prune and self._candidate(found):
                    break
        if found is not None:
            if len(node.dups) == 1:
                # only one dup left: collapse the chain into a plain node
                self._stable.replace(node, found)
                found.chain = None
                node.dups = []
                self.stable_node_chains -= 1
                self.stable_node_dups -= 1
                node = found
            elif node.dups[0] is not found and self._candidate(found, 1):
                node.dups.remove(found)
                node.dups.insert(0, found)
        return found, node, tree_frame

    def _walk(self, page: Frame, prune: bool):
        """The stable-tree walk of ``stable_tree_search`` (``prune``) and ``stable_tree_insert``:
        down from the root by memcmp, and at every node on the way the chain handling
        (pruning stale dups, collapsing a one-dup chain, freeing an empty one) and the removal
        of a stale node, restarting from the root whenever the tree changed under the walk.
        Returns (matching node, its dup or None, None, None) or (None, None, parent, left),
        the place where a new node would be linked."""
        data = page.data
        own = self.machine._own
        while True:
            parent, left = None, False
            n = self._stable.root
            restart = False
            while n is not None:
                dup, n, tree_frame = self._chain(n, prune)
                if dup is None:
                    anyn = self._dup_any(n)
                    if anyn is None:
                        restart = True                 # an empty chain was erased
                        break
                    tree_frame = self._get_folio(anyn)
                if tree_frame is None:
                    restart = True                     # a stale node was erased
                    break
                self.compares += 1
                # a KSM page keeps its bytes (Frame.data): read them from the frame table at once
                other = own.get(tree_frame.pfn) or tree_frame.data
                parent = n
                if data < other:
                    left, n = True, n.rb_left
                elif data > other:
                    left, n = False, n.rb_right
                else:
                    return parent, dup, None, None
            if not restart:
                return None, None, parent, left

    def _stable_tree_search(self, page: Frame) -> Frame | None:
        if page.ksm and page.stable_node is not None:
            return page                                    # ksm page forked
        node, dup, _p, _l = self._walk(page, prune=True)
        if node is None or dup is None or not self._candidate(dup):
            return None
        return self._get_folio(dup)

    def _stable_tree_insert(self, kframe: Frame) -> StableNode:
        node, _dup, parent, left = self._walk(kframe, prune=False)
        new = StableNode(kframe)
        if node is None:
            self._stable.link(new, parent, left)
        else:
            if not node.is_chain:
                chain = StableNode(None)
                chain.rmap_hlist_len = STABLE_NODE_CHAIN
                chain.dups = [node]
                chain.prune_time = self.now_ms
                self._stable.replace(node, chain)
                node.chain = chain
                self.stable_node_chains += 1
                self.stable_node_dups += 1
                if self.bus.enabled:
                    self.bus.emit(StableChainCreated(node.frame.pfn))
                node = chain
            node.dups.insert(0, new)
            new.chain = node
            self.stable_node_dups += 1
            if self.bus.enabled:
                self.bus.emit(StableDupCreated(kframe.pfn, len(node.dups)))
        kframe.stable_node = new
        return new

    def _stable_tree_append(self, item: RmapItem, node: StableNode) -> None:
        node.rmap_hlist_len += 1
        item.head = node
        node.hlist[item] = None
        if len(node.hlist) > 1:
            self.pages_sharing += 1
        else:
            self.pages_shared += 1
        item.mm.ksm_merging_pages += 1

    def _remove_from_tree(self, item: RmapItem) -> None:
        node = item.head
        if node is not None:
            if self._get_folio(node) is None:
                return                        # stale: the node's removal already counted this item
            del node.hlist[item]
            if node.hlist:
                self.pages_sharing -= 1
            else:
                self.pages_shared -= 1
            item.mm.ksm_merging_pages -= 1
            node.rmap_hlist_len -= 1
            item.head = None
        elif item.unstable:
            if ((self.seqnr - item.seq) & SEQNR_MASK) == 0:
                bucket = self.unstable.get(item.ukey)
                if bucket is not None and item in bucket:
                    bucket.remove(item)
            self.pages_unshared -= 1
            item.unstable = False

    def _page_at(self, item: RmapItem) -> Frame | None:
        """``get_mergeable_page``: the anonymous page now mapped at the item's address."""
        mm = item.mm
        vma = mm.find_vma(item.address)
        if vma is None or not vma.mergeable or not vma.anon_vma:
            return None
        pte = mm.ptes.get(item.address)
        if pte is None or pte.frame is None or pte.frame is self.machine.zero_frame:
            return None
        return pte.frame

    def _unstable_search_insert(self, item: RmapItem, page: Frame, key: int):
        bucket = self.unstable.get(key)
        if bucket:
            for t in bucket:
                tree_page = self._page_at(t)
                if tree_page is None:
                    return None, None
                if tree_page == page:
                    return None, None          # don't substitute a ksm page for a forked page
                self.compares += 1
                if tree_page.data == page.data:
                    return t, tree_page
        item.unstable = True
        item.seq = self.seqnr & SEQNR_MASK
        item.ukey = key
        self.unstable.setdefault(key, []).append(item)
        self.pages_unshared += 1
        if self.bus.enabled:
            self.bus.emit(UnstableInsert(item.mm.pid, item.address))
        return None, None

    # ==== merging ===========================================================================
    def _merge_one_page(self, item: RmapItem, page: Frame, kpage: Frame | None) -> bool:
        """``try_to_merge_with_ksm_page`` + ``try_to_merge_one_page``."""
        mm = item.mm
        vma = mm.find_vma(item.address)
        if vma is None or not vma.mergeable or not vma.anon_vma:
            return False
        if page != kpage:
            pte = mm.ptes.get(item.address)
            if pte is None or pte.frame != page:
                return False
            # write_protect_page: refuse a page with references beyond its mappings (pinned, e.g.
            # by O_DIRECT): mapcount + 1 must equal page_count in the kernel
            if page.refcount != page.mapcount:
                return False
            if kpage is None:
                page.ksm = True                        # write-protect; the page becomes a KSM page
                pte.writable = False
            else:
                self.compares += 1
                if page.data != kpage.data:
                    return False
                self.machine.replace_page(mm, item.address, kpage, writable=False)
        self._remove_from_tree(item)
        return True

    def _break_cow(self, item: RmapItem) -> None:
        self.machine.unshare(item.mm, item.address)

    def _cmp_and_merge_page(self, page: Frame, item: RmapItem) -> None:
        node = page.stable_node if page.ksm else None
        if node is not None:
            if item.head is node:
                return
        else:
            self._remove_from_tree(item)
            h = page.content_hash()
            self.pages_hashed += 1
            checksum = h & 0xFFFFFFFF
            changed = item.oldchecksum != checksum
            if self.bus.enabled:
                self.bus.emit(ChecksumComputed(item.mm.pid, item.address, checksum, changed))
            if changed:
                item.oldchecksum = checksum
                return
            if self.use_zero_pages and checksum == ZERO_CHECKSUM and self._merge_zero_page(item, page):
                return
        kpage = self._stable_tree_search(page)
        if kpage == page and item.head is node:
            return
        self._remove_from_tree(item)
        if kpage is not None:
            old_pfn = page.pfn
            if self._merge_one_page(item, page, kpage):
                self._stable_tree_append(item, kpage.stable_node)
                if self.bus.enabled:
                    self.bus.emit(PagesMerged(kpage.pfn, "stable_hit", ((item.mm.pid, item.address, old_pfn),),
                                              PAGE_SIZE))
            return
        key = self._tree_key(page)
        tree_item, tree_page = self._unstable_search_insert(item, page, key)
        if tree_item is None:
            return
        tree_pfn = tree_page.pfn
        if not self._merge_one_page(item, page, None):
            return
        if not self._merge_one_page(tree_item, tree_page, page):
            self._break_cow(item)
            return
        snode = self._stable_tree_insert(page)
        self._stable_tree_append(tree_item, snode)
        self._stable_tree_append(item, snode)
        if self.bus.enabled:
            self.bus.emit(PagesMerged(page.pfn, "unstable_match",
                                      ((tree_item.mm.pid, tree_item.address, tree_pfn),
                                       (item.mm.pid, item.address, page.pfn)), PAGE_SIZE))

    def _merge_zero_page(self, item: RmapItem, page: Frame) -> bool:
        mm = item.mm
        vma = mm.find_vma(item.address)
        if vma is None or not vma.mergeable:
            return True                          # the vma is out of date: nothing more to do
        self.compares += 1
        if page.data.count(0) != PAGE_SIZE:
            return False
        self.machine.replace_page(mm, item.address, self.machine.zero_frame, writable=False, ksm_zero=True)
        self.ksm_zero_pages += 1
        mm.ksm_zero_pages += 1
        if self.bus.enabled:
            self.bus.emit(ZeroPageMerged(mm.pid, item.address, page.pfn))
        return True

    # ==== run = 2 ===========================================================================
    def _unmerge_and_remove_all(self) -> None:
        for slot in list(self.slots):
            mm = slot.mm
            self._cur = slot
            if not mm.exiting:
                for vma in mm.vmas:
                    if vma.mergeable and vma.anon_vma:
                        self._unmerge_range(mm, vma, vma.start, vma.end, "run=2")
            self._remove_trailing(slot)
            if mm.exiting:
                self._drop_slot(slot)
        self._cur = _HEAD
        self._remove_all_stable_nodes()
        self.seqnr = 0

    def _remove_all_stable_nodes(self) -> None:
        """Take the root away until the tree is empty; stop at a node still in use (EBUSY)."""
        while self._stable.root is not None:
            node = self._stable.root
            if node.is_chain:
                busy = False
                for dup in list(node.dups):
                    if self._remove_stable_node(dup):
                        busy = True
                        break
                if busy:
                    break
                self._free_chain(node)
            elif self._remove_stable_node(node):
                break

    def _remove_stable_node(self, node: StableNode) -> bool:
        """``remove_stable_node``: True if the node's KSM page is still mapped (busy)."""
        f = node.frame
        if f.freed or f.stable_node is not node:
            self._remove_node_from_stable_tree(node)     # stale: ksm_get_folio removes it
            return False
        if f.mapcount > 0:
            return True
        f.stable_node = None
        self._remove_node_from_stable_tree(node)
        return False
