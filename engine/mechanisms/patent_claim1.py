"""The method of claim 1 of US 9,977,598, step by step as claimed, under each reading of its words.

On swap-out of a candidate page from the first memory space (a process's address space) to
the second (compressed memory):

1. compress the candidate page to obtain a first compressed page;
2. take a first hash value *of the first compressed page*;
3. if the compressed page is **smaller** than a predetermined size, compare, using the first
   hash value, with the hash values of the stored *compressed* pages, all of them smaller than
   that size; on a match, **map the virtual address** of the candidate to the found page;
4. if the compressed page is **larger**, compare, using the first hash value, with the hash
   values of the stored *uncompressed* pages, whose compressed forms were larger than that
   size; on a match, map the virtual address of the candidate to the found page.

On a miss, the page is stored: compressed if it went down the smaller branch (zram's own huge
rule may still store it whole), else uncompressed. It is then indexed by its hash (the
"specific data structure" of claim 2 is these two hash indexes).

Where the claim's words can be read more than one way, each reading is a parameter
(``CONSTRUCTION_PARAMETERS``; ``DEFAULT_CONSTRUCTION`` is the model as it was before these
parameters existed). The claim data names the words each parameter construes
(``claims/data/US9977598/constructions.yaml``); this module only runs them.

* ``large_branch``: what the larger branch compares. ``compressed``: hashes of the stored
  pages' compressed forms against the first hash value (of the same kind). ``raw``: hashes of
  the stored raw pages against a hash of the candidate's raw page, taken in addition.
  ``literal``: the first hash value, as it is, against hashes of the stored raw pages; with a
  first hash over compressed bytes, that matches only by accident.
* ``hash_input``: the first hash value is taken over the compressed bytes
  (``compressed-bytes``) or over the page as it is compressed, in the same pass
  (``page-in-pass``). The smaller branch's stored hashes are of the same kind.
* ``equal``: which branch a compressed page exactly the predetermined size takes (the claim
  covers neither): ``larger`` or ``smaller``. Events say ``equal (as larger)`` and so on.
* ``predetermined_size``: ``huge-threshold`` (zram's, derived from the zsmalloc class table),
  ``three-quarter-page`` (3072 B, zram's ``max_zpage_size`` before the class-derived
  threshold), ``half-page`` (2048 B), or a number of bytes.
* ``mapping``: how the virtual address is mapped to the found page, each on the engine's
  chain. ``pte-swap-entry``: the candidate's PTE gets a swap entry naming the found page's
  slot, whose ``swap_map`` count rises (no new slot). ``slot-remap``: the candidate gets a
  slot of its own that points at the found page's zsmalloc handle, refcounted, as zram dedup
  points slots at one ``zram_entry``. ``pte-frame``: the candidate's PTE is pointed at a
  resident frame holding the found page, write-protected and copied on write, as KSM does;
  the first time, the found page is brought back from the store into that frame, its owner's
  PTE maps it too, and its slot is released.
* ``second_space``: ``carved-pool`` (the store's pool is carved from the same RAM, as zram's
  is) or ``separate-device`` (a store outside RAM). Decisions do not change; the accounting
  does: under a separate device the bytes sharing saves are the device's, and RAM sees only
  the index (and any resident frames) as cost. ``result()["accounting"]`` gives both.
* ``identity``: ``full`` (the default) confirms a hash match by comparing the bytes: the
  compressed bytes in the smaller branch, the raw page otherwise (or the shared frame).
  ``hash-only`` does what the claim literally recites, a comparison *using* hash values and
  nothing more; with a colliding hash it can share different contents, and the read-back
  check reports it.

Claim 1 does not mention same-filled pages, so the store compresses every page
(``same_filled=False``); ``True`` adds zram's same-filled shortcut in front. Each swapped
page's decision is kept in ``decisions_`` (:class:`Decision`), so two readings can be compared
page by page; ``result()`` names the construction the run used.

``_swap_out_one`` is the method page by page, in Python: the reference. Where nobody listens
for events, the hash is one it has compiled and no ``mem_limit`` is set, a swap-out of at
least ``fast_min_pages`` pages takes the compiled path (:mod:`engine._claim_fast`) under every
reading: batches compressed and hashed on all cores, decided in order against the two hash
indexes as arrays, stored through zram's compiled steps into the pool's arrays. Its decisions,
counters, work, slot table, pool and read-back are those of the Python path (tests/test_patent_fast.py);
``compiled = False`` keeps the Python path.
"""
from __future__ import annotations

import itertools
from collections.abc import MutableMapping
from typing import NamedTuple

import numpy as np

from ..compress import DEFAULT_COMPRESSOR, KernelLZ4, KernelLZO, KernelLZORLE
from ..hashes import HASHES, get_hash
from ..pages import PAGE_SIZE
from ..swap import SwapDevice
from ..zram import ZRAM_HUGE, ZramDevice, is_same_filled
from . import events as dev
from .base import Mechanism, register

#: the hash functions the compiled path computes (engine._claim_fast.HASH_KINDS)
COMPILED_HASHES = ("xxhash64", "xxhash32", "jhash", "weak")
INDEX_ENTRY_SIZE = 40       # model assumption: rb_node 24 + hash 8 + page reference 8 per stored page
REFCOUNT_SIZE = 8           # mapping=slot-remap: a reference count on each shared handle (as zram_entry's)

