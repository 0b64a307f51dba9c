"""KSM as a mechanism on the shared workload: ksmd merges resident pages (``PTE -> KSM
page``) before swap-out; pages it could not merge go to upstream zram when swapped."""
from __future__ import annotations

from ..compress import DEFAULT_COMPRESSOR
from ..ksm import Ksmd, RMAP_ITEM_SIZE, STABLE_NODE_SIZE
from ..pages import PAGE_SIZE
from . import events as dev
from .base import ZramLevelMechanism, register


@register
class KsmMechanism(ZramLevelMechanism):
    name = "ksm"
    title = "KSM (kernel samepage merging)"
    link = dev.LINK_PTE
    when = dev.WHEN_SCAN
    hashes = "the raw page, low 32 bits of XXH64, only as a volatility checksum between scans"
    identity = "full 4096-byte memcmp against pages in the stable and unstable trees"
    metadata = f"rmap_item {RMAP_ITEM_SIZE} B per scanned page + stable node {STABLE_NODE_SIZE} B per KSM page or chain"
    source = "Linux mm/ksm.c (mainline since 2.6.32, 2009)"
    kind = "design"
    date = "2024-11-17"
    reference = "linux-mm-ksm"
    summary = "KSM as in Linux 6.12-6.18: XXH64 volatility checksum, memcmp trees, chains, use_zero_pages, smart scan"

    def __init__(self, algo=DEFAULT_COMPRESSOR, mem_limit=0, use_zero_pages=False, max_page_sharing=256, smart_scan=False,
                 hash=None):
        super().__init__(algo, mem_limit)
        self.tree_key = None
        if hash is not None:                       # replace the tree index key (the weak-hash test)
            from ..hashes import get_hash
            fn = get_hash(hash)[1]
            self.tree_key = lambda frame: fn(frame.data)
        self.use_zero_pages = use_zero_pages
        self.max_page_sharing = max_page_sharing
        self.smart_scan = smart_scan
        self.variant = f"use_zero_pages={int(use_zero_pages)}, max_page_sharing={max_page_sharing}"

    def attach(self, machine, nslots):
        super().attach(machine, nslots)
        self.ksmd = Ksmd(machine, pages_to_scan=max(100, nslots + 64), max_page_sharing=self.max_page_sharing,
                         use_zero_pages=self.use_zero_pages, smart_scan=self.smart_scan, tree_key=self.tree_key)

    def prepare(self, machine, mms):
        for mm in mms:
            for vma in list(mm.vmas):
                self.ksmd.madvise_mergeable(mm, vma.start, vma.end - vma.start)
        self.ksmd.set_run(1)
        self.ksmd.run_until_converged()

    def trigger(self) -> None:
        # a later pass, so pages written since convergence are seen (no-op when nothing changed)
        if self.ksmd.run & 1:
            self.ksmd.full_scan()

    def stable_nodes(self) -> int:
        return self.ksmd.stable_node_count()

    def saved_bytes(self) -> int:
        return (self.ksmd.pages_sharing + self.ksmd.ksm_zero_pages) * PAGE_SIZE

    def metadata_bytes(self) -> int:
        return self.ksmd.rmap_items * RMAP_ITEM_SIZE + self.stable_nodes() * STABLE_NODE_SIZE

    def pages_merged(self) -> int:
        return self.ksmd.pages_sharing + self.ksmd.ksm_zero_pages

    def finish(self) -> None:
        self.work.pages_hashed = self.ksmd.pages_hashed
        self.work.bytes_hashed = self.ksmd.pages_hashed * PAGE_SIZE
        self.work.compares = self.ksmd.compares
        self.work.bytes_compared = self.ksmd.compares * PAGE_SIZE
        super().finish()

    def mm_stat(self) -> dict:
        d = super().mm_stat()
        d["ksm"] = self.ksmd.counters()
        return d
