"""The one interface every mechanism implements, and the run protocol they share.

A mechanism is one way of sharing identical memory. It repoints one link of the chain:

    virtual address -> PTE -> page frame | swap entry -> slot -> handle -> object -> zspage

Every mechanism runs the same :class:`Workload` the same way:

1. the pages are placed in their processes (one :class:`~engine.mm.Machine`);
2. ``prepare``: KSM makes the memory mergeable and scans until it converges; the others do
   nothing here;
3. swap-out: the policy picks candidates, and they go through the mechanism's store (zram
   and its variants, or the patent's method);
4. ``trigger``: the offline step, where a mechanism has one (Romanov's merge, the zsmalloc
   fold); ``compact``, when the workload asks for it;
5. measures, and a read-back of every page through the chain, which must give exactly the
   bytes last written.

Parameters go in ``__init__``. Results land in attributes ending in ``_`` (``saved_bytes_``,
``metadata_bytes_``, ``work_``, ...), as in PyOD. To add a mechanism, subclass
:class:`Mechanism` or :class:`ZramLevelMechanism` in a module of its own, set the class
attributes that describe it, and register it with :func:`register`.
"""
from __future__ import annotations

from abc import ABC
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from ..compress import DEFAULT_COMPRESSOR
from ..errors import PagemergeError
from ..mm import Machine, Mm
from ..pages import PAGE_SIZE, PageSet
from ..swap import SwapDevice, peek, select_candidates
from ..zram import ZramDevice

REGISTRY: dict[str, type["Mechanism"]] = {}
#: pages compared per step of the read-back (then released from memory)
VERIFY_CHUNK = 4096

#: what a mechanism is, relative to the patent's priority date (2014-10-27)
KINDS = ("prior-art", "design", "claimed", "baseline")


class Citation(NamedTuple):
    """Where a mechanism's behaviour is written down: a reference id (as in the claim data), a
    pinpoint into that reference's own text (release tag + file:line, or section/page), and a
    short quote checked against that text."""

    reference: str
    pinpoint: str
    quote: str


def register(cls):
    REGISTRY[cls.name] = cls
    return cls


@dataclass
class Workload:
    """Pages in processes, and how they leave memory."""

    pages: PageSet
    manifest: object | None = None
    swap_fraction: float = 1.0
    policy: str = "lru"
    seed: int = 0
    compact: bool = False
    name: str = ""

    def place(self, machine: Machine) -> tuple[list[Mm], list[tuple[Mm, int]]]:
        mms = machine.place_pages(self.pages, self.manifest)
        if self.manifest is None:
            base = mms[0].vmas[0].start
            where = [(mms[0], base + i * PAGE_SIZE) for i in range(len(self.pages))]
        else:
            by_pid = {mm.pid: mm for mm in mms}
            where = [(by_pid[p], va) for p, va in zip(self.manifest.pid, self.manifest.vaddr)]
        return mms, where


class ExpectedPages(MutableMapping):
    """What each placed page must read back as, keyed ``(pid, vaddr)``: its page of the page
    set, unless the workload has written it since (``written`` holds only those pages, as
    bytes). Nothing is copied: a lookup reads the page set."""

    def __init__(self, pages: PageSet, where: list):
        self.pages = pages
        self.where = where
        self.written: dict[tuple[int, int], bytes] = {}
        self._index: dict | None = None          # (pid, vaddr) -> page index, built on first lookup

    def _page_of(self, key) -> int:
        if self._index is None:
            self._index = {(mm.pid, va): i for i, (mm, va) in enumerate(self.where)}
        return self._index[key]

    def __getitem__(self, key) -> bytes:
        w = self.written.get(key)
        if w is not None:
            return w
        return self.pages.page_bytes(self._page_of(key))

    def __setitem__(self, key, value) -> None:
        self._page_of(key)                       # only placed pages
        if len(value) != PAGE_SIZE:
            raise ValueError(f"expected page of {PAGE_SIZE} bytes, got {len(value)}")
        self.written[key] = bytes(value)

    def __delitem__(self, key) -> None:
        raise TypeError("every placed page has an expected content")

    def __iter__(self):
        return ((mm.pid, va) for mm, va in self.where)

    def __len__(self) -> int:
        return len(self.where)

    def __contains__(self, key) -> bool:
        try:
            self._page_of(key)
        except (KeyError, TypeError):
            return False
        return True


