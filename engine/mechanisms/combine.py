"""Executable combinations of two prior-art mechanisms, compared page by page with a claimed method.

A *composition* takes the identity test and the remapping of one mechanism (the *sharer*,
A) and puts them on the store of another (the *store*, B), whose own size rule becomes the
size branch. On swap-out each page goes through one pipeline:

1. B's front end: zram 3.14 keeps an all-zero page as a flag (no compression, no sharing);
   zswap 3.11 has no such test;
2. B compresses the page (both sides of a comparison use the same compressor);
3. B's size rule decides the branch: ``small`` (B keeps it compressed) or ``large`` (zram 3.14
   stores it whole above ``max_zpage_size``; zswap 3.11 rejects it to the swap device, whole);
4. A's identity test looks for a stored page with the same contents, among *all* stored
   pages (A's index is global, as KSM's trees and ESX's table are). KSM 2.6.32: the jhash2
   checksum of the raw page is taken (a volatility checksum; it decides nothing here), and the
   content-ordered index is searched by the raw bytes, with a full memcmp. ESX 2002 and
   Difference Engine 2008: a 64-bit hash of the raw page is the table key, a match is confirmed
   by a full compare of the raw bytes, and a false match is not shared;
5. A's remapping: on a match, the page's PTE gets a swap entry naming the found page's slot
   (``virtual address -> stored page``, the same link the claimed method's model uses), and
   nothing new is stored; on a miss, B stores the page and A indexes it.

Identical pages compress to identical lengths, so a global search finds only pages of the
same branch; that the size rule *splits the index*, as the claim does, is not needed for the
composition to reach the same page.

Composable pairs (:data:`SHARERS` x :data:`STORES`) are the sharers with an identity test on
page contents and the stores with a size rule. Any other pair is refused.

:func:`compare_with_claim` runs the composition and the claimed method (``patent_claim1``,
its predetermined size set to B's threshold, so that the two split pages at the same length)
on the same pages, swapped out in the same order through the same chain, and compares their
per-page decisions: whether each page was shared or stored, with which stored page, in which
branch, and what each hashed. The result is technical evidence for a reviewer, not a legal
conclusion.
"""
from __future__ import annotations

from typing import NamedTuple

import xxhash

from ..errors import InputError
from ..hashes import get_hash
from ..pages import PAGE_SIZE
from ..swap import SwapDevice
from . import events as dev
from .base import Mechanism, Workload

#: sharers: identity test on page contents, and a remapping
SHARERS = {
    "ksm_2_6_32": {"hash": "jhash2-2.6.32", "hashes": "uncompressed page, jhash2 (lookup2, initval 17) as a "
                   "volatility checksum; identity by memcmp in a content-ordered index",
                   "identity": "memcmp of the raw page in the content-ordered index", "index": "content",
                   "entry_bytes": 64, "collision": "n/a"},
    "esx_2002": {"hash": "xxhash64", "hashes": "uncompressed page, 64-bit hash (XXH64 for the paper's Jenkins hash) "
                 "as the table key", "identity": "hash-table match, then a full compare of the raw page",
                 "index": "hash", "entry_bytes": 16, "collision": "ineligible"},
    "difference_engine_2008": {"hash": "xxhash64", "hashes": "uncompressed page, 64-bit hash (XXH64) as the table key",
                               "identity": "hash-table match, then a full compare of the raw page", "index": "hash",
                               "entry_bytes": 16, "collision": "ineligible"},
}
#: stores with a size rule: the compressed length above which a page is not kept compressed,
#: and the claim's predetermined size that splits pages at the same length
STORES = {
    "zram_3_14": {"rule": "stored whole when clen > 3072 (max_zpage_size)", "max_small": 3072,
                  "zero_flag": True, "algo": "kernel-lzo"},
    "zswap_3_11": {"rule": "rejected to the swap device, whole, when clen + 8 > 3968 (zbud)", "max_small": 3960,
                   "zero_flag": False, "algo": "kernel-lzo"},
}
AGAINST = ("patent_claim1",)


def valid_pairs() -> list[tuple[str, str]]:
    return [(a, b) for a in SHARERS for b in STORES]


def check_pair(a: str, b: str) -> None:
    if (a, b) not in valid_pairs():
        raise InputError(f"combine {a} {b}: not a composable pair; valid pairs (sharer store): "
                         + ", ".join(f"{x} {y}" for x, y in valid_pairs()))


