"""The source of claims/data/US9977598/chart.yaml (run it to regenerate the YAML).

Reasoning states technical facts about each mechanism against each element's words and
names the open construction questions; it draws no legal conclusion.
"""
import json
import os

M = ["upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm", "patent_claim1"]


def ev(kind, shows, **where):
    return {"kind": kind, "where": where, "shows": shows}


def code(ref, note=""):
    return {"ref": ref, "note": note}


def cite(ref, pinpoint, quote=""):
    return {"reference": ref, "pinpoint": pinpoint, "quote": quote}


ROMANOV_Q = ("I think the patent is talking about \"mapping the virtual address\" (like in KSM). But zram works with "
             "the \"handle\" abstraction … Also, the patent speaks of \"compressing\" pages.")
SERGEY_Q = ("We had that KSM-ish thing in the past in zram. Very briefly as we quickly found out that the idea was "
            "patented by some company in China and we couldn't figure our if it was safe to land that code upstream. "
            "So we ended up dropping the patches.")
CLAIM = cite("us9977598", "claim 1 (col:line pinpoints follow once the PDF is imported)")

R = {}   # (element, mechanism) -> row

# ---- 1[pre] -----------------------------------------------------------------------------------
pre_zram = ("The device has a first memory space (process address spaces in RAM) and a second memory space "
            "(the zram block device, whose objects live in a zsmalloc pool carved from RAM). Pages move from the "
            "first to the second on swap-out. Whether a RAM-backed compressed store is a 'second memory space' is "
            "a construction question for the reviewer; technically the two spaces are distinct address spaces.")
for m in ("upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold"):
    R[("1[pre]", m)] = dict(status="present", reasoning=pre_zram, events=[
        ev("swap.out", "pages leave a process's address space for zram slots"),
        ev("zram.slot_written", "the page is stored in the second memory space")],
        code=[code("engine/swap.py:SwapDevice.swap_out"), code("kernel: drivers/block/zram/zram_drv.c zram_write_page()")],
        cites=[cite("linux-zram-zsmalloc", "drivers/block/zram/zram_drv.c")])
R[("1[pre]", "ksm")] = dict(status="partial", reasoning=(
    "KSM manages memory in one space only: it merges resident anonymous pages in RAM. No second memory space "
    "takes part in merging; pages that KSM merges stay resident. The method-for-managing-memory part is met, "
    "the two-spaces part is not used by the merging itself."),
    events=[ev("ksm.merge", "PTEs of resident pages repointed to one KSM page")],
    code=[code("engine/ksm.py:Ksmd._cmp_and_merge_page"), code("kernel: mm/ksm.c cmp_and_merge_page()")],
    cites=[cite("ksm-ols-2009", "Linux Symposium 2009 paper")])
R[("1[pre]", "patent_claim1")] = dict(status="present", reasoning=(
    "The engine's implementation of the claimed method runs between process address spaces (first memory space) "
    "and a compressed store (second memory space)."),
    events=[ev("swap.out", "candidate pages leave the first memory space")],
    code=[code("engine/mechanisms/patent_claim1.py:PatentClaim1")], cites=[CLAIM])

# ---- 1[a] selecting a candidate page for swap-out --------------------------------------------
sel = ("A reclaim policy (LRU-like in the engine, as in Linux's reclaim) selects a candidate page of a process and "
       "swaps it out: its PTE becomes a swap entry naming a zram slot in the second memory space.")
for m, extra in (("upstream_zram", ""), ("zram_dedup", " Deduplication then happens inline on this store."),
                 ("zram_merge", " Deduplication happens later, on an offline trigger, not for this candidate at swap-out."),
                 ("zsmalloc_fold", " Folding happens later, on an offline trigger inside the allocator, not for this candidate.")):
    R[("1[a]", m)] = dict(status="present", reasoning=sel + extra, events=[
        ev("swap.out", "a selected candidate's PTE now names a swap slot")],
        code=[code("engine/swap.py:select_candidates"), code("kernel: mm/vmscan.c shrink_folio_list()")], cites=[])