@dataclass
class Work:
    pages_hashed: int = 0
    bytes_hashed: int = 0
    compares: int = 0
    bytes_compared: int = 0
    compressions: int = 0
    decompressions: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Mechanism(ABC):
    #: registry key, used on the command line and in charts
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: which link of the chain it repoints
    link: ClassVar[str] = ""
    #: when it acts
    when: ClassVar[str] = ""
    #: what it hashes, with which function
    hashes: ClassVar[str] = ""
    #: how it establishes that two pages are identical
    identity: ClassVar[str] = ""
    #: metadata it keeps per shared object (kernel structure sizes)
    metadata: ClassVar[str] = ""
    #: where the design comes from
    source: ClassVar[str] = ""
    #: prior-art (published before the priority date), design (a later design), claimed (the
    #: patent's method) or baseline (mainline behaviour compared against)
    kind: ClassVar[str] = ""
    #: ISO date of the version modelled (release, posting or publication)
    date: ClassVar[str] = ""
    #: reference id of that version (as in claims/data/*/references.yaml)
    reference: ClassVar[str] = ""
    #: one line on what it does
    summary: ClassVar[str] = ""
    #: where its modelled behaviour is written down, as :class:`Citation` tuples
    citations: ClassVar[tuple] = ()

    def __init__(self, algo: str = DEFAULT_COMPRESSOR, mem_limit: int = 0):
        self.algo = algo
        self.mem_limit = mem_limit
        self.variant = ""
        self.work = Work()

    # -- the protocol (hooks) ------------------------------------------------------------
    def attach(self, machine: Machine, nslots: int) -> None:
        """Build the store behind the swap device on ``machine``."""
        raise NotImplementedError

    def prepare(self, machine: Machine, mms: list[Mm]) -> None:
        """Before swap-out (KSM scans here)."""

    def trigger(self) -> None:
        """The offline step, if the mechanism has one."""

    def compact(self) -> None:
        """zsmalloc compaction of the store, if any."""

    def saved_bytes(self) -> int:
        return 0

    def metadata_bytes(self) -> int:
        return 0

    def pages_merged(self) -> int:
        return 0

    def mm_stat(self) -> dict | None:
        return None

    def describe(self) -> dict:
        return {"name": self.name, "title": self.title, "variant": self.variant, "link": self.link,
                "when": self.when, "hashes": self.hashes, "identity": self.identity,
                "metadata": self.metadata, "source": self.source, "kind": self.kind, "date": self.date,
                "reference": self.reference, "summary": self.summary,
                "citations": [c._asdict() for c in self.citations]}

    # -- running -------------------------------------------------------------------------
    def setup(self, workload: Workload, bus=None):
        """Place the workload and attach the store; return (machine, mms, where).

        What each page must read back as is the page set itself plus the workload's own
        writes since (``expected_``, :class:`ExpectedPages`): no copy of the pages is kept."""
        self.machine = machine = Machine(bus=bus)
        mms, where = workload.place(machine)
        self.attach(machine, max(16, len(workload.pages)))
        self.where_ = where
        self.expected_ = ExpectedPages(workload.pages, where)
        return machine, mms, where

    def run(self, workload: Workload, bus=None) -> "Mechanism":
        machine, mms, where = self.setup(workload, bus)
        self.prepare(machine, mms)
        workload.pages.release()            # what the preparation read (KSM's scans) leaves memory
        cands = select_candidates(machine, workload.swap_fraction, workload.policy, workload.seed, mms)
        if cands:
            machine.swap.swap_out(cands)
        del cands
        self.trigger()
        if workload.compact:
            self.compact()
        self.finish()
        return self

    def finish(self) -> None:
        """Fill the result attributes and verify every page through the chain."""
        self.saved_bytes_ = self.saved_bytes()
        self.metadata_bytes_ = self.metadata_bytes()
        self.net_saved_bytes_ = self.saved_bytes_ - self.metadata_bytes_
        self.pages_merged_ = self.pages_merged()
        self.mm_stat_ = self.mm_stat()
        self.work_ = self.work.as_dict()
        self.verified_readback_ = self.verify()

    #: what :meth:`release` drops: the model of memory and everything that refers into it
    RELEASED: ClassVar[tuple] = ("machine", "device", "swapdev", "where_", "expected_", "ksmd", "backend",
                                 "slot_page", "decisions_", "_pending", "_batch")

    def release(self) -> None:
        """Drop the machine and the store once the results are taken (``result()`` still works),
        and collect them: the model holds reference cycles (an mm and its machine, a swap
        device and its backend, KSM's stable nodes and their frames), which only the cycle
        collector frees."""
        import gc
        for attr in self.RELEASED:
            self.__dict__.pop(attr, None)
        gc.collect()

    def verify(self) -> bool:
        """Every page, read through the chain without changing anything (``peek``), equals
        what was last written there: its page of the page set, or the workload's own writes.
        The pages are compared in page-set order, a chunk at a time, and each chunk of a
        memory-mapped page set is released once compared, so the check never holds the
        input, or a copy of it, as a whole."""
        m = self.machine
        exp = self.expected_
        pages, written = exp.pages, exp.written
        where = self.where_
        n = len(where)
        for first in range(0, n, VERIFY_CHUNK):
            try:
                for i in range(first, min(n, first + VERIFY_CHUNK)):
                    mm, va = where[i]
                    want = written.get((mm.pid, va)) if written else None
                    if want is None:
                        pte = mm.ptes.get(va)
                        f = pte.frame if pte is not None else None
                        src = f.source if f is not None else None
                        if src is not None and src[0] is pages and src[1] == i:
                            continue                       # mapped to its own page, unwritten: equal
                        want = pages.page_bytes(i)
                    try:
                        got = peek(m, mm, va)
                    except PagemergeError:                 # e.g. a corrupt compressed block
                        return False
                    if got != want:
                        return False
            finally:
                pages.release(first, first + VERIFY_CHUNK)
        return True

    def write(self, mm: Mm, va: int, data: bytes) -> None:
        """A write by the workload (faults in swapped pages, breaks COW); tracked for read-back."""
        mm.write(va, data)
        base = va & ~(PAGE_SIZE - 1)
        cur = bytearray(self.expected_[(mm.pid, base)])
        off = va - base
        cur[off:off + len(data)] = data
        self.expected_[(mm.pid, base)] = bytes(cur)

    @property
    def comp_algorithm(self) -> str:
        """The kernel's name of the compressor behind this mechanism's store (``lzo-rle``...)."""
        from ..compress import get_compressor
        return get_compressor(self.algo).kernel_name

    def result(self) -> dict:
        d = {"title": self.title, "variant": self.variant, "link": self.link, "when": self.when,
             "saved_bytes": self.saved_bytes_, "metadata_bytes": self.metadata_bytes_,
             "net_saved_bytes": self.net_saved_bytes_, "pages_merged": self.pages_merged_,
             "work": self.work_, "verified_readback": self.verified_readback_,
             "comp_algorithm": self.comp_algorithm}
        if self.mm_stat_ is not None:
            d["mm_stat"] = self.mm_stat_
        return d


