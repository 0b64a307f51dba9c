"""Swap between address spaces and a swap backend (zram and its dedup variants).

This is the middle of the chain. A candidate page is chosen by a policy. Its PTE becomes a
swap entry that names a slot of the backend, the page is stored there, and its frame is
released. A later access faults it back in:

    virtual address -> PTE -> swap entry -> zram slot -> zsmalloc handle -> object -> zspage

``swap_map[slot]`` counts the PTEs that refer to a slot (the kernel's swap_map count). The
slot is released, and zram is told through ``slot_free_notify``, when that count reaches
zero. As on zram, which does synchronous I/O, a fault that brings a page back in frees its
swap entry at once; no swap cache is kept. Slots are taken lowest-free-first, as on a
freshly made swap device. Slot 0 holds no swap header here.

Behind the swap device sits one of two kinds of backend:

* a **store** (:class:`SwapStore`: zram and its dedup variants): it stores pages in the slots
  it is given and says which it refused; the swap device takes the slots, hands the batch
  down, and gives refused slots back. The store never sees a virtual address, and the
  mechanism that drives the run is not in the way: a page goes down the chain once.
* a **mapping backend** (the patent's method, compositions, zswap): it decides per page
  where the candidate's PTE should point (a slot of its own, an existing slot, a frame), so it
  takes the batch with each page's (pid, address) through ``swap_out_pages``.
"""
from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from .events import Event, event
from .mm import Machine, Mm
from .pages import PAGE_SIZE
from ._util import no_gc


@runtime_checkable
class SwapStore(Protocol):
    """The store behind a swap device: what a swap-out, a fault and a swap free need of it."""

    def store_pages(self, pages, slots) -> list[int]:
        """Store page i (row i of a (k, 4096) array, or the i-th 4 KiB buffer) in slot
        ``slots[i]``, in order; return the positions it did not store (refused by its
        ``mem_limit``), whose slots keep what they held."""

    def load(self, slot: int) -> bytes:
        """The 4096 bytes last stored in ``slot``."""

    def slot_free_notify(self, slot: int) -> None:
        """The swap layer released ``slot`` (no PTE refers to it any more)."""


@event
class SwappedOut(Event):
    kind: ClassVar[str] = "swap.out"
    doc: ClassVar[str] = "a page left its process: its PTE now holds a swap entry naming a slot (PTE -> swap entry)"
    pid: int
    vaddr: int
    slot: int
    shared: bool


@event
class SwappedIn(Event):
    kind: ClassVar[str] = "swap.in"
    doc: ClassVar[str] = "a fault brought a swapped page back into a new frame; its swap entry was released"
    pid: int
    vaddr: int
    slot: int


POLICIES = ("lru", "fifo", "random")
#: pages per backend call of a swap-out (32 MiB of page bytes at a time)
SWAP_BATCH = 8192


class _Contexts(Sequence):
    """The ``(pid, vaddr)`` of each page of a batch, made only when a backend asks for them."""

    __slots__ = ("_sel",)

    def __init__(self, sel):
        self._sel = sel

    def __len__(self) -> int:
        return len(self._sel)

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [(t[0].pid, t[1]) for t in self._sel[j]]
        t = self._sel[j]
        return (t[0].pid, t[1])

    def __iter__(self):
        return ((t[0].pid, t[1]) for t in self._sel)


def _gather(m: Machine, pfns: list[int]) -> tuple[np.ndarray, object, int, int]:
    """The bytes of frames ``pfns`` as one (k, 4096) uint8 array, and the page set it was read
    from with the lowest and highest page read there (None when no page was read from one).
    Frames that are unwritten views of consecutive pages of one page set give a view of
    those rows (nothing copied); otherwise the rows are gathered: views of the first frame's
    page set from it in one fancy-index read (read from the frame table's columns), other
    frames from their own bytes."""
    k = len(pfns)
    pa = np.array(pfns, np.int64)
    sid = m.frame_column("_srcid")[pa]
    sidx = m.frame_column("_srcidx")[pa]
    s0 = int(sid[0])
    src = m._sources[s0] if s0 >= 0 else None
    if src is not None:
        first = int(sidx[0])
        if bool((sid == s0).all()) and bool((sidx == np.arange(first, first + k)).all()):
            return src.array[first:first + k], src, first, first + k - 1
    out = np.empty((k, PAGE_SIZE), np.uint8)
    if src is not None:
        rows = np.flatnonzero(sid == s0)
        ia = sidx[rows]
        out[rows] = src.array[ia]
        lo, hi = int(ia.min()), int(ia.max())
        rest = np.flatnonzero(sid != s0).tolist()
    else:
        lo = hi = 0
        rest = range(k)
    for j in rest:
        out[j] = np.frombuffer(m.frame(pfns[j]).buffer(), np.uint8)
    return out, src, lo, hi