R[("1[a]", "ksm")] = dict(status="absent", reasoning=(
    "ksmd does not select pages for swapping. It walks every mergeable VMA in address order in a background scan "
    "and keeps one rmap_item per present anonymous page; no page leaves memory."),
    events=[ev("ksm.rmap_item_created", "pages are visited by the background scan, not selected for swap-out"),
            ev("ksm.full_scan", "the scan covers all mergeable memory")],
    code=[code("engine/ksm.py:Ksmd._scan_get_next"), code("kernel: mm/ksm.c scan_get_next_rmap_item()")], cites=[])
R[("1[a]", "patent_claim1")] = dict(status="present", reasoning="The method starts from swap candidates chosen by the same policy.",
    events=[ev("swap.out", "candidate pages are swapped out through the claimed method")],
    code=[code("engine/swap.py:select_candidates")], cites=[CLAIM])

# ---- 1[b] compressing; hash of the compressed page ---------------------------------------------
R[("1[b]", "upstream_zram")] = dict(status="partial", reasoning=(
    "Every stored page that is not same-filled is compressed (lz4/lzo). No hash of any kind is computed."),
    events=[ev("zram.compressed", "the page is compressed on store")],
    code=[code("engine/zram.py:ZramDevice._store_object"), code("kernel: drivers/block/zram/zram_drv.c zram_write_page()")], cites=[])
R[("1[b]", "zram_dedup")] = dict(status="partial", reasoning=(
    "The hash is a 32-bit checksum (jhash as posted, xxhash in later ports) of the uncompressed page, computed "
    "before compression; a page found to be a duplicate is not compressed at all. A hash of the compressed page "
    "is never taken."),
    events=[ev("dedup.hash", "what is hashed: the uncompressed page, inline on store", mechanism="zram_dedup", what="uncompressed page"),
            ev("zram.compressed", "compression happens only for pages with no stored duplicate")],
    code=[code("engine/mechanisms/zram_dedup.py:ZramDedupDevice._store_nonsame"),
          code("kernel tree: drivers/block/zram/zram_dedup.c zram_dedup_checksum()")],
    cites=[cite("kim-dedup-code", "drivers/block/zram/zram_dedup.c@09de59f5", "jhash(mem, PAGE_SIZE, 0)")])