class ZramLevelMechanism(Mechanism):
    """A mechanism whose store is a zram device (or a variant of one) behind swap."""

    device_class: ClassVar[type[ZramDevice]] = ZramDevice

    def make_device(self, disksize: int, bus) -> ZramDevice:
        return self.device_class(disksize, self.algo, mem_limit=self.mem_limit, bus=bus)

    def attach(self, machine: Machine, nslots: int) -> None:
        """The device is the store behind the swap device (``engine.swap.SwapStore``): the
        mechanism drives the run, and pages go down the chain without passing through it."""
        self.device = self.make_device(nslots * PAGE_SIZE, machine.bus)
        self.swapdev = SwapDevice(machine, self.device, nslots)

    def compact(self) -> None:
        self.device.compact()

    def mm_stat(self) -> dict:
        return self.device.mm_stat()

    def finish(self) -> None:
        self.work.compressions += self.device.work_compressions
        self.work.decompressions += self.device.work_decompressions
        super().finish()


class OfflineZramMechanism(ZramLevelMechanism):
    """A zram-level mechanism whose sharing runs on an offline trigger, in a ``posted`` or a
    ``corrected`` variant. Subclasses set ``device_class`` and ``offline_step`` (the device
    method the trigger calls)."""

    offline_step: ClassVar[str] = ""

    def __init__(self, algo=DEFAULT_COMPRESSOR, mem_limit=0, hash="xxhash64", variant="posted"):
        super().__init__(algo, mem_limit)
        if variant not in ("posted", "corrected"):
            raise ValueError("variant is 'posted' or 'corrected'")
        self.hash = hash
        self.variant = variant

    def make_device(self, disksize, bus):
        return self.device_class(disksize, self.algo, self.mem_limit, bus, hash=self.hash, variant=self.variant,
                                 work=self.work)

    def trigger(self) -> None:
        from .._util import no_gc
        with no_gc():
            getattr(self.device, self.offline_step)()