MAX_PREDETERMINED_SIZE = 1 << 16
SIZE_NAMES = {"huge-threshold": None, "three-quarter-page": PAGE_SIZE // 4 * 3, "half-page": PAGE_SIZE // 2}

#: Every reading of claim 1's words the method runs under: parameter -> the values it takes.
#: ``predetermined_size`` also takes a whole number of bytes (1 to MAX_PREDETERMINED_SIZE; above
#: a page every compressed page is "smaller"). The claim data
#: (claims/data/<patent>/constructions.yaml) maps each construction alternative to these.
CONSTRUCTION_PARAMETERS = {
    "large_branch": ("compressed", "raw", "literal"),
    "hash_input": ("compressed-bytes", "page-in-pass"),
    "equal": ("larger", "smaller"),
    "predetermined_size": tuple(SIZE_NAMES),
    "mapping": ("pte-swap-entry", "slot-remap", "pte-frame"),
    "second_space": ("carved-pool", "separate-device"),
    "identity": ("full", "hash-only"),
}
#: the reading the engine runs when nothing else is asked for (the model before constructions)
DEFAULT_CONSTRUCTION = {"large_branch": "compressed", "hash_input": "compressed-bytes", "equal": "larger",
                        "predetermined_size": "huge-threshold", "mapping": "pte-swap-entry",
                        "second_space": "carved-pool", "identity": "full"}


def construction_value_problem(param: str, value) -> str | None:
    """Why ``value`` is not a value of construction parameter ``param`` (None when it is)."""
    allowed = CONSTRUCTION_PARAMETERS.get(param)
    if allowed is None:
        return (f"{param!r} is not a construction parameter of patent_claim1 "
                f"(it has {', '.join(CONSTRUCTION_PARAMETERS)})")
    if param == "predetermined_size" and (value is None or (isinstance(value, int) and not isinstance(value, bool))):
        if value is None or 1 <= value <= MAX_PREDETERMINED_SIZE:
            return None
        return f"predetermined_size {value} is not 1 to {MAX_PREDETERMINED_SIZE} bytes"
    if value not in allowed:
        extra = f" or a number of bytes 1 to {MAX_PREDETERMINED_SIZE}" if param == "predetermined_size" else ""
        return f"{param}={value!r} is not one of {', '.join(allowed)}{extra}"
    return None


class Decision(NamedTuple):
    """What the method decided for one swapped page: the size branch it took (``small`` or
    ``large``), what it did (``shared``, ``stored``, or ``refused`` by mem_limit), and for a
    shared page the (pid, virtual address) of the page whose stored copy it was mapped to."""

    branch: str
    action: str
    target: tuple | None = None


_STORED = {0: Decision("small", "stored"), 1: Decision("large", "stored")}
_SAME_FILLED = Decision("same-filled", "stored")


class Decisions(MutableMapping):
    """``(pid, va) -> Decision``: the last decision for each swapped page, in the order pages
    were first decided (a dict's order). The compiled path hands in whole batches as arrays;
    they become :class:`Decision` tuples only when the mapping is read."""

    def __init__(self):
        self._d: dict[tuple, Decision] = {}
        self._batches: list = []

    def add_batch(self, ctxs, act, big, ent, entries) -> None:
        """A batch decided by the compiled path: per page its action (``_claim_fast.ACT_*``),
        branch (1: larger) and entry (stored or found; ``entries[e].owner`` its owner)."""
        self._batches.append((ctxs, act, big, ent, entries))

    def _flush(self) -> None:
        from .._claim_fast import ACT_SAME, ACT_SHARED
        batches, self._batches = self._batches, []
        d = self._d
        for ctxs, act, big, ent, entries in batches:
            for ctx, a, b, e in zip(ctxs, act.tolist(), big.tolist(), ent.tolist()):
                if a == ACT_SHARED:
                    d[ctx] = Decision("large" if b else "small", "shared", entries[e].owner)
                elif a == ACT_SAME:
                    d[ctx] = _SAME_FILLED
                else:
                    d[ctx] = _STORED[b]

    def __getitem__(self, key):
        if self._batches:
            self._flush()
        return self._d[key]

    def __setitem__(self, key, value) -> None:
        if self._batches:
            self._flush()
        self._d[key] = value

    def __delitem__(self, key) -> None:
        if self._batches:
            self._flush()
        del self._d[key]

    def __iter__(self):
        if self._batches:
            self._flush()
        return iter(self._d)

    def __len__(self) -> int:
        if self._batches:
            self._flush()
        return len(self._d)

    def __repr__(self) -> str:
        if self._batches:
            self._flush()
        return f"Decisions({self._d!r})"


class StoredPage:
    """A page the method stored, as its index sees it: where it is, which hash keys it, and
    who maps it (swap_map of its slot, slots sharing its handle, or a resident frame)."""

    __slots__ = ("slot", "handle", "size", "index", "key", "owner", "refs", "frame", "eid")

    def __init__(self, slot, handle, size, index, key, owner, eid=-1):
        self.slot = slot
        self.handle = handle
        self.size = size
        self.index = index          # "small" or "large"
        self.key = key
        self.owner = owner          # (pid, va) of the page that stored it
        self.refs = 1               # slots that point at its handle
        self.frame = None           # mapping=pte-frame: the resident frame its mappers share
        self.eid = eid              # its row in the entry table (:class:`EntryTable`)


class EntryTable:
    """What the compiled path reads of each stored page, one row per :class:`StoredPage`
    (``eid``), fixed when it is stored: its branch (1: larger), hash value, stored size and
    zsmalloc handle id."""

    def __init__(self, cap: int = 1024):
        self.n = 0
        self.big = np.empty(cap, np.uint8)
        self.key = np.empty(cap, np.uint64)
        self.size = np.empty(cap, np.int64)
        self.hid = np.empty(cap, np.int64)

    def _room(self, k: int) -> None:
        if self.n + k > self.big.shape[0]:
            cap = max(self.n + k, 2 * self.big.shape[0])
            for name in ("big", "key", "size", "hid"):
                a = getattr(self, name)
                b = np.empty(cap, a.dtype)
                b[:self.n] = a[:self.n]
                setattr(self, name, b)

    def add(self, big, key, size, handle) -> int:
        from .._zram_fast import HANDLE_BASE
        self._room(1)
        e = self.n
        self.big[e], self.key[e], self.size[e], self.hid[e] = big, key, size, (handle - HANDLE_BASE) >> 3
        self.n += 1
        return e

    def add_many(self, big, key, size, handles) -> int:
        """Rows for entries stored together (arrays; ``handles`` uint64); returns the first eid."""
        from .._zram_fast import HANDLE_BASE
        k = big.shape[0]
        self._room(k)
        e = self.n
        self.big[e:e + k] = big
        self.key[e:e + k] = key
        self.size[e:e + k] = size
        self.hid[e:e + k] = ((handles - np.uint64(HANDLE_BASE)) >> np.uint64(3)).astype(np.int64)
        self.n += k
        return e


class ClaimStore(ZramDevice):
    """zram as the second memory space, with slots that may share one handle (mapping=slot-remap,
    as zram dedup points several slots at one ``zram_entry``). ``compr_data_size`` counts each
    stored object once; a shared slot counts in ``orig_data_size`` and, if whole, ``huge_pages``.

    It overrides none of zram's write path, so zram's compiled path stands in for it; the swap
    layer releases a slot through :meth:`release_slot`, which keeps a handle other slots share."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pages: dict[int, StoredPage] = {}        # slot -> the stored page whose handle it holds

    def register(self, slot: int, sp: StoredPage) -> None:
        self.pages[slot] = sp

    def _set_slot(self, index: int, handle: int, size: int) -> None:
        """Set a slot's handle and size in the slot table's current form (lists, or the arrays
        of zram's compiled path, which touching the lists would convert back)."""
        slots = self.slot_arrays
        if slots is not None:
            slots[0][index] = handle
            slots[1][index] = size
        else:
            self.handle[index] = handle
            self.size[index] = size

    def share_slot(self, slot: int, sp: StoredPage) -> None:
        """Point ``slot`` at ``sp``'s handle (no allocation, no compression)."""
        self.check_index(slot)
        self.release_slot(slot, notify=False)          # (a fresh slot holds nothing)
        sp.refs += 1
        self._set_slot(slot, sp.handle, sp.size)
        if sp.size == PAGE_SIZE:
            self.flags[slot] = ZRAM_HUGE
            self.huge_pages += 1
        self.pages_stored += 1
        self.pages[slot] = sp

    def release_slot(self, index: int, notify: bool = True) -> None:
        """The swap layer released ``index`` (``swap_slot_free_notify``, with ``notify``): its
        reference to the handle goes; the object is freed with the last reference."""
        sp = self.pages.pop(index, None)
        if sp is None or sp.refs <= 1:
            if sp is not None:
                sp.refs = 0
            if notify:
                self.slot_free_notify(index)
            else:
                self.slot_free(index, "overwrite")
            return
        self.check_index(index)
        if notify:
            self.notify_free += 1
        sp.refs -= 1                                   # other slots still point at the handle
        if self.flags[index] & ZRAM_HUGE:
            self.huge_pages -= 1
        if self.bus.enabled:
            self.bus.emit(dev.DedupRelease("patent_claim1", dev.LINK_SLOT_HANDLE, f"handle {sp.handle:#x}",
                                           sp.refs, False))
        self.pages_stored -= 1
        self.flags[index] = 0
        self._set_slot(index, 0, 0)

    # -- the compiled path (engine._claim_fast) ----------------------------------------------------
    def fast_begin(self, npages: int):
        """The slot table and pool in array form for a batch of ``npages`` pages, as zram's
        compiled write path uses them: ``(pool arrays, flags, handles, sizes, counters)``; None
        where that path may not stand in (a listener, a backend it does not run, a large pool
        in object form for a small batch)."""
        if not self.compiled_eligible() or not self.enter_arrays(npages):
            return None
        zh, zsz = self.slot_arrays
        return self.pool.arrays, np.frombuffer(self.flags, np.uint8), zh, zsz, self.stats_array()

    def fast_end(self, D) -> None:
        self.sync_stats(D)


class _ClaimSwapDevice(SwapDevice):
    """The swap device in front of the method; under mapping=pte-frame, the pages found
    identical are mapped to a shared resident frame once the batch has left memory."""

    def _swap_out(self, pairs) -> int:
        done = super()._swap_out(pairs)
        self.backend.map_frames()
        return done


@register
class PatentClaim1(Mechanism):
    name = "patent_claim1"
    title = "US 9,977,598 claim 1 (the claimed method)"
    link = dev.LINK_VA_STORED
    when = dev.WHEN_SWAPOUT
    hashes = "the compressed page (first hash value of the first compressed page), XXH64 by default"
    identity = "hash comparison within the size branch; confirmed by a full compare unless identity=hash-only"
    metadata = (f"{INDEX_ENTRY_SIZE} B index entry per stored page (model assumption; the patent gives no sizes); "
                f"mapping=slot-remap adds a {REFCOUNT_SIZE} B refcount per stored page, mapping=pte-frame counts "
                f"the resident frame kept for each shared page")
    source = "US 9,977,598 B2 (MediaTek), claim 1; priority 2014-10-27"
    kind = "claimed"
    date = "2014-10-27"
    reference = "us9977598"
    summary = "claim 1: compress on swap-out, hash the compressed page, compare within the size branch, map the VA"

    def __init__(self, algo=DEFAULT_COMPRESSOR, mem_limit=0, hash="xxhash64", predetermined_size=None,
                 identity="full", same_filled=False, large_branch="compressed", hash_input="compressed-bytes",
                 equal="larger", mapping="pte-swap-entry", second_space="carved-pool"):
        super().__init__(algo, mem_limit)
        if isinstance(predetermined_size, str) and predetermined_size.isdigit():
            predetermined_size = int(predetermined_size)
        for param, value in (("identity", identity), ("large_branch", large_branch), ("hash_input", hash_input),
                             ("equal", equal), ("mapping", mapping), ("second_space", second_space),
                             ("predetermined_size", predetermined_size)):
            why = construction_value_problem(param, value)
            if why:
                raise ValueError(why)
        self.hash_name, self.hash_fn = get_hash(hash)
        #: the hash is one engine._claim_fast computes (a custom function keeps the Python path)
        self._compiled_hash = self.hash_name in COMPILED_HASHES and self.hash_fn is HASHES[self.hash_name]
        self.size_rule = "huge-threshold" if predetermined_size is None else predetermined_size
        self.predetermined_size = SIZE_NAMES.get(predetermined_size) if isinstance(predetermined_size, str) \
            else predetermined_size
        self.identity_mode = identity
        self.same_filled = same_filled
        self.large_branch = large_branch
        self.hash_input = hash_input
        self.equal = equal
        self.mapping = mapping
        self.second_space = second_space
        self.construction = {"large_branch": large_branch, "hash_input": hash_input, "equal": equal,
                             "predetermined_size": self.size_rule, "mapping": mapping,
                             "second_space": second_space, "identity": identity}
        self.variant = self._variant()
        # what this run hashes and which link it repoints, as the reading says
        if hash_input == "page-in-pass":
            self.hashes = ("the candidate page as it is compressed, in the same pass (first hash value), "
                           f"{self.hash_name}")
        if large_branch in ("raw", "literal"):
            self.hashes += "; in the larger branch also the raw page (third hash values)"
        self.link = {"slot-remap": dev.LINK_SLOT_HANDLE, "pte-frame": dev.LINK_PTE}.get(mapping, dev.LINK_VA_STORED)

    def _variant(self) -> str:
        size = self.size_rule if isinstance(self.size_rule, str) else f"{self.size_rule} B"
        if isinstance(self.size_rule, str) and self.predetermined_size is not None:
            size += f" ({self.predetermined_size} B)"
        c = self.construction
        return (f"construction: large-branch={c['large_branch']}, hash-input={c['hash_input']}, "
                f"equal={c['equal']}, predetermined-size={size}, mapping={c['mapping']}, "
                f"second-space={c['second_space']}, "
                f"identity={c['identity']}; hash={self.hash_name}, same_filled={int(self.same_filled)}")

    def attach(self, machine, nslots):
        self.device = ClaimStore(nslots * PAGE_SIZE, self.algo, mem_limit=self.mem_limit, bus=machine.bus,
                                 detect_same_filled=self.same_filled)
        if self.predetermined_size is None:
            self.predetermined_size = self.device.huge_class_size
        self.variant = self._variant()
        self.swapdev = _ClaimSwapDevice(machine, self, nslots)
        self.small: dict[int, list[StoredPage]] = {}      # second hash values -> stored compressed pages
        self.large: dict[int, list[StoredPage]] = {}      # third hash values -> stored uncompressed pages
        self.slot_page: dict[int, StoredPage] = {}         # slot -> the stored page it names
        self.decisions_ = Decisions()                      # (pid, va) -> the last decision for that page
        self.entries = EntryTable()                        # the stored pages as the compiled path reads them
        self.shared_small_ = 0
        self.shared_large_ = 0
        self._pending: list[tuple[tuple, StoredPage]] = []

    # -- hashing ---------------------------------------------------------------------------------
    def _hash(self, data, what: str, memo: dict) -> int:
        h = memo.get(what)
        if h is None:
            h = memo[what] = self.hash_fn(data)
            self.work.pages_hashed += 1
            self.work.bytes_hashed += len(data)
            if self.device.bus.enabled:
                self.device.bus.emit(dev.DedupHash(self.name, "compressed object" if what == "compressed"
                                                   else "uncompressed page", self.hash_name, len(data),
                                                   dev.WHEN_SWAPOUT, h))
        return h

    # -- the swap backend ------------------------------------------------------------------------
    def swap_out_pages(self, datas, ctxs, swapdev: SwapDevice) -> list:
        if self._fast_ok(len(datas)):
            out = self._swap_out_fast(datas, ctxs, swapdev)
            if out is not None:
                return out
        # slot -> PTEs this batch gives it: the swap device raises swap_map for them only after
        # the batch, so a share event counts them here to report the true reference count
        self._batch: dict[int, int] = {}
        return [self._swap_out_one(bytes(d), ctx, swapdev) for d, ctx in zip(datas, ctxs)]

    # -- the compiled path (engine._claim_fast) ------------------------------------------------------
    #: use the compiled path where it can stand in (False: always the page-by-page Python path,
    #: the reference the compiled one is tested against)
    compiled = True
    #: the fewest pages a swap-out must carry for the compiled path, and its batch size
    fast_min_pages = 64
    fast_batch = 2048

    def _fast_ok(self, n: int) -> bool:
        """The compiled path decides exactly as the Python one here: nobody listens for events,
        one of the kernel's compressors, a hash it has compiled, no mem_limit (a refused store
        would change what later pages find)."""
        dev = self.device
        return (self.compiled and self._compiled_hash and n >= self.fast_min_pages and not dev.bus.enabled
                and not dev.pool.bus.enabled and type(dev.comp) in (KernelLZ4, KernelLZO, KernelLZORLE)
                and dev.limit_pages == 0)

    def _swap_out_fast(self, datas, ctxs, swapdev: SwapDevice):
        """Swap out ``datas`` in compiled batches: each batch is compressed and hashed on all
        cores while the one before is decided and stored, in order. None (nothing done) where
        zram's arrays may not be used."""
        from .. import _claim_fast as C
        from ..compress import _lz4_kernel, _lzo_kernel
        n = len(datas)
        if self.device.fast_begin(n) is None:
            return None
        comp = self.device.comp
        if isinstance(comp, KernelLZ4):
            use_lzo, param, width = False, comp.acceleration, _lz4_kernel.bound(PAGE_SIZE)
        else:
            use_lzo, param, width = True, int(comp.rle), _lzo_kernel.bound(PAGE_SIZE)
        hkind = C.HASH_KINDS[self.hash_name]
        first_of = C.COMPRESSED if self.hash_input == "compressed-bytes" else C.RAW
        third_of = C.COMPRESSED if self.large_branch == "compressed" else C.RAW
        settings = (bool(self.same_filled), use_lzo, param, int(self.predetermined_size), self.equal == "smaller",
                    hkind, first_of, third_of)
        batch = max(1, min(n, self.fast_batch))
        starts = list(range(0, n, batch))
        pool_ex = C.executor()
        nworkers = C.workers()
        task = max(16, min(256, -(-batch // nworkers)))
        bufs = self._fast_buffers(batch, width)

        def submit(bi):
            """Hand batch ``bi``'s preparation to the workers, in ranges of ``task`` pages that
            each thread claims as it comes free; returns (buffers, futures, a claimer the
            caller runs too, so it works rather than waits)."""
            lo = starts[bi]
            rows = datas[lo:lo + batch]
            k = len(rows)
            if isinstance(rows, np.ndarray):            # rows of pages (the page set itself, or gathered)
                pages = rows
                if pages.dtype != np.uint8 or not pages.flags.c_contiguous or type(pages) is not np.ndarray:
                    pages = np.ascontiguousarray(pages, dtype=np.uint8).view(np.ndarray)
                pages = pages.reshape(k, PAGE_SIZE)
            else:                                       # a list of page buffers
                pages = np.frombuffer(b"".join(rows), np.uint8).reshape(k, PAGE_SIZE)
            b = {name: a[:k] for name, a in bufs[bi & 1].items()}
            b["pages"] = pages
            args = (b["sflags"], b["fills"], b["lengths"], b["out"], b["big"], b["hc"], b["hr"])
            ntasks = -(-k // task)
            claim = itertools.count()

            def work():
                while True:
                    t = next(claim)                     # atomic: each range is prepared once
                    if t >= ntasks:
                        return
                    C.prepare_claim(pages, t * task, min(k, (t + 1) * task), *settings, *args)
            if ntasks == 1:
                return b, [], work
            return b, [pool_ex.submit(work) for _ in range(min(nworkers, ntasks))], work

        out: list = []
        pending = submit(0)
        try:
            for bi, lo in enumerate(starts):
                b, futs, work = pending
                pending = None
                work()
                for f in futs:
                    f.result()
                if bi + 1 < len(starts):
                    pending = submit(bi + 1)
                out += self._fast_batch(b, ctxs[lo:lo + len(b["pages"])], swapdev)
        finally:
            if pending is not None:                     # never leave a worker writing a buffer
                for f in pending[1]:
                    f.exception()
        return out

    def _fast_buffers(self, batch: int, width: int) -> list:
        """Two sets of per-batch arrays (one prepared while the other is decided), kept for
        the next swap-out."""
        bufs = getattr(self, "_bufs", None)
        if bufs is None or bufs[0]["out"].shape != (batch, width):
            bufs = self._bufs = [{"sflags": np.empty(batch, np.uint8), "fills": np.empty(batch, np.uint64),
                                  "lengths": np.empty(batch, np.int64), "out": np.empty((batch, width), np.uint8),
                                  "big": np.empty(batch, np.uint8), "hc": np.empty(batch, np.uint64),
                                  "hr": np.empty(batch, np.uint64)} for _ in range(2)]
        return bufs

    def _fast_batch(self, b, ctxs, swapdev: SwapDevice) -> list:
        """Decide and store one prepared batch (see engine._claim_fast); return its slots."""
        from .. import _claim_fast as C
        from .._zram_fast import ST_GROW
        dev = self.device
        pages, sflags, lengths, big = b["pages"], b["sflags"], b["lengths"], b["big"]
        k = pages.shape[0]
        hc, hr = b["hc"], b["hr"]
        first = hc if self.hash_input == "compressed-bytes" else hr
        if self.large_branch == "compressed":
            third = hc
        else:
            third = hr
        probe = np.where(big != 0, first if self.large_branch == "literal" else third, first)
        skey = np.where(big != 0, third, first)
        # the index entries this batch may probe, in their lists' order
        live = sflags == 0
        old: list[StoredPage] = []
        for index, sel in ((self.small, live & (big == 0)), (self.large, live & (big != 0))):
            if index:
                for key in np.unique(probe[sel]).tolist():
                    lst = index.get(key)
                    if lst:
                        old.extend(lst)
        n_old = len(old)
        E = self.entries
        eids = np.fromiter([sp.eid for sp in old], np.int64, n_old)
        o_big, o_key, o_size, o_hid = E.big[eids], E.key[eids], E.size[eids], E.hid[eids]
        o_frow = np.full(n_old, -1, np.int64)
        o_stale = np.zeros(n_old, np.uint8)
        framed = [e for e, sp in enumerate(old) if sp.frame is not None]
        o_frames = np.empty((len(framed), PAGE_SIZE), np.uint8)
        for r, e in enumerate(framed):
            f = old[e].frame
            o_frow[e] = r
            o_stale[e] = f.freed
            o_frames[r] = np.frombuffer(f.data, np.uint8)
        got = dev.fast_begin(k)
        if got is None:
            raise AssertionError("zram's arrays were given up during a compiled swap-out")
        pa, zf, zh, zsz, D = got
        cap = n_old + k
        act = np.empty(k, np.int8)
        ent = np.empty(k, np.int64)
        e_big = np.empty(cap, np.uint8)
        e_key = np.empty(cap, np.uint64)
        e_size = np.empty(cap, np.int64)
        e_row = np.empty(cap, np.int64)
        purged = np.empty(max(1, n_old), np.int64)
        ne, compares, bcompared, npurged = C.decide(
            pa.tup(), pages, b["out"], lengths, sflags, big, probe, skey, self.identity_mode == "full",
            dev.huge_class_size, n_old, o_big, o_key, o_size, o_hid, o_frow, o_stale, o_frames,
            act, ent, e_big, e_key, e_size, e_row, purged)
        remap = self.mapping == "slot-remap"
        shared = act == C.ACT_SHARED
        need = np.ones(k, bool) if remap else ~shared    # slot-remap: a new slot for a shared page too
        m = int(np.count_nonzero(need))
        slot_of_page = np.full(k, -1, np.int64)
        get_slots = getattr(swapdev, "get_slots", None)  # as get_slot would give them one by one
        got_slots = get_slots(m) if get_slots is not None else [swapdev.get_slot() for _ in range(m)]
        if isinstance(got_slots, range):
            got_slots = np.arange(got_slots.start, got_slots.stop, dtype=np.int64)
        slot_of_page[need] = got_slots
        e_slot = np.full(ne, -1, np.int64)
        e_slot[:n_old] = [-1 if sp.slot is None else sp.slot for sp in old]
        new_rows = e_row[n_old:ne]
        e_slot[n_old:ne] = slot_of_page[new_rows]
        j = 0
        try:
            while True:
                st, j = C.store_pages(pa.tup(), pages, b["out"], lengths, sflags, b["fills"], big, act, ent,
                                      slot_of_page, e_slot, remap, j, zf, zh, zsz, D)
                if st != ST_GROW:
                    break
                pa.grow(k - j)
        finally:
            dev.fast_end(D)
        # the object model of what was decided: index entries, slots, counters, work
        for e in purged[:npurged].tolist():
            self._unindex(old[e])
        new_slots = e_slot[n_old:ne]
        hs = zh[new_slots]
        e0 = E.add_many(e_big[n_old:ne], e_key[n_old:ne], e_size[n_old:ne], hs)
        entries = old
        small, large = self.small, self.large
        for eid, slot, handle, size, bg, key, row in zip(range(e0, e0 + ne - n_old), new_slots.tolist(), hs.tolist(),
                                                         e_size[n_old:ne].tolist(), e_big[n_old:ne].tolist(),
                                                         e_key[n_old:ne].tolist(), new_rows.tolist()):
            sp = StoredPage(slot, handle, size, "large" if bg else "small", key, ctxs[row], eid)
            (large if bg else small).setdefault(key, []).append(sp)
            entries.append(sp)
        news = entries[n_old:]
        self.slot_page.update(zip(new_slots.tolist(), news))
        dev.pages.update(zip(new_slots.tolist(), news))
        nshared_large = int(np.count_nonzero(shared & (big != 0)))
        nshared = int(np.count_nonzero(shared))
        self.shared_large_ += nshared_large
        self.shared_small_ += nshared - nshared_large
        result = slot_of_page
        if nshared:
            rows = np.flatnonzero(shared)
            targets = ent[rows].tolist()
            if self.mapping == "pte-swap-entry":
                result = slot_of_page.copy()
                result[rows] = e_slot[ent[rows]]
            elif remap:
                for row, e in zip(rows.tolist(), targets):
                    sp = entries[e]
                    sp.refs += 1
                    slot = int(slot_of_page[row])
                    self.slot_page[slot] = sp
                    dev.pages[slot] = sp
        result = result.tolist()
        if nshared and self.mapping == "pte-frame":
            for row, e in zip(rows.tolist(), targets):
                result[row] = None                      # mapped to a resident frame once the batch is out
                self._pending.append((ctxs[row], entries[e]))
        # work, as the page-by-page path counts it
        w = self.work
        nlive = int(np.count_nonzero(live))
        w.compressions += nlive
        dev.comp.compressions += nlive
        first_c = self.hash_input == "compressed-bytes"
        third_c = self.large_branch == "compressed"
        clens = int(lengths[live].sum())
        w.pages_hashed += nlive
        w.bytes_hashed += clens if first_c else nlive * PAGE_SIZE
        if first_c != third_c:                          # the larger branch hashes the other input too
            sel = live & (big != 0)
            nbig = int(np.count_nonzero(sel))
            w.pages_hashed += nbig
            w.bytes_hashed += int(lengths[sel].sum()) if third_c else nbig * PAGE_SIZE
        w.compares += compares
        w.bytes_compared += bcompared
        self.decisions_.add_batch(ctxs, act, big.copy(), ent, entries)     # (big: a reused buffer)
        return result

    def _swap_out_one(self, page: bytes, ctx, swapdev: SwapDevice):
        w = self.work
        bus = self.device.bus
        listening = bus.enabled
        if self.same_filled and is_same_filled(page)[0]:
            slot = swapdev.get_slot()
            self.device.write_page(slot, page)
            self.decisions_[ctx] = Decision("same-filled", "stored")
            return slot
        block, _cached = self.device.comp.compress(page)          # 1. compress the candidate page
        w.compressions += 1
        clen = len(block)
        memo: dict[str, int] = {}
        # 2. the first hash value: of the compressed bytes, or of the page compressed in the same pass
        first = self._hash(block, "compressed", memo) if self.hash_input == "compressed-bytes" \
            else self._hash(page, "raw", memo)
        size = self.predetermined_size
        if clen < size or (clen == size and self.equal == "smaller"):   # 3. smaller: stored compressed pages
            branch = "smaller" if clen < size else "equal (as smaller)"
            index, where, what = self.small, "small", "compressed page"
            probe = store_key = first
        else:                                                     # 4. larger: stored uncompressed pages
            branch = "larger" if clen > size else "equal (as larger)"
            index, where, what = self.large, "large", "uncompressed page"
            if self.large_branch == "compressed":                 # third hash values of the compressed forms
                probe = store_key = self._hash(block, "compressed", memo)
            elif self.large_branch == "raw":                      # of the raw pages, the candidate's hashed too
                probe = store_key = self._hash(page, "raw", memo)
            else:                                                 # literal: the first hash against raw-page hashes
                probe, store_key = first, self._hash(page, "raw", memo)
        for sp in list(index.get(probe, ())):
            if sp.frame is not None and sp.frame.freed:           # its last mapper let go: a stale entry
                self._unindex(sp)
                continue
            if self.identity_mode == "full":
                if sp.frame is not None:
                    stored, mine, nbytes = bytes(sp.frame.data), page, PAGE_SIZE
                elif where == "small" and sp.size != PAGE_SIZE:
                    stored, mine, nbytes = self.device.pool.read(sp.handle, sp.size), block, clen
                else:                       # stored whole (the larger branch, or zram's huge rule)
                    stored, mine, nbytes = self.device.pool.read(sp.handle, PAGE_SIZE), page, PAGE_SIZE
                equal = stored == mine
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
                return self._map(ctx, sp, branch, where, swapdev)
        slot = swapdev.get_slot()
        ok = self.device.write_page(slot, page) if index is self.small else \
            self.device.store_uncompressed(slot, page, block)
        if not ok:
            swapdev.put_slot(slot)
            self.decisions_[ctx] = Decision(where, "refused")
            return None
        handle, size = self.device.handle[slot], self.device.size[slot]
        eid = self.entries.add(where == "large", store_key, size, handle) if self._compiled_hash else -1
        sp = StoredPage(slot, handle, size, where, store_key, ctx, eid)
        index.setdefault(store_key, []).append(sp)
        self.slot_page[slot] = sp
        self.device.register(slot, sp)
        self.decisions_[ctx] = Decision(where, "stored")
        self._batch[slot] = 1
        return slot

    def _map(self, ctx, sp: StoredPage, branch: str, where: str, swapdev: SwapDevice):
        """Map the candidate's virtual address to the stored page found, as the mapping reading says."""
        if where == "small":
            self.shared_small_ += 1
        else:
            self.shared_large_ += 1
        self.decisions_[ctx] = Decision(where, "shared", sp.owner)
        bus = self.device.bus
        pid, va = ctx
        if self.mapping == "pte-swap-entry":                      # the PTE's swap entry names the found slot
            batch = getattr(self, "_batch", {})
            batch[sp.slot] = batch.get(sp.slot, 0) + 1
            if bus.enabled:
                bus.emit(dev.DedupShare(self.name, dev.LINK_VA_STORED, f"pid {pid} va {va:#x} ({branch})",
                                        f"slot {sp.slot}", swapdev.swap_map[sp.slot] + batch[sp.slot]))
            return sp.slot
        if self.mapping == "slot-remap":                          # a new slot points at the shared handle
            slot = swapdev.get_slot()
            self.device.share_slot(slot, sp)
            self.slot_page[slot] = sp
            if bus.enabled:
                bus.emit(dev.DedupShare(self.name, dev.LINK_SLOT_HANDLE, f"slot {slot} (pid {pid} va {va:#x}, "
                                        f"{branch})", f"handle {sp.handle:#x}", sp.refs))
            return slot
        self._pending.append((ctx, sp))                           # pte-frame: mapped once the batch is out
        return None

    def map_frames(self) -> None:
        """mapping=pte-frame: point each matched candidate's PTE at a resident frame holding the
        found page (write-protected, copied on write, as a KSM page), bringing the found page
        back from the store into that frame the first time; its owner's PTE maps the frame too
        and its slot is released."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        m = self.machine
        mms = {mm.pid: mm for mm in m.mms}
        bus = self.device.bus
        for (pid, va), sp in pending:
            if sp.frame is None or sp.frame.freed:
                data = self.device.read_page(sp.slot)
                if sp.size != PAGE_SIZE:
                    self.work.decompressions += 1
                f = m.alloc_frame(data)
                f.ksm = True                       # never written in place: a write copies it
                sp.frame = f
                opid, ova = sp.owner
                omm = mms.get(opid)
                opte = omm.ptes.get(ova) if omm is not None else None
                if opte is not None and opte.frame is None and opte.swp == sp.slot:
                    slot = sp.slot
                    opte.frame, opte.swp, opte.writable = f, None, False
                    f.mapcount += 1
                    if bus.enabled:
                        bus.emit(dev.DedupShare(self.name, dev.LINK_PTE, f"pid {opid} va {ova:#x} (owner)",
                                                f"pfn {f.pfn:#x}", f.mapcount))
                    self.swapdev.swap_free(slot)   # the stored copy is no longer needed
            m.replace_page(mms[pid], va, sp.frame, writable=False)
            if bus.enabled:
                bus.emit(dev.DedupShare(self.name, dev.LINK_PTE, f"pid {pid} va {va:#x}", f"pfn {sp.frame.pfn:#x}",
                                        sp.frame.mapcount))

    def _unindex(self, sp: StoredPage) -> None:
        index = self.small if sp.index == "small" else self.large
        lst = index.get(sp.key)
        if lst is not None and sp in lst:
            lst.remove(sp)
            if not lst:
                del index[sp.key]

    def load(self, slot: int) -> bytes:
        return self.device.read_page(slot)

    def slot_free_notify(self, slot: int) -> None:
        sp = self.slot_page.pop(slot, None)
        self.device.release_slot(slot)                     # drops one reference to the handle, or frees it
        if sp is not None:
            if sp.refs > 0:
                if sp.slot == slot:                        # slot-remap: the handle lives on in another slot
                    sp.slot = next(s for s, p in self.slot_page.items() if p is sp)
            elif sp.frame is None:
                self._unindex(sp)
            else:
                sp.slot = sp.handle = None                 # pte-frame: the frame now holds the page
        if self.device.bus.enabled:
            self.device.bus.emit(dev.DedupRelease(self.name, dev.LINK_VA_STORED, f"slot {slot}", 0, True))

    def compact(self) -> None:
        self.device.compact()

    # -- measures --------------------------------------------------------------------------------
    def _stored_pages(self) -> list[StoredPage]:
        return [sp for idx in (self.small, self.large) for lst in idx.values() for sp in lst]

    def _live_frames(self) -> list[StoredPage]:
        return [sp for sp in self._stored_pages() if sp.frame is not None and not sp.frame.freed]

    def second_space_saved_bytes(self) -> int:
        """Bytes the second memory space does not hold thanks to sharing, against storing every
        swapped page on its own."""
        if self.mapping == "pte-frame":
            return sum(sp.frame.mapcount * sp.size for sp in self._live_frames() if sp.frame.mapcount > 1)
        if self.mapping == "slot-remap":
            return sum((sp.refs - 1) * sp.size for sp in self._stored_pages() if sp.refs > 1)
        sm = self.swapdev.swap_map
        return sum((sm[s] - 1) * sp.size for s, sp in self.slot_page.items() if sm[s] > 1)

    def saved_bytes(self) -> int:
        return self.second_space_saved_bytes()

    def accounting(self) -> dict:
        """Where the bytes are, under this run's reading of "second memory space"."""
        stored = len(self._stored_pages())
        index = stored * INDEX_ENTRY_SIZE
        refcounts = stored * REFCOUNT_SIZE if self.mapping == "slot-remap" else 0
        frames = len([sp for sp in self._live_frames() if sp.frame.mapcount > 1]) * PAGE_SIZE
        saved = self.second_space_saved_bytes()
        ram_saved = saved if self.second_space == "carved-pool" else 0
        return {"second_space": self.second_space, "second_space_saved_bytes": saved,
                "index_bytes": index, "refcount_bytes": refcounts, "resident_frame_bytes": frames,
                "ram_saved_bytes": ram_saved, "ram_net_saved_bytes": ram_saved - index - refcounts - frames}

    def metadata_bytes(self) -> int:
        a = self.accounting()
        return a["index_bytes"] + a["refcount_bytes"] + a["resident_frame_bytes"]

    def pages_merged(self) -> int:
        if self.mapping == "pte-frame":
            return sum(sp.frame.mapcount - 1 for sp in self._live_frames() if sp.frame.mapcount > 1)
        if self.mapping == "slot-remap":
            return sum(sp.refs - 1 for sp in self._stored_pages() if sp.refs > 1)
        sm = self.swapdev.swap_map
        return sum(sm[s] - 1 for s in self.slot_page if sm[s] > 1)

    def mm_stat(self) -> dict:
        return self.device.mm_stat()

    def finish(self) -> None:
        self.__dict__.pop("_bufs", None)                  # the compiled path's batch buffers
        super().finish()
        self.accounting_ = self.accounting()

    def result(self) -> dict:
        d = super().result()
        d["construction"] = {k.replace("_", "-"): v for k, v in self.construction.items()}
        d["predetermined_size_bytes"] = self.predetermined_size
        d["pages_shared_small"] = self.shared_small_
        d["pages_shared_large"] = self.shared_large_
        d["accounting"] = self.accounting_
        return d
