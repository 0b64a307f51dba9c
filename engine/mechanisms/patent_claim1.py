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
"""
from __future__ import annotations

from typing import NamedTuple

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash
from ..pages import PAGE_SIZE
from ..swap import SwapDevice
from ..zram import ZRAM_HUGE, ZramDevice, is_same_filled
from . import events as dev
from .base import Mechanism, register

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


class StoredPage:
    """A page the method stored, as its index sees it: where it is, which hash keys it, and
    who maps it (swap_map of its slot, slots sharing its handle, or a resident frame)."""

    __slots__ = ("slot", "handle", "size", "index", "key", "owner", "refs", "frame")

    def __init__(self, slot, handle, size, index, key, owner):
        self.slot = slot
        self.handle = handle
        self.size = size
        self.index = index          # "small" or "large"
        self.key = key
        self.owner = owner          # (pid, va) of the page that stored it
        self.refs = 1               # slots that point at its handle
        self.frame = None           # mapping=pte-frame: the resident frame its mappers share


class ClaimStore(ZramDevice):
    """zram as the second memory space, with slots that may share one handle (mapping=slot-remap,
    as zram dedup points several slots at one ``zram_entry``). ``compr_data_size`` counts each
    stored object once; a shared slot counts in ``orig_data_size`` and, if whole, ``huge_pages``."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pages: dict[int, StoredPage] = {}        # slot -> the stored page whose handle it holds

    def register(self, slot: int, sp: StoredPage) -> None:
        self.pages[slot] = sp

    def share_slot(self, slot: int, sp: StoredPage) -> None:
        """Point ``slot`` at ``sp``'s handle (no allocation, no compression)."""
        self._check_index(slot)
        self._slot_free(slot, "overwrite")
        sp.refs += 1
        self.handle[slot] = sp.handle
        self.size[slot] = sp.size
        if sp.size == PAGE_SIZE:
            self.flags[slot] = ZRAM_HUGE
            self.huge_pages += 1
        self.pages_stored += 1
        self.pages[slot] = sp

    def _slot_free(self, index: int, reason: str) -> None:
        sp = self.pages.pop(index, None)
        if sp is None or sp.refs <= 1:
            if sp is not None:
                sp.refs = 0
            return super()._slot_free(index, reason)
        sp.refs -= 1                                   # other slots still point at the handle
        if self.flags[index] & ZRAM_HUGE:
            self.huge_pages -= 1
        if self.bus.enabled:
            self.bus.emit(dev.DedupRelease("patent_claim1", dev.LINK_SLOT_HANDLE, f"handle {sp.handle:#x}",
                                           sp.refs, False))
        self.pages_stored -= 1
        self.flags[index] = 0
        self.handle[index] = 0
        self.size[index] = 0


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
        self.decisions_: dict[tuple, Decision] = {}        # (pid, va) -> the last decision for that page
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
        # slot -> PTEs this batch gives it: the swap device raises swap_map for them only after
        # the batch, so a share event counts them here to report the true reference count
        self._batch: dict[int, int] = {}
        return [self._swap_out_one(bytes(d), ctx, swapdev) for d, ctx in zip(datas, ctxs)]

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
        sp = StoredPage(slot, self.device.handle[slot], self.device.size[slot], where, store_key, ctx)
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
        self.device.slot_free_notify(slot)                 # drops one reference to the handle, or frees it
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