class Decision(NamedTuple):
    """What happened to one swapped page: its size branch (``small``, ``large``, or
    ``zero-filled`` for a page the store kept as a flag), what was done (``shared``,
    ``stored``, ``refused``), and for a shared page the (pid, virtual address) of the page
    whose stored copy it was mapped to. The same fields as ``patent_claim1.Decision``."""

    branch: str
    action: str
    target: tuple | None = None


def _jhash2(data) -> int:
    from .ksm_2_6_32 import jhash2_2632
    return jhash2_2632(data)


class Composition(Mechanism):
    """Sharer A's identity test and remapping on store B's store, B's size rule as the branch."""

    link = dev.LINK_VA_STORED
    when = dev.WHEN_SWAPOUT
    kind = "prior-art"

    def __init__(self, sharer: str, store: str, algo: str | None = None, hash: str | None = None):
        check_pair(sharer, store)
        self.sharer, self.store = sharer, store
        self.spec, self.sspec = SHARERS[sharer], STORES[store]
        super().__init__(algo or self.sspec["algo"], 0)
        self.name = f"{sharer}+{store}"
        self.title = f"{sharer}'s identity test and remapping on {store}'s store"
        hname = hash or self.spec["hash"]
        if hname == "jhash2-2.6.32":
            self.hash_name, self.hash_fn = "jhash2 (lookup2, initval 17)", _jhash2
        else:
            self.hash_name, self.hash_fn = get_hash(hname)
        self.hashes = self.spec["hashes"]
        self.identity = self.spec["identity"]
        self.variant = f"branch: {self.sspec['rule']}; hash={self.hash_name}; compressor={self.algo}"

    @property
    def claim_size(self) -> int:
        """The claim's predetermined size that splits pages where B does (smaller iff kept compressed)."""
        return self.sspec["max_small"] + 1

    # -- the store -----------------------------------------------------------------------------
    def attach(self, machine, nslots):
        if self.store == "zram_3_14":
            from .zram_3_14 import Zram314Device
            self.device = Zram314Device(nslots * PAGE_SIZE, self.algo, 0, machine.bus)
            self.comp = self.device.comp
        else:
            from .zswap_3_11 import ZswapStore
            self.device = ZswapStore(nslots, self.algo, machine.bus, self.name, 0, self.work)
            self.comp = self.device.comp
        self.swapdev = SwapDevice(machine, self, nslots)
        self.by_content: dict[bytes, list[int]] = {}
        self.by_hash: dict[int, int] = {}
        self.slot_key: dict[int, tuple] = {}
        self.owner: dict[int, tuple] = {}
        self.slot_size: dict[int, int] = {}
        self.decisions_: dict[tuple, Decision] = {}
        self.false_matches = 0

    def _store(self, slot, raw, block) -> int:
        if self.store == "zram_3_14":
            self.device.store_page(slot, raw, block, False)
            return self.device.size[slot]
        self.device.store(slot, raw, block)
        return len(block) if slot in self.device.tree else PAGE_SIZE

    def load(self, slot: int) -> bytes:
        return self.device.read_page(slot) if self.store == "zram_3_14" else self.device.load(slot)

    def slot_free_notify(self, slot: int) -> None:
        key = self.slot_key.pop(slot, None)
        if key is not None:
            kind, k = key
            if kind == "content":
                self.by_content[k].remove(slot)
                if not self.by_content[k]:
                    del self.by_content[k]
            elif self.by_hash.get(k) == slot:
                del self.by_hash[k]
        self.owner.pop(slot, None)
        self.slot_size.pop(slot, None)
        if self.store == "zram_3_14":
            self.device.slot_free_notify(slot)
        else:
            self.device.invalidate(slot)
        if self.machine.bus.enabled:
            self.machine.bus.emit(dev.DedupRelease(self.name, dev.LINK_VA_STORED, f"slot {slot}", 0, True))

    # -- the pipeline --------------------------------------------------------------------------
    def swap_out_pages(self, datas, ctxs, swapdev) -> list:
        self._batch: dict[int, int] = {}       # slot -> PTEs this batch gives it (swap_map counts them after)
        return [self._one(bytes(d), ctx, swapdev) for d, ctx in zip(datas, ctxs)]

    def _one(self, raw: bytes, ctx, swapdev):
        w = self.work
        bus = self.machine.bus
        if self.sspec["zero_flag"] and raw.count(0) == PAGE_SIZE:     # 1. B's front end
            slot = swapdev.get_slot()
            self.device.write_page(slot, raw)
            self.owner[slot] = ctx
            self.decisions_[ctx] = Decision("zero-filled", "stored")
            return slot
        block = self.comp.compress(raw)[0]                              # 2. B compresses
        w.compressions += 1
        clen = len(block)
        branch = "small" if clen <= self.sspec["max_small"] else "large"   # 3. B's size rule
        h = self.hash_fn(raw)                                           # 4. A's identity test
        w.pages_hashed += 1
        w.bytes_hashed += PAGE_SIZE
        if bus.enabled:
            bus.emit(dev.DedupHash(self.name, "uncompressed page", self.hash_name, PAGE_SIZE, dev.WHEN_SWAPOUT, h))
        if self.spec["index"] == "content":
            key = ("content", xxhash.xxh3_128_digest(raw))
            cands = list(self.by_content.get(key[1], ()))
        else:
            key = ("hash", h)
            s = self.by_hash.get(h)
            cands = [s] if s is not None else []
        for slot in cands:
            equal = self.load(slot) == raw
            w.compares += 1
            w.bytes_compared += PAGE_SIZE
            if bus.enabled:
                bus.emit(dev.DedupCompare(self.name, "full compare", "uncompressed page", PAGE_SIZE, equal))
            if equal:                                                   # 5. A's remapping
                self._batch[slot] = self._batch.get(slot, 0) + 1
                if bus.enabled:
                    pid, va = ctx
                    bus.emit(dev.DedupShare(self.name, dev.LINK_VA_STORED, f"pid {pid} va {va:#x} ({branch})",
                                            f"slot {slot}", swapdev.swap_map[slot] + self._batch[slot]))
                self.decisions_[ctx] = Decision(branch, "shared", self.owner[slot])
                return slot
            if self.spec["collision"] == "ineligible":
                self.false_matches += 1
        slot = swapdev.get_slot()
        self._batch[slot] = 1
        self.slot_size[slot] = self._store(slot, raw, block)
        self.owner[slot] = ctx
        if key[0] == "content":
            self.by_content.setdefault(key[1], []).append(slot)
            self.slot_key[slot] = key
        elif h not in self.by_hash:
            self.by_hash[h] = slot
            self.slot_key[slot] = key
        self.decisions_[ctx] = Decision(branch, "stored")
        return slot

    # -- measures ------------------------------------------------------------------------------
    def pages_merged(self) -> int:
        sm = self.swapdev.swap_map
        return sum(sm[s] - 1 for s in self.owner if sm[s] > 1)

    def saved_bytes(self) -> int:
        sm = self.swapdev.swap_map
        return sum((sm[s] - 1) * self.slot_size.get(s, 0) for s in self.owner if sm[s] > 1)

    def metadata_bytes(self) -> int:
        return len(self.slot_key) * self.spec["entry_bytes"]

    def mm_stat(self) -> dict:
        return self.device.mm_stat()

    def finish(self) -> None:
        self.work.decompressions += self.device.work_decompressions
        super().finish()


