"""Difference Engine (Gupta et al., OSDI 2008): whole-page sharing, and compression of pages
that were not recently used.

Modelled:

* **whole-page sharing**: resident pages are hashed into a table, a hash match is confirmed
  by a full compare, and identical pages are mapped copy-on-write to one frame (``PTE -> page
  frame``), as in ESX; the model runs the same table as :mod:`.esx_2002` without hint
  re-hashing, scanning pages in address order (a clock), before swap-out and again on the
  offline trigger;
* **compression of cold pages**: the pages the workload's policy picks (``lru``: the least
  recently used) are compressed and kept in memory in a compressed store. The store is the
  engine's zram device with its zsmalloc pool (same-filled test off), and a page that does not
  compress below the pool's whole-page threshold is kept whole.

Not modelled: **sub-page patching** of similar pages (the reference page plus a delta), the
paper's choice of hash function, compressor and scan rate, its memory accounting, and its
policy that decides between patching, compression and swapping to disk. Where the engine
differs from the paper's Xen implementation: the compressed store is zsmalloc (Xen's heap in
the paper) and the metadata is priced as 16 B per hash-table entry, ESX's frame size, because
the paper's structure sizes are not modelled (a model assumption).
"""
from __future__ import annotations

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash
from ..pages import PAGE_SIZE
from ..zram import ZramDevice
from . import events as dev
from .base import Citation, ZramLevelMechanism, register
from .legacy import ESX_FRAME_SIZE, ContentSharing

REF = "difference-engine-2008"


@register
class DifferenceEngine2008(ZramLevelMechanism):
    name = "difference_engine_2008"
    title = "Difference Engine: page sharing and compression of cold pages (Gupta et al., OSDI 2008)"
    link = dev.LINK_PTE
    when = dev.WHEN_SCAN
    hashes = "the raw page, a 64-bit hash (XXH64 in the model) as the table key"
    identity = "hash match, then a full compare; copy-on-write sharing"
    metadata = f"{ESX_FRAME_SIZE} B per hash-table entry (model assumption) + the compressed store's pool"
    source = ("D. Gupta et al., Difference Engine: Harnessing Memory Redundancy in Virtual Machines, OSDI 2008 "
              "(patching of similar pages not modelled)")
    kind = "prior-art"
    date = "2008-12"
    reference = REF
    summary = "whole-page sharing by hash and full compare, plus in-memory compression of pages not recently used"
    citations = (
        Citation(REF, "Abstract",
                 "significant additional gains can be had by leveraging both sub-page level sharing (through page "
                 "patching) and in-core memory compression"),
        Citation(REF, "Abstract",
                 "We build Difference Engine, an extension to the Xen virtual machine monitor, to support each of "
                 "these--in addition to standard copy-on-write full page sharing"),
    )

    def __init__(self, hash="xxhash64", algo=DEFAULT_COMPRESSOR, mem_limit=0):
        super().__init__(algo, mem_limit)
        self.hash_name, self.hash_fn = get_hash(hash)
        self.variant = f"hash={self.hash_name}, compressor={algo}, patching not modelled"

    def make_device(self, disksize, bus):
        return ZramDevice(disksize, self.algo, mem_limit=self.mem_limit, bus=bus, detect_same_filled=False)

    def attach(self, machine, nslots):
        super().attach(machine, nslots)
        self.sharing = ContentSharing(machine, self.name, self.hash_name, self.hash_fn, self.work, hints=False)

    def prepare(self, machine, mms):
        self.mms = mms
        self.sharing.scan(mms, "address")

    def trigger(self) -> None:
        self.sharing.scan(self.mms, "address")

    def saved_bytes(self) -> int:
        """Page bytes no longer backed by a frame of their own thanks to sharing (as for KSM and
        ESX); what compression saves shows in the store's ``mm_stat``."""
        return self.sharing.pages_merged() * PAGE_SIZE

    def pages_merged(self) -> int:
        return self.sharing.pages_merged()

    def metadata_bytes(self) -> int:
        return self.sharing.entries() * ESX_FRAME_SIZE