def _private_rows(m: Machine, vma) -> np.ndarray:
    """The rows of ``vma`` mapping a resident, private (mapped once), unpinned, non-KSM frame
    (not the zero page): the swap-out candidates, found in the page table and frame table
    columns at once."""
    if vma._used is None:
        return np.zeros(0, np.int64)
    pfn = np.frombuffer(vma._pfn, np.int64)
    rows = np.flatnonzero((np.frombuffer(vma._used, np.uint8) != 0) & (pfn > 0))
    if len(rows):
        p = pfn[rows]
        ok = (m.frame_column("_ksm")[p] == 0) & (m.frame_column("_mapcount")[p] == 1) & \
            (m.frame_column("_pins")[p] == 0)
        rows = rows[ok]
    return rows


def _private(m: Machine, mm: Mm, va: int):
    """``(vma, row, pfn)`` of the page at ``va`` when it is a resident, private (mapped once),
    unpinned, non-KSM anonymous page, else None."""
    vma = mm.find_vma(va)
    if vma is None or vma._used is None or va & (PAGE_SIZE - 1):
        return None
    r = (va - vma.start) >> 12
    if not vma._used[r]:
        return None
    p = vma._pfn[r]
    if p <= 0 or m._ksm[p] or m._mapcount[p] != 1 or m._pins[p]:
        return None
    return vma, r, p


def select_candidates(machine: Machine, fraction: float = 1.0, policy: str = "lru", seed: int = 0,
                      mms: list[Mm] | None = None) -> list[tuple[Mm, int]]:
    """Choose resident, private, non-KSM anonymous pages to swap out.

    ``lru``: least recently accessed first (the order pages were last read or written;
    placement counts as an access); ``fifo``: the order pages were first mapped; ``random``:
    a shuffle seeded by ``seed``. Ties fall back to (pid, address), so every policy is
    deterministic."""
    if policy not in POLICIES:
        from .errors import InputError
        raise InputError(f"--policy {policy}: unknown; use one of {', '.join(POLICIES)}")
    col = "_atime" if policy == "lru" else "_birth"
    keys: list[np.ndarray] = []
    refs: list[tuple[Mm, int]] = []
    with no_gc():
        for mm in (mms if mms is not None else machine.mms):
            for vma in mm.vmas:
                rows = _private_rows(machine, vma)
                if not len(rows):
                    continue
                keys.append(np.frombuffer(getattr(vma, col), np.int64)[rows])
                refs += [(mm, va) for va in (rows * PAGE_SIZE + vma.start).tolist()]
        order = _order(np.concatenate(keys) if keys else np.zeros(0, np.int64), refs)
    if policy == "random":
        random.Random(seed).shuffle(order)       # the same permutation as shuffling the sorted pool
    n = int(round(len(order) * fraction))
    return [refs[i] for i in order[:n]]


def _order(keys: np.ndarray, refs: list[tuple[Mm, int]]) -> list[int]:
    """Positions of the pool sorted by (key, pid, address). The machine's access clock gives
    every PTE its own tick, so keys are distinct and a sort on the key alone is that order;
    where two are equal, the full tuple is sorted."""
    if len(keys):
        o = np.argsort(keys, kind="stable")
        ks = keys[o]
        if len(ks) < 2 or bool((ks[1:] > ks[:-1]).all()):
            return o.tolist()
    kl = keys.tolist()
    return sorted(range(len(kl)), key=lambda i: (kl[i], refs[i][0].pid, refs[i][1]))


