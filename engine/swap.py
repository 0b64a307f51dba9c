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
"""
from __future__ import annotations

import heapq
import random
from typing import ClassVar

from .events import Event, event
from .mm import Machine, Mm
from .pages import PAGE_SIZE
from ._util import no_gc


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
    pool = []
    for mm in (mms if mms is not None else machine.mms):
        for va, pte in mm.ptes.items():
            f = pte.frame
            if f is None or f is machine.zero_frame or f.ksm or f.mapcount != 1 or f.pins:
                continue
            key = pte.atime if policy == "lru" else pte.birth
            pool.append((key, mm.pid, va, mm))
    pool.sort(key=lambda t: (t[0], t[1], t[2]))
    if policy == "random":
        random.Random(seed).shuffle(pool)
    n = int(round(len(pool) * fraction))
    return [(mm, va) for _k, _pid, va, mm in pool[:n]]


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

    def _swap_out(self, pairs) -> int:
        pairs = [(mm, va) for mm, va in pairs if self.eligible(mm, va)]
        if not pairs:
            return 0
        frames = [mm.ptes[va].frame for mm, va in pairs]
        slots = self.backend.swap_out_pages([f.data for f in frames], [(mm.pid, va) for mm, va in pairs], self)
        done = 0
        bus = self.machine.bus
        for (mm, va), f, slot in zip(pairs, frames, slots):
            if slot is None:
                continue                                   # the store refused (mem_limit)
            pte = mm.ptes[va]
            self.swap_map[slot] += 1
            pte.frame = None
            pte.swp = slot
            pte.writable = True
            self.machine._put_frame(f)
            done += 1
            if bus.enabled:
                bus.emit(SwappedOut(mm.pid, va, slot, self.swap_map[slot] > 1))
        self.pages_out += done
        return done

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