R[("1[b]", "zram_merge")] = dict(status="partial", reasoning=(
    "Pages are compressed when stored. A hash of the compressed object (XXH64) is taken, but only later, when the "
    "offline merge is triggered, over all stored objects; it is not obtained together with compressing the "
    "candidate page. Whether a later hash of the stored compressed bytes meets this element is a construction "
    "question."),
    events=[ev("zram.compressed", "compression at store time"),
            ev("dedup.hash", "the compressed object is hashed on the offline trigger", mechanism="zram_merge", what="compressed object")],
    code=[code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")],
    cites=[cite("romanov-merge-2022", "patch 1/4 zram_cmp_obj_and_merge (Message-ID 20221121190020.66548-2-avromanov@sberdevices.ru)")])
R[("1[b]", "zsmalloc_fold")] = dict(status="partial", reasoning=(
    "zram compresses at store time. The allocator, which does not know the data is compressed, later hashes "
    "each object's slot bytes on the fold trigger (as posted: class-size bytes after the handle header, tail "
    "included). The hash is of allocator slots, taken apart from compression."),
    events=[ev("zram.compressed", "compression at store time"),
            ev("dedup.hash", "slot bytes hashed inside zsmalloc on the fold trigger", mechanism="zsmalloc_fold")],
    code=[code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")],
    cites=[cite("romanov-fold-2023", "patch 3/5 mm/zsmalloc: introduce objects folding mechanism")])
R[("1[b]", "ksm")] = dict(status="absent", reasoning=(
    "KSM compresses nothing. Its only hash is a 32-bit checksum (low bits of XXH64) of the raw page, used to skip "
    "pages that changed since the last scan; identity is decided by full memcmp."),
    events=[ev("ksm.checksum", "the raw page is hashed as a volatility filter during the background scan")],
    code=[code("engine/ksm.py:Ksmd._cmp_and_merge_page"), code("kernel: mm/ksm.c calc_checksum()")], cites=[])
R[("1[b]", "patent_claim1")] = dict(status="present", reasoning=(
    "The candidate page is compressed and the first hash value is taken over the compressed bytes, on swap-out."),
    events=[ev("dedup.hash", "the compressed page is hashed on swap-out", mechanism="patent_claim1", what="compressed object")],
    code=[code("engine/mechanisms/patent_claim1.py:PatentClaim1._swap_out_one")], cites=[CLAIM])

# ---- 1[c] small branch: compare with stored compressed pages ------------------------------------
R[("1[c]", "upstream_zram")] = dict(status="absent", reasoning="No comparison between pages is made; identical pages are stored twice.",
    events=[ev("zram.slot_written", "every page gets its own object")], code=[code("engine/mechanisms/upstream_zram.py")], cites=[])
R[("1[c]", "zram_dedup")] = dict(status="partial", reasoning=(
    "Checksums of the uncompressed candidate are compared with checksums of stored entries, then confirmed by "
    "decompressing and comparing the page. There is no branch on the compressed size and the hash is not of a "
    "compressed page; stored compressed and whole-page entries sit in the same buckets."),
    events=[ev("dedup.compare", "identity by full compare of the uncompressed page", mechanism="zram_dedup"),
            ev("dedup.share", "slot repointed to the existing entry", mechanism="zram_dedup")],
    code=[code("engine/mechanisms/zram_dedup.py:ZramDedupDevice._store_nonsame"),
          code("kernel tree: drivers/block/zram/zram_dedup.c zram_dedup_find()")],
    cites=[cite("kim-dedup-2017-v5", "Message-ID 1494556204-25796-1-git-send-email-iamjoonsoo.kim@lge.com")])
R[("1[c]", "zram_merge")] = dict(status="partial", reasoning=(
    "Stored compressed objects are compared with each other by XXH64 bucket and memcmp of the compressed bytes, "
    "only between objects of equal size. The comparison is among stored objects on a trigger, not for a "
    "candidate at swap-out, and there is no smaller-than-a-predetermined-size branch: whole-page (huge) objects "
    "take part in the same pass."),
    events=[ev("dedup.compare", "memcmp of compressed objects of equal size", mechanism="zram_merge"),
            ev("dedup.hash", "compressed objects hashed on the trigger", mechanism="zram_merge")],
    code=[code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")],
    cites=[cite("romanov-reply-2022", "Message-ID 20221122121413.ssieckg523urj37h@cab-wsm-0029881.lan", ROMANOV_Q)])
R[("1[c]", "zsmalloc_fold")] = dict(status="partial", reasoning=(
    "Objects are compared only within one zsmalloc size class (a partition by size), by hash bucket and memcmp. "
    "Size classes are not a single predetermined size, and the comparison is between stored objects on a trigger. "
    "As posted, the compared bytes include the slot tail and the next slot's header."),
    events=[ev("dedup.compare", "memcmp of slot bytes within a size class", mechanism="zsmalloc_fold")],
    code=[code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")],
    cites=[cite("romanov-fold-2023", "Message-ID 20230418062503.62121-1-avromanov@sberdevices.ru")])
R[("1[c]", "ksm")] = dict(status="absent", reasoning="KSM has no compressed pages and no size condition.",
    events=[ev("ksm.merge", "merges compare whole uncompressed pages")], code=[code("engine/ksm.py")], cites=[])
R[("1[c]", "patent_claim1")] = dict(status="present", reasoning=(
    "When the compressed page is smaller than the predetermined size (default: zram's huge threshold), its hash is "
    "looked up among stored compressed pages, which are all smaller than that size; a match is confirmed by "
    "comparing the compressed bytes (identity=full) or taken on the hash alone (identity=hash-only)."),
    events=[ev("dedup.compare", "comparison among stored compressed pages", mechanism="patent_claim1", of="compressed page")],
    code=[code("engine/mechanisms/patent_claim1.py:PatentClaim1._swap_out_one")], cites=[CLAIM])

# ---- 1[d] / 1[f] mapping a virtual address ----------------------------------------------------
def mapping_rows(el, kind):
    R[(el, "upstream_zram")] = dict(status="absent", reasoning="Nothing is repointed to shared data.",
        events=[ev("swap.out", "each PTE names its own slot")], code=[code("engine/mechanisms/upstream_zram.py")], cites=[])
    R[(el, "zram_dedup")] = dict(status="undetermined", reasoning=(
        "What is repointed is the zram slot: it points at a shared, refcounted zram_entry/handle (slot -> handle). "
        "The process's virtual address still maps, through its PTE, to a swap entry naming its own slot. Whether "
        "repointing a slot is 'mapping a virtual address' is the construction question raised in the 2022 thread."),
        events=[ev("dedup.share", "the link repointed is slot -> handle", mechanism="zram_dedup", link="slot -> handle")],
        code=[code("engine/mechanisms/zram_dedup.py:ZramDedupDevice._share")],
        cites=[cite("senozhatsky-2022", "Message-ID Y3w7VP5CKvm6XmoJ@google.com", SERGEY_Q)])
    R[(el, "zram_merge")] = dict(status="undetermined", reasoning=(
        "The merge repoints zram slots to one handle (slot -> handle); virtual addresses and PTEs are untouched. "
        "Romanov argued in the RFC thread that handles are not virtual addresses; the construction is for the reviewer."),
        events=[ev("dedup.share", "the link repointed is slot -> handle", mechanism="zram_merge", link="slot -> handle")],
        code=[code("engine/mechanisms/zram_merge.py:ZramMergeDevice._merge_into")],
        cites=[cite("romanov-reply-2022", "Message-ID 20221122121413.ssieckg523urj37h@cab-wsm-0029881.lan", ROMANOV_Q)])
    R[(el, "zsmalloc_fold")] = dict(status="undetermined", reasoning=(
        "Folding repoints a zsmalloc handle to another object (handle -> object), one level below zram slots and two "
        "below PTEs; virtual addresses and slots are untouched."),
        events=[ev("dedup.share", "the link repointed is handle -> object", mechanism="zsmalloc_fold", link="handle -> object")],
        code=[code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool._fold_into")],
        cites=[cite("romanov-fold-2023", "Message-ID 20230418062503.62121-1-avromanov@sberdevices.ru")])
    if kind == "compressed":
        R[(el, "ksm")] = dict(status="partial", reasoning=(
            "KSM does map virtual addresses (PTEs) to one shared page of the same content, but the pages are not "
            "compressed; there is no 'first compressed page'."),
            events=[ev("ksm.merge", "PTEs repointed to a KSM page")], code=[code("kernel: mm/ksm.c replace_page()")],
            cites=[cite("romanov-reply-2022", "Message-ID 20221122121413.ssieckg523urj37h@cab-wsm-0029881.lan", ROMANOV_Q)])
    else:
        R[(el, "ksm")] = dict(status="partial", reasoning=(
            "KSM maps virtual addresses (PTEs) to one shared uncompressed page with the same content (PTE -> KSM "
            "page), confirmed by full memcmp. The pages are resident pages found by a background scan, not swap "
            "candidates whose compressed size exceeded a predetermined size."),
            events=[ev("ksm.merge", "PTEs repointed to a KSM page"), ev("mm.cow_fault", "a write gets a private copy")],
            code=[code("engine/ksm.py:Ksmd._merge_one_page"), code("kernel: mm/ksm.c try_to_merge_one_page(), replace_page()")],
            cites=[cite("ksm-linux-2.6.32", "mm/ksm.c"), cite("romanov-reply-2022",
                        "Message-ID 20221122121413.ssieckg523urj37h@cab-wsm-0029881.lan", ROMANOV_Q)])
    R[(el, "patent_claim1")] = dict(status="present", reasoning=(
        "On a match, the candidate's PTE gets a swap entry naming the found stored page's slot, whose use count "
        "rises (virtual address -> stored page); no new slot is made."),
        events=[ev("dedup.share", "virtual address mapped to the found stored page", mechanism="patent_claim1",
                   link="virtual address -> stored page")],
        code=[code("engine/mechanisms/patent_claim1.py:PatentClaim1._swap_out_one")], cites=[CLAIM])


mapping_rows("1[d]", "compressed")
mapping_rows("1[f]", "uncompressed")

# ---- 1[e] large branch: compare with stored uncompressed pages ----------------------------------
R[("1[e]", "upstream_zram")] = dict(status="absent", reasoning=(
    "zram stores a page whose compressed length reaches the huge threshold uncompressed, but compares it with nothing."),
    events=[ev("zram.slot_written", "huge pages stored whole", flag="huge")], code=[code("engine/zram.py")], cites=[])
R[("1[e]", "zram_dedup")] = dict(status="partial", reasoning=(
    "Entries stored whole (huge) are found by the same uncompressed-page checksum and confirmed with memcmp; there "
    "is no branch on the compressed size and the hash compared is not a hash of the compressed page."),
    events=[ev("dedup.compare", "full compare, including whole-page entries", mechanism="zram_dedup")],
    code=[code("engine/mechanisms/zram_dedup.py:ZramDedupDevice._store_nonsame")], cites=[])
R[("1[e]", "zram_merge")] = dict(status="partial", reasoning=(
    "Huge (uncompressed) slots take part in the merge pass and, because only equal sizes are compared, are compared "
    "only with other huge slots; the hash is of the stored uncompressed bytes, taken on the trigger, not a hash of "
    "the candidate's compressed page."),
    events=[ev("dedup.compare", "equal-size memcmp; huge slots meet only huge slots", mechanism="zram_merge")],
    code=[code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")],
    cites=[cite("romanov-merge-2022", "patch 1/4 (huge slots are included in zram_do_scan)")])
R[("1[e]", "zsmalloc_fold")] = dict(status="partial", reasoning=(
    "Whole-page objects live in the 4096-byte size class and are compared only within it, by hash of their bytes and "
    "memcmp, on the fold trigger."),
    events=[ev("dedup.compare", "memcmp within the huge size class", mechanism="zsmalloc_fold")],
    code=[code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool._compare_bytes")], cites=[])
R[("1[e]", "ksm")] = dict(status="absent", reasoning=(
    "KSM compares uncompressed pages by full content, but nothing is compressed, so there is no 'larger than a "
    "predetermined size' condition and no hash of a compressed page."),
    events=[ev("ksm.merge", "full memcmp of uncompressed pages")], code=[code("kernel: mm/ksm.c memcmp_pages()")], cites=[])
R[("1[e]", "patent_claim1")] = dict(status="present", reasoning=(
    "When the compressed page is not smaller than the predetermined size, its hash is looked up among the hashes kept "
    "for stored uncompressed pages (hashes of their compressed forms); a match is confirmed on the raw page "
    "(identity=full). A length equal to the size is treated as larger (the claim is silent)."),
    events=[ev("dedup.compare", "comparison among stored uncompressed pages", mechanism="patent_claim1", of="uncompressed page")],
    code=[code("engine/mechanisms/patent_claim1.py:PatentClaim1._swap_out_one")], cites=[CLAIM])

# ---- 2[a] a specific data structure -------------------------------------------------------------
R[("2[a]", "upstream_zram")] = dict(status="absent", reasoning="No comparison is made, so no structure serves one.",
    events=[], code=[code("engine/mechanisms/upstream_zram.py")], cites=[])
R[("2[a]", "zram_dedup")] = dict(status="present", reasoning=(
    "Hash buckets (clamp(num_pages >> 7, 1024, 2^31)) of red-black trees of zram_entry ordered by checksum hold the "
    "candidates for the comparison."),
    events=[ev("dedup.compare", "comparisons walk the bucket's tree", mechanism="zram_dedup")],
    code=[code("engine/mechanisms/zram_dedup.py:ZramDedupDevice")],
    cites=[cite("kim-dedup-code", "drivers/block/zram/zram_dedup.c@09de59f5")])
R[("2[a]", "zram_merge")] = dict(status="present", reasoning=(
    "A temporary hash table of num_pages buckets drives the comparison during a merge pass; a red-black tree keyed by "
    "handle counts the sharers."),
    events=[ev("dedup.compare", "comparisons walk one hash bucket", mechanism="zram_merge")],
    code=[code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")],
    cites=[cite("romanov-merge-2022", "patch 1/4")])
R[("2[a]", "zsmalloc_fold")] = dict(status="present", reasoning=(
    "A per-class hash table (one bucket per object in use) drives the comparison; a per-class red-black tree keyed by "
    "the encoded object counts the handles that share an object."),
    events=[ev("dedup.compare", "comparisons walk one hash bucket", mechanism="zsmalloc_fold")],
    code=[code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")], cites=[cite("romanov-fold-2023", "patch 3/5")])
R[("2[a]", "ksm")] = dict(status="present", reasoning=(
    "The comparison is performed while walking the stable and unstable red-black trees, ordered by page content."),
    events=[ev("ksm.unstable_insert", "pages filed in the unstable tree"), ev("ksm.merge", "matches found in the trees")],
    code=[code("kernel: mm/ksm.c stable_tree_search(), unstable_tree_search_insert()")],
    cites=[cite("ksm-ols-2009", "Linux Symposium 2009 paper")])
R[("2[a]", "patent_claim1")] = dict(status="present", reasoning=(
    "Two hash indexes (stored compressed pages; stored uncompressed pages) hold the hash values compared against."),
    events=[ev("dedup.compare", "comparisons within the size branch's index", mechanism="patent_claim1")],
    code=[code("engine/mechanisms/patent_claim1.py:PatentClaim1")],
    cites=[cite("us9977598", "claim 2 (col:line pinpoints follow once the PDF is imported)")])

ELEMENTS = ["1[pre]", "1[a]", "1[b]", "1[c]", "1[d]", "1[e]", "1[f]", "2[a]"]
CONSTRUCTION = {
    "second memory space": "Read here as a memory space distinct from the process address spaces, whether or not it is carved from the same RAM (zram, zswap). Reviewer to confirm.",
    "mapping a virtual address": "The central open question of the 2022 thread: does repointing a swap slot (slot -> handle) or an allocator handle (handle -> object) map a virtual address, or only a PTE (or the swap entry a PTE holds)? Rows for zram_dedup, zram_merge and zsmalloc_fold stay 'undetermined' until a reviewer decides.",
    "first hash value of the first compressed page": "Read literally: a hash computed over the compressed bytes of the candidate page.",
    "predetermined size": "A single size threshold; the engine's default is zram's huge threshold (3625 bytes, derived from the zsmalloc class table). The claim does not cover a compressed page equal to the size.",
}


def q(s):
    return json.dumps(s, ensure_ascii=False)


def emit():
    out = ["# Claim chart: US 9,977,598 claims 1-2 against every mechanism of the engine.",
           "# Generated by scripts/chart_source.py; reviewers may edit this file directly.",
           "# Every id is quoted. Status is one of present / absent / partial / undetermined.",
           "# Technical evidence for review, not legal advice: no conclusion on infringement or validity.",
           'patent: "US9977598"',
           'title: "US 9,977,598 claims 1-2: element by element against six memory-deduplication mechanisms"',
           "claims: [1, 2]",
           "mechanisms: [" + ", ".join(q(m) for m in M) + "]",
           "construction_notes:"]
    for k, v in CONSTRUCTION.items():
        out.append(f"  {q(k)}: {q(v)}")
    out.append("rows:")
    for el in ELEMENTS:
        for m in M:
            r = R[(el, m)]
            out.append(f"  - element: {q(el)}")
            out.append(f"    mechanism: {q(m)}")
            out.append(f"    status: {q(r['status'])}")
            out.append(f"    reasoning: {q(r['reasoning'])}")
            out.append("    evidence:")
            out.append("      events:" + ("" if r["events"] else " []"))
            for e in r["events"]:
                where = ", ".join(f"{k}: {q(v)}" for k, v in e["where"].items())
                out.append(f"        - {{kind: {q(e['kind'])}, where: {{{where}}}, shows: {q(e['shows'])}}}")
            out.append("      code:" + ("" if r["code"] else " []"))
            for c in r["code"]:
                out.append(f"        - {{ref: {q(c['ref'])}" + (f", note: {q(c['note'])}" if c["note"] else "") + "}")
            out.append("      citations:" + ("" if r["cites"] else " []"))
            for c in r["cites"]:
                out.append(f"        - {{reference: {q(c['reference'])}, pinpoint: {q(c['pinpoint'])}"
                           + (f", quote: {q(c['quote'])}" if c["quote"] else "") + "}")
            out.append('    reviewer_status: "draft"')
    path = os.path.join(os.path.dirname(__file__), "..", "claims", "data", "US9977598", "chart.yaml")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {path}: {len(ELEMENTS) * len(M)} rows")


if __name__ == "__main__":
    emit()
