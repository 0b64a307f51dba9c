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


def _gather(frames) -> tuple[np.ndarray, object, int, int]:
    """The frames' bytes as one (k, 4096) uint8 array, and the page set it was read from
    with the lowest and highest page read there (None when no page was read from one).
    Frames that are unwritten views of consecutive pages of one page set give a view of
    those rows (nothing copied); otherwise the rows are gathered: views from their page set
    in one fancy-index read, other frames from their own bytes."""
    k = len(frames)
    src = frames[0]._src if frames[0]._data is None else None
    idx = None
    if src is not None:
        idx = [f._idx if f._data is None and f._src is src else -1 for f in frames]
        first = idx[0]
        if idx[-1] == first + k - 1 and idx == list(range(first, first + k)):
            return src.array[first:first + k], src, first, first + k - 1
    out = np.empty((k, PAGE_SIZE), np.uint8)
    if idx is not None:
        ia = np.array(idx, np.int64)
        rows = np.flatnonzero(ia >= 0)
        out[rows] = src.array[ia[rows]]
        lo, hi = int(ia[rows].min()), int(ia[rows].max())
        rest = np.flatnonzero(ia < 0).tolist()
    else:
        lo = hi = 0
        rest = range(k)
    for j in rest:
        out[j] = np.frombuffer(frames[j].buffer(), np.uint8)
    return out, src, lo, hi


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
    zero = machine.zero_frame
    keys: list[int] = []
    refs: list[tuple[Mm, int]] = []
    with no_gc():
        for mm in (mms if mms is not None else machine.mms):
            sel = [(va, pte) for va, pte in mm.ptes.items()
                   if (f := pte.frame) is not None and f is not zero and not f.ksm and f.mapcount == 1 and not f.pins]
            keys += [pte.atime for _va, pte in sel] if policy == "lru" else [pte.birth for _va, pte in sel]
            refs += [(mm, va) for va, _pte in sel]
        order = _order(keys, refs)
    if policy == "random":
        random.Random(seed).shuffle(order)       # the same permutation as shuffling the sorted pool
    n = int(round(len(order) * fraction))
    return [refs[i] for i in order[:n]]


def _order(keys: list[int], refs: list[tuple[Mm, int]]) -> list[int]:
    """Positions of the pool sorted by (key, pid, address). The machine's access clock gives
    every PTE its own tick, so keys are distinct and a sort on the key alone is that order;
    where two are equal (or do not fit 64 bits), the full tuple is sorted."""
    if keys:
        try:
            k = np.array(keys, np.int64)
        except OverflowError:
            k = None
        if k is not None:
            o = np.argsort(k, kind="stable")
            ks = k[o]
            if len(ks) < 2 or bool((ks[1:] > ks[:-1]).all()):
                return o.tolist()
    return sorted(range(len(keys)), key=lambda i: (keys[i], refs[i][0].pid, refs[i][1]))


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
        pte = mm.ptes.get(va)
        if pte is None:
            return False
        f = pte.frame
        return f is not None and f is not self.machine.zero_frame and not f.ksm and f.mapcount == 1 and not f.pins

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
        zero = m.zero_frame
        sel = [(mm, va, pte, f) for mm, va in pairs
               if (pte := mm.ptes.get(va)) is not None and (f := pte.frame) is not None and f is not zero
               and not f.ksm and f.mapcount == 1 and not f.pins]
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
        datas, src, lo, hi = _gather([t[3] for t in sel])
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
        for (mm, va, pte, f), slot in zip(sel, slots):
            if slot is None:
                continue                                   # the store refused (mem_limit)
            swap_map[slot] += 1
            pte.frame = None
            pte.swp = slot
            pte.writable = True
            f.mapcount -= 1                                # Machine._put_frame, inline
            if f.mapcount == 0:
                f.freed = True
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