# ---- the comparison ------------------------------------------------------------------------------
def _describe(d: Decision | None, where: dict) -> dict:
    if d is None:
        return {"action": "not swapped"}
    out = {"action": d.action, "branch": d.branch}
    if d.target is not None:
        out["shared_with_page"] = where.get(tuple(d.target))
    return out


def _reason(c: Decision, p: Decision, store: str) -> str:
    if c.branch == "zero-filled":
        return (f"zero-filled page: {store} keeps it as a flag without compressing or hashing it; "
                f"the claimed method compresses it and {'shares' if p.action == 'shared' else 'stores'} it")
    if c.action != p.action:
        if p.action == "shared" and c.action != "shared":
            return "shared by the claimed method only"
        if c.action == "shared" and p.action != "shared":
            return "shared by the combination only"
        return f"{c.action} by the combination, {p.action} by the claimed method"
    if c.target != p.target:
        return "both shared, with different stored pages"
    return "different size branch"


def compare_with_claim(sharer: str, store: str, pages, against: str = "patent_claim1", manifest=None,
                       algo: str | None = None, examples: int = 10, bus=None, construction: dict | None = None) -> dict:
    """Run the composition of ``sharer`` and ``store`` and the claimed method on ``pages`` and
    compare their decisions page by page. Returns the JSON-ready summary.

    ``construction``: engine parameters of the claimed method for a chosen reading of the
    claim's words (``claims.constructions.chosen_params``; e.g. ``{"equal": "smaller"}``). The
    predetermined size is B's threshold unless the reading sets one."""
    check_pair(sharer, store)
    if against not in AGAINST:
        raise InputError(f"--against {against}: the comparison is with {', '.join(AGAINST)}")
    from . import make
    comp = Composition(sharer, store, algo)
    wl = Workload(pages, manifest, swap_fraction=1.0, policy="lru")
    comp.run(wl, bus=bus)
    params = {"predetermined_size": comp.claim_size, **(construction or {})}
    try:
        claim = make(against, algo=comp.algo, **params)
    except (TypeError, ValueError) as e:
        raise InputError(f"--construction: {e}") from None
    claim.run(wl, bus=bus)
    where = {(mm.pid, va): i for i, (mm, va) in enumerate(comp.where_)}
    same = 0
    reasons: dict[str, int] = {}
    ex = []
    for i, (mm, va) in enumerate(comp.where_):
        ctx = (mm.pid, va)
        c, p = comp.decisions_.get(ctx), claim.decisions_.get(ctx)
        cn = (c.action, c.branch, c.target) if c else None
        pn = (p.action, p.branch, tuple(p.target) if p and p.target is not None else None) if p else None
        if cn == pn:
            same += 1
            continue
        why = _reason(c, p, store) if c and p else "swapped by one side only"
        reasons[why] = reasons.get(why, 0) + 1
        if len(ex) < examples:
            cd, pd = _describe(c, where), _describe(p, where)
            raw = bytes(pages.page(i))
            clen = len(comp.comp.compress(raw)[0])
            cd["hashed"] = "nothing (kept as a flag)" if c and c.branch == "zero-filled" else \
                f"uncompressed page, {PAGE_SIZE} B, {comp.hash_name}"
            pd["hashed"] = (f"compressed page, {clen} B, {claim.hash_name}"
                            if getattr(claim, "hash_input", "compressed-bytes") == "compressed-bytes"
                            else f"uncompressed page, {PAGE_SIZE} B, {claim.hash_name}")
            ex.append({"page": i, "pid": mm.pid, "vaddr": va, "reason": why, "combination": cd, "claimed": pd})
    n = len(comp.where_)
    cw, pw = comp.work_, claim.work_
    return {
        "pages": n,
        "same_decisions": same,
        "different_decisions": n - same,
        "differences_by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "examples": ex,
        "combination": {"name": comp.name, "sharer": sharer, "store": store, "branch_rule": comp.sspec["rule"],
                        "hashed": comp.hashes, "identity": comp.identity, "link": comp.link,
                        "pages_shared": comp.pages_merged_, "pages_hashed": cw["pages_hashed"],
                        "bytes_hashed": cw["bytes_hashed"], "compares": cw["compares"],
                        "false_matches": comp.false_matches, "verified_readback": comp.verified_readback_},
        "claimed": {"name": against, "variant": claim.variant, "predetermined_size": claim.predetermined_size,
                    "construction": claim.result().get("construction", {}),
                    "hashed": claim.hashes, "identity": claim.identity, "link": claim.link,
                    "pages_shared": claim.pages_merged_, "pages_hashed": pw["pages_hashed"],
                    "bytes_hashed": pw["bytes_hashed"], "compares": pw["compares"],
                    "verified_readback": claim.verified_readback_},
        "compressor": comp.algo,
        "reading": {k.replace("_", "-"): v for k, v in (construction or {}).items()},
        "note": "Technical evidence about what each method does on these pages; not legal advice and no "
                "conclusion about any claim.",
    }


def summary_line(r: dict) -> str:
    """The sentence a report shows for a comparison (evidence, never a conclusion)."""
    diffs = "; ".join(f"{k} ({v})" for k, v in r["differences_by_reason"].items()) or "nothing"
    reading = r.get("reading") or {}
    under = (" under the reading " + ", ".join(f"{k}={v}" for k, v in reading.items())) if reading else ""
    return (f"On {r['pages']} pages the combination {r['combination']['name']} decided as the claimed method "
            f"({r['claimed']['name']}{under}) on {r['same_decisions']}; it differs on {r['different_decisions']}: {diffs}. "
            f"The combination hashed the {r['combination']['hashed'].split(',')[0]}; the claimed method hashed "
            f"{r['claimed']['hashed'].split(',')[0]}.")