class SwapDevice:
    """The swap area that the backend sits behind, with its ``swap_map`` counts."""

    def __init__(self, machine: Machine, backend, nslots: int):
        if machine.swap is not None:
            raise ValueError("this machine already has a swap device")
        machine.swap = self
        self.machine = machine
        self.backend = backend
        self.nslots = nslots
        self.swap_map = [0] * nslots
        self._free: list[int] = []
        self._next = 0
        #: slots given back only after the current swap-out (see put_slot_later)
        self._later: list[int] | None = None
        self.pages_out = 0
        self.pages_in = 0

    # -- slots -----------------------------------------------------------------------------
    def get_slot(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        if self._next >= self.nslots:
            raise MemoryError("swap device full")
        s = self._next
        self._next += 1
        return s

    def put_slot(self, slot: int) -> None:
        heapq.heappush(self._free, slot)

    def dup(self, slot: int) -> None:
        """One more PTE refers to ``slot`` (``swap_duplicate``)."""
        self.swap_map[slot] += 1

    def swap_free(self, slot: int) -> None:
        self.swap_map[slot] -= 1
        if self.swap_map[slot] == 0:
            self.backend.slot_free_notify(slot)
            self.put_slot(slot)

    # -- pages -----------------------------------------------------------------------------
    def eligible(self, mm: Mm, va: int) -> bool:
        """A resident, private (mapped once), non-KSM anonymous page."""
        return _private(self.machine, mm, va) is not None

    def swap_out(self, pairs: list[tuple[Mm, int]]) -> int:
        """Swap out the eligible ``(mm, vaddr)`` pages in order; return how many left memory."""
        with no_gc():
            return self._swap_out(pairs)

    def get_slots(self, k: int):
        """``k`` slots as ``get_slot`` would give them one by one (lowest free first, then
        fresh ones): a list, or a range when they are all fresh."""
        out = []
        free = self._free
        while free and len(out) < k:
            out.append(heapq.heappop(free))
        r = k - len(out)
        if self._next + r > self.nslots:
            self._next = self.nslots
            raise MemoryError("swap device full")
        fresh = range(self._next, self._next + r)
        self._next += r
        if not out:
            return fresh
        out.extend(fresh)
        return out

    def put_slot_later(self, slot: int) -> None:
        """Give back a slot the store refused, after the whole swap-out (as one backend call
        for every page would: its slots are all taken before any is given back)."""
        if self._later is None:
            self.put_slot(slot)
        else:
            self._later.append(slot)

    def _swap_out(self, pairs) -> int:
        """The eligible pages, in batches of :data:`SWAP_BATCH` (one batch when events are
        listened to, so they come in the order of one backend call). Each batch's bytes go to
        the backend as one (k, 4096) array: rows of the page set itself where the frames are
        unwritten views of consecutive pages (no copy), else gathered; the page set's pages
        read are released from memory after each batch."""
        m = self.machine
        sel = [(mm, va, *t) for mm, va in pairs if (t := _private(m, mm, va)) is not None]
        if not sel:
            return 0
        bus = m.bus
        batch = len(sel) if bus.enabled else SWAP_BATCH
        done = 0
        self._later = []
        try:
            for b in range(0, len(sel), batch):
                done += self._swap_out_batch(sel[b:b + batch], bus)
        finally:
            later, self._later = self._later, None
            for slot in later:
                self.put_slot(slot)
        self.pages_out += done
        return done

    def _swap_out_batch(self, sel, bus) -> int:
        m = self.machine
        datas, src, lo, hi = _gather(m, [t[4] for t in sel])
        try:
            backend = self.backend
            if hasattr(backend, "swap_out_pages"):          # a mapping backend
                slots = backend.swap_out_pages(datas, _Contexts(sel), self)
            else:                                            # a store
                slots = self._store(datas, len(sel))
        finally:
            del datas
            if src is not None:
                src.release(lo, hi + 1)
        swap_map = self.swap_map
        freed = 0
        done = 0
        listening = bus.enabled
        mapcount, mfreed, own = m._mapcount, m._freed, m._own
        for (mm, va, vma, r, p), slot in zip(sel, slots):
            if slot is None:
                continue                                   # the store refused (mem_limit)
            swap_map[slot] += 1
            vma._pfn[r] = -1                               # the PTE: a swap entry, not present
            vma._swp[r] = slot
            vma._wr[r] = 1
            mc = mapcount[p] - 1                           # Machine._put_frame, inline
            mapcount[p] = mc
            if mc == 0:
                mfreed[p] = 1
                own.pop(p, None)
                freed += 1
            done += 1
            if listening:
                bus.emit(SwappedOut(mm.pid, va, slot, swap_map[slot] > 1))
        m.frames_allocated -= freed
        return done

    def _store(self, datas, k: int):
        """Hand a batch to the store in fresh slots; a refused page's slot is None and is
        given back once the whole swap-out is over."""
        slots = self.get_slots(k)
        refused = self.backend.store_pages(datas, slots)
        if not refused:
            return slots
        out = list(slots)
        for j in refused:
            self.put_slot_later(out[j])
            out[j] = None
        return out

    def swapin(self, mm: Mm, va: int) -> None:
        pte = mm.ptes[va]
        slot = pte.swp
        data = self.backend.load(slot)
        f = self.machine.alloc_frame(data)
        f.mapcount = 1
        pte.frame = f
        pte.swp = None
        pte.writable = True
        self.pages_in += 1
        if self.machine.bus.enabled:
            self.machine.bus.emit(SwappedIn(mm.pid, va, slot))
        self.swap_free(slot)

    def peek(self, slot: int) -> bytes:
        return self.backend.load(slot)


def peek(machine: Machine, mm: Mm, va: int) -> bytes:
    """The bytes at ``va`` read through the chain without changing any state (no fault)."""
    pte = mm.ptes.get(va)
    if pte is None:
        return bytes(PAGE_SIZE)
    if pte.frame is not None:
        return bytes(pte.frame.data)
    return machine.swap.peek(pte.swp)
