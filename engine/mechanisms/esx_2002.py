"""VMware ESX Server content-based page sharing (Waldspurger, OSDI 2002, section 4).

What the paper describes, and what the model does with it:

* pages are scanned in a random order (4.3: "scans guest pages randomly"); the model scans
  every resident page of the workload once per pass, in an order shuffled with the workload's
  seed, before swap-out, and once more on the offline trigger;
* each scanned page is hashed, 64 bits (4.3); "A hash value that summarizes a page's contents
  is used as a lookup key into a hash table" (4.2). The paper's function is a Jenkins hash
  (its reference [14]); the model uses XXH64, selectable with ``hash=``. Either is a 64-bit
  hash of the raw page, and without a collision the decisions are the same;
* a match is confirmed by a full comparison of the page contents before sharing (4.2); a
  false match makes the page "ineligible for sharing" (4.3): ESX assumes every shared page has
  a unique hash, so under a colliding hash it shares *less*, never wrong contents;
* shared pages are copy-on-write: the PTE (for ESX, the guest-physical to machine mapping) is
  repointed to the shared frame, read-only, and a write makes a private copy (4.2);
* an unshared page is entered as a *hint*, not write-protected; on a later match the hint
  page is re-hashed, a hint whose page changed is stale and is replaced, otherwise a full
  compare decides (4.2). The model keeps hints so
  (:class:`~engine.mechanisms.legacy.ContentSharing`). The 4.3 text on hint frames is quoted
  below; the 4.2 paragraph on re-hashing a hint was not in the stored copy that was checked,
  so it carries no quote here and is flagged for a reviewer to confirm against the paper;
* each table entry is 16 bytes (4.3), the model's metadata.

The link it repoints is ``PTE -> page frame`` (the VMM's PPN -> MPN map). Pages that leave
memory go to a plain swap area, whole (:class:`~engine.mechanisms.legacy.SwapDisk`); the paper's
ballooning, idle-memory tax and its own swap policy are not modelled.

Not modelled: the overflow table for reference counts above 16 bits, per-VM scan-rate limits,
the zero-page special case and hot I/O page remapping.
"""
from __future__ import annotations

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash
from ..pages import PAGE_SIZE
from . import events as dev
from .base import Citation, ZramLevelMechanism, register
from .legacy import ESX_FRAME_SIZE, ContentSharing, SwapDisk

REF = "vmware-esx-2002"


@register
class Esx2002(ZramLevelMechanism):
    name = "esx_2002"
    title = "VMware ESX content-based page sharing (Waldspurger, OSDI 2002)"
    link = dev.LINK_PTE
    when = dev.WHEN_SCAN
    hashes = "the raw page, a 64-bit hash (Jenkins in the paper; XXH64 in the model), as the hash-table key"
    identity = "hash-table match, then a full comparison of the page contents; a false match is not shared"
    metadata = f"{ESX_FRAME_SIZE} B frame per scanned page (shared frame or hint)"
    source = "C. A. Waldspurger, Memory Resource Management in VMware ESX Server, OSDI 2002, section 4"
    kind = "prior-art"
    date = "2002-12"
    reference = REF
    summary = "hash of page contents into one global table, full compare, copy-on-write sharing, hint entries"
    citations = (
        Citation(REF, "section 4.2 (Content-Based Page Sharing)",
                 "A successful match is followed by a full comparison of the page contents to verify that the "
                 "pages are identical."),
        Citation(REF, "section 4.2",
                 "Any subsequent attempt to write to the shared page will generate a fault, transparently "
                 "creating a private copy of the page for the writer."),
        Citation(REF, "section 4.3 (Implementation)",
                 "A single global hash table contains frames for all scanned pages, and chaining is used to "
                 "handle collisions."),
        Citation(REF, "section 4.3",
                 "A hint frame is similar, but encodes a truncated hash value to make room for a reference back "
                 "to the corresponding guest page"),
        Citation(REF, "section 4.3",
                 "Any page that happens to yield a false match is considered ineligible for sharing."),
        Citation(REF, "section 4.3", "Each frame is encoded compactly in 16 bytes."),
        Citation(REF, "section 4.3", "The current ESX Server page sharing implementation scans guest pages randomly."),
    )

    def __init__(self, hash="xxhash64", seed=0, algo=DEFAULT_COMPRESSOR, mem_limit=0):
        super().__init__(algo, mem_limit)
        self.hash_name, self.hash_fn = get_hash(hash)
        self.seed = seed
        self.variant = f"hash={self.hash_name}, random scan seed={seed}"

    def make_device(self, disksize, bus):
        return SwapDisk(disksize, bus)

    def attach(self, machine, nslots):
        super().attach(machine, nslots)
        self.sharing = ContentSharing(machine, self.name, self.hash_name, self.hash_fn, self.work, hints=True)
        self._passes = 0

    def prepare(self, machine, mms):
        self.mms = mms
        self._scan()

    def _scan(self):
        self.sharing.scan(self.mms, "random", self.seed + self._passes)
        self._passes += 1

    def trigger(self) -> None:
        self._scan()

    def saved_bytes(self) -> int:
        return self.sharing.pages_merged() * PAGE_SIZE

    def pages_merged(self) -> int:
        return self.sharing.pages_merged()

    def metadata_bytes(self) -> int:
        return self.sharing.entries() * ESX_FRAME_SIZE

    def mm_stat(self) -> dict:
        d = super().mm_stat()
        d["esx"] = {"frames": self.sharing.entries(), "shared_frames": len(self.sharing.shared_frames()),
                    "false_matches": self.sharing.false_matches, "stale_hints": self.sharing.stale_hints}
        return d
