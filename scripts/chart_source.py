"""The source of claims/data/US9977598/chart.yaml (designs) and prior_art.yaml (prior art).

Run it to regenerate both files. Regeneration merges, it does not overwrite: a cell a
reviewer has touched (reviewer status other than draft) is kept exactly as the reviewer left
it, and every cell keeps its reviewer fields (status, reviewer, date, comment). Cells that are
still drafts take the text below.

Reasoning states what each mechanism or document does against each element's words, in
neutral technical terms, and names open construction questions; it draws no legal
conclusion. Citations point into each reference's own text (sources/<id>.txt keeps the short
excerpts they quote); statuses of dependent claims are computed by claims/analysis.py, never
written here.
"""
from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "claims", "data", "US9977598")
ELEMENTS = ["1[pre]", "1[a]", "1[b]", "1[c]", "1[d]", "1[e]", "1[f]", "2[a]"]
REVIEW_FIELDS = ("reviewer_status", "reviewer", "reviewed_on", "review_comment")


def ev(kind, shows, **where):
    return {"kind": kind, "where": where, "shows": shows}


def code(ref, note=""):
    return {"ref": ref, "note": note} if note else {"ref": ref}


def cite(ref, pinpoint, quote=""):
    d = {"reference": ref, "pinpoint": pinpoint}
    if quote:
        d["quote"] = quote
    return d


def parts(el, *statuses):
    return {f"{el[:-1]}.{i + 1}]": s for i, s in enumerate(statuses)}


# ---- quotes of the references' own text (each is in sources/<id>.txt at its pinpoint) ------------
CLAIM_AB = cite("us9977598", "claim 1, preamble to 1[b]",
                "compressing the candidate page to obtain a first compressed page and a first hash value of the first compressed page")
CLAIM_PRE = cite("us9977598", "claim 1, preamble to 1[b]",
                 "wherein the electronic device comprises a first memory space and a second memory space")
CLAIM_SEL = cite("us9977598", "claim 1, preamble to 1[b]",
                 "selecting a candidate page from the first memory space of the electronic device for swapping")
CLAIM_C = cite("us9977598", "claim 1, 1[c]", "if the first compressed page is smaller than a predetermined size")
CLAIM_D = cite("us9977598", "claim 1, 1[d]", "mapping a virtual address of the first compressed page")
CLAIM_E = cite("us9977598", "claim 1, 1[e] and 1[f]", "if the first compressed page is larger than the predetermined size")
CLAIM_F = cite("us9977598", "claim 1, 1[e] and 1[f]", "mapping a virtual address of the candidate page")
CLAIM_2 = cite("us9977598", "claim 2", "maintaining a specific data structure under which the comparison is performed")

ESX_FULL = cite("vmware-esx-2002", "section 4.2 (Content-Based Page Sharing)",
                "A successful match is followed by a full comparison of the page contents to verify that the pages are identical.")
ESX_COW = cite("vmware-esx-2002", "section 4.2", "Any subsequent attempt to write to the shared page will generate a fault, "
               "transparently creating a private copy of the page for the writer.")
ESX_KEY = cite("vmware-esx-2002", "section 4.2", "A hash value that summarizes a page's contents is used as a lookup key "
               "into a hash table")
ESX_TABLE = cite("vmware-esx-2002", "section 4.3 (Implementation)",
                 "A single global hash table contains frames for all scanned pages, and chaining is used to handle collisions.")
ESX_HINT = cite("vmware-esx-2002", "section 4.3", "A hint frame is similar, but encodes a truncated hash value to make room "
                "for a reference back to the corresponding guest page")
ESX_SCAN = cite("vmware-esx-2002", "section 4.3", "The current ESX Server page sharing implementation scans guest pages randomly.")
ESX_FALSE = cite("vmware-esx-2002", "section 4.3", "Any page that happens to yield a false match is considered ineligible for sharing.")
ESX_16 = cite("vmware-esx-2002", "section 4.3", "Each frame is encoded compactly in 16 bytes.")
DE_COMP = cite("difference-engine-2008", "Abstract", "significant additional gains can be had by leveraging both sub-page "
               "level sharing (through page patching) and in-core memory compression")
DE_SHARE = cite("difference-engine-2008", "Abstract", "We build Difference Engine, an extension to the Xen virtual machine "
                "monitor, to support each of these--in addition to standard copy-on-write full page sharing")
DE_CBPS = cite("difference-engine-2008", "Abstract", "Previous efforts have shown that content-based page sharing provides "
               "modest decreases in the memory footprint of VMs")
SAT_ENL = cite("satori-2009", "Abstract", "Satori uses enlightenments in guest operating systems to detect sharing "
               "opportunities and manage the surplus memory that results from sharing.")
SAT_SHORT = cite("satori-2009", "Abstract", "it is better able to detect short-lived sharing opportunities")
SAT_INTRO = cite("satori-2009", "section 1 (Introduction)", "Previous work has shown that it is possible to save memory in "
                 "virtualised systems by sharing pages that have identical [23] and/or similar [4] contents.")
SAT_SYS = cite("satori-2009", "Abstract", "We introduce Satori, an efficient and effective system for sharing memory in "
               "virtualised systems.")
KSM_SUM = cite("ksm-linux-2.6.32", "v2.6.32.2 mm/ksm.c:589", "checksum = jhash2(addr, PAGE_SIZE / 4, 17);")
KSM_STABLE = cite("ksm-linux-2.6.32", "v2.6.32.2 mm/ksm.c:1092",
                  "/* We first start with searching the page inside the stable tree */")
KSM_VOL = cite("ksm-linux-2.6.32", "v2.6.32.2 mm/ksm.c:1129", "if (rmap_item->oldchecksum != checksum) {")
KSM_LOCK = cite("ksm-linux-2.6.32", "v2.6.32.2 Documentation/vm/ksm.txt:19-21",
                "KSM's merged pages are at present locked into kernel memory for as long as they are shared: so cannot "
                "be swapped out like the user pages they replace")
KSM_MAXK = cite("ksm-linux-2.6.32", "v2.6.32.2 mm/ksm.c:834-835",
                "if (ksm_max_kernel_pages && ksm_max_kernel_pages <= ksm_pages_shared)")
KSM_UNSH = cite("ksm-linux-2.6.32", "v2.6.32.2 mm/ksm.c:1328", "Replace now-unshared ksm page by ordinary page.")
RZ_W = "v2.6.33 drivers/staging/ramzswap/ramzswap_drv.c ramzswap_write()"
RZ_COMP = cite("compcache-ramzswap-2.6.33", RZ_W, "ret = lzo1x_1_compress(user_mem, PAGE_SIZE, src, &clen,")
RZ_INC = cite("compcache-ramzswap-2.6.33", RZ_W, "Page is incompressible. Forward it to backing swap if present. "
              "Otherwise, store it as-is (uncompressed)")
RZ_THR = cite("compcache-ramzswap-2.6.33", RZ_W, "if (unlikely(clen > max_zpage_size)) {")
RZ_FLAG = cite("compcache-ramzswap-2.6.33", RZ_W, "rzs_set_flag(rzs, index, RZS_UNCOMPRESSED);")
RZ_INIT = cite("compcache-ramzswap-2.6.33", "v2.6.33 drivers/staging/ramzswap/ramzswap_drv.c ramzswap_ioctl_init_device()",
               "Pages that compress to size greater than this are forwarded to physical swap disk (if backing dev is provided)")
ZS_LEN = cite("zswap-3.11", "v3.11 mm/zswap.c:649", "len = dlen + sizeof(struct zswap_header);")
ZS_POOR = cite("zswap-3.11", "v3.11 mm/zswap.c:652-653", "if (ret == -ENOSPC) { zswap_reject_compress_poor++;")
ZS_ZBUD = cite("zswap-3.11", "v3.11 mm/zbud.c:260", "if (size > PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE)")
ZS_TREE = cite("zswap-3.11", "v3.11 mm/zswap.c:675", "ret = zswap_rb_insert(&tree->rbroot, entry, &dupentry);")
ZS_LZO = cite("zswap-3.11", "v3.11 mm/zswap.c:83", '#define ZSWAP_COMPRESSOR_DEFAULT "lzo"')
Z14_DOC = cite("zram-3.14", "v3.14.1 drivers/block/zram/zram_drv.h:31-32",
               "Pages that compress to size greater than this are stored uncompressed in memory.")
Z14_MAX = cite("zram-3.14", "v3.14.1 drivers/block/zram/zram_drv.h:34", "static const size_t max_zpage_size = PAGE_SIZE / 4 * 3;")
Z14_THR = cite("zram-3.14", "v3.14.1 drivers/block/zram/zram_drv.c:475", "if (unlikely(clen > max_zpage_size)) {")
Z14_COMP = cite("zram-3.14", "v3.14.1 drivers/block/zram/zram_drv.c:462", "ret = lzo1x_1_compress(uncmem, PAGE_SIZE, src, &clen,")
Z14_ZERO = cite("zram-3.14", "v3.14.1 drivers/block/zram/zram_drv.c:449", "if (page_zero_filled(uncmem)) {")
US544_CHK = cite("us2004-0098544", "claim 1", "generating a plurality of check values from contents of memory")
US544_DS = cite("us2004-0098544", "claim 1", "associating each check value of said plurality of check values to a respective "
                "page in said memory system in a data structure")
US544_SEARCH = cite("us2004-0098544", "claim 1", "searching said data structure for a candidate page having identical content "
                    "to a requesting page in said memory system, wherein a check value of said requested page is used to "
                    "search said data structure")
US544_PRE = cite("us2004-0098544", "claim 1", "A method for managing a memory system")
US156_SYS = cite("us6789156", "claim 1", "a hardware memory and at least one context, which has a virtual memory that is "
                 "divided into a plurality of virtual memory units that are mappable to corresponding hardware memory units")
US156_SEL = cite("us6789156", "claim 1", "selecting candidate memory units from among the virtual memory units")
US156_HASH = cite("us6789156", "claim 1", "calculating a hash value by applying a hash function to the contents of a current "
                  "one of the candidate memory units")
US156_DS = cite("us6789156", "claim 1", "searching a data structure to determine the presence of a previous data structure "
                "entry corresponding to the calculated hash value")
US156_CMP = cite("us6789156", "claim 1", "comparing the entire contents of the current candidate memory unit with the "
                 "contents of the single instance indicated by the previous entry")
US156_MAP = cite("us6789156", "claim 1", "mapping those virtual memory units identified as having identical contents to a "
                 "single instance of a corresponding one of the hardware memory units")
IBM_ABS = cite("us8898118", "Abstract", "compress a first page of data stored in memory and calculate an effectiveness of "
               "the compression on the first page")
IBM_THR = cite("us8898118", "claim 12", "in response to the calculated compression effectiveness of the first page being at "
               "least as high as a pre-determined compression effectiveness threshold")
IBM_EFF = cite("us8898118", "claim 12", "the compression effectiveness of the first page indicates an amount by which the "
               "first page was compressed")
IBM_SIM = cite("us8898118", "Abstract", "identifies second pages of data from memory that have similarities in content with "
               "the first page")
IBM_RANK = cite("us8898118", "Abstract", "in an order that is based on a relative ranking of the plurality of second pages")
KIM_SUM = cite("kim-dedup-code", "@09de59f5 drivers/block/zram/zram_dedup.c zram_dedup_checksum()",
               "return jhash(mem, PAGE_SIZE, 0);")
KIM_MSG = cite("kim-dedup-code", "commit 5d11d0d2701758d51edd88a623d9af7d3693416b message",
               "if we can detect duplicated content and avoid to store duplicated content at different memory space, we "
               "can save memory.")
KIM_MSG_SUM = cite("kim-dedup-code", "commit 5d11d0d2701758d51edd88a623d9af7d3693416b message",
                   "To check duplication, this patch uses checksum of the page and collision of this checksum could be "
                   "possible.")
KIM_V5 = cite("kim-dedup-2017-v5", "Message-ID 1494556204-25796-1-git-send-email-iamjoonsoo.kim@lge.com")
ROM_MERGE = cite("romanov-merge-2022", "Message-ID 20221121190020.66548-1-avromanov@sberdevices.ru",
                 "This RFC series adds feature which allows merge identical compressed pages into a single one.")
ROM_MERGE_SCAN = cite("romanov-merge-2022", "Message-ID 20221121190020.66548-1-avromanov@sberdevices.ru",
                      "Merge mechanism saves (after scanning objects) only one zsmalloc object.")
ROM_MERGE_TREE = cite("romanov-merge-2022", "Message-ID 20221121190020.66548-1-avromanov@sberdevices.ru",
                      "In order to describe each such identical object, we (constantly) need sizeof(zram_rbtree_node) bytes.")
ROM_REPLY = cite("romanov-reply-2022", "Message-ID 20221122121413.ssieckg523urj37h@cab-wsm-0029881.lan",
                 'But zram works with the "handle" abstraction, which is a boxed pointer to the required object.')
ROM_FOLD = cite("romanov-fold-2023", "Message-ID 20230418062503.62121-1-avromanov@sberdevices.ru",
                "when calling the fold mechanism, we can save up to 15-20% of the memory usage")
ROM_FOLD0 = cite("romanov-fold-2023", "Message-ID 20230418062503.62121-1-avromanov@sberdevices.ru",
                 "This RFC series adds feature which allows fold identical zsmalloc objects into a single one.")
ROM_FOLD_SCAN = cite("romanov-fold-2023", "Message-ID 20230418062503.62121-1-avromanov@sberdevices.ru",
                     "Fold mechanism saves (after scanning objects) only one zsmalloc object.")
ROM_FOLD_TREE = cite("romanov-fold-2023", "Message-ID 20230418062503.62121-1-avromanov@sberdevices.ru",
                     "all struct size_class now have new field struct rb_root fold_rbtree.")
ZRAM_TODAY = cite("linux-zram-zsmalloc", "v6.12 drivers/block/zram/zram_drv.c zram_write_page()",
                  "if (comp_len >= huge_class_size)")
ZRAM_TODAY_HUGE = cite("linux-zram-zsmalloc", "v6.12 drivers/block/zram/zram_drv.c zram_write_page()",
                       "if (comp_len >= huge_class_size)")
ZRAM_TODAY_SAME = ZRAM_TODAY
KSM_TODAY = cite("linux-mm-ksm", "v6.12 mm/ksm.c calc_checksum()", "checksum = xxhash(addr, PAGE_SIZE, 0);")
KSM_TODAY_CMP = cite("linux-mm-ksm", "v6.12 mm/ksm.c cmp_and_merge_page()", "if (rmap_item->oldchecksum != checksum) {")

# ============================================================================================
# Designs: every element x every later design (and the engine's model of claim 1 for calibration)
# ============================================================================================
M = ["upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm", "patent_claim1"]
D = {}   # (element, mechanism) -> cell


def d(el, mech, status, reasoning, cites, events=(), codes=(), part=None, diff=""):
    D[(el, mech)] = {"status": status, "reasoning": reasoning, "cites": list(cites), "events": list(events),
                     "code": list(codes), "parts": part or {}, "difference": diff}


# 1[pre]
d("1[pre]", "upstream_zram", "present",
  "Today's zram is a block device used as swap: pages leave process address spaces in RAM (a first memory space) "
  "for zram slots whose objects sit in a zsmalloc pool (a second memory space, carved from the same RAM). Whether a "
  "RAM-backed compressed store is a separate 'memory space' is a construction question for the reviewer.",
  [ZRAM_TODAY], [ev("swap.out", "pages leave a process's address space for zram slots"),
                 ev("zram.slot_written", "each page lands in the compressed store")],
  [code("engine/swap.py:SwapDevice.swap_out")])
d("1[pre]", "zram_dedup", "present",
  "Kim's deduplication lives inside the same zram swap device, so the two spaces are those of zram: process memory "
  "and the zsmalloc pool behind the slots, where duplicates share one zram_entry.",
  [KIM_V5, KIM_MSG], [ev("zram.slot_written", "pages stored in the zram device that dedups them")],
  [code("engine/mechanisms/zram_dedup.py:ZramDedupDevice")])
d("1[pre]", "zram_merge", "present",
  "Romanov's 2022 merge runs over an existing zram swap device on request; the pages it merges have already moved "
  "from process memory into the zram store.",
  [ROM_MERGE], [ev("swap.out", "pages moved into zram before any merge")],
  [code("engine/mechanisms/zram_merge.py:ZramMergeDevice")])
d("1[pre]", "zsmalloc_fold", "present",
  "The 2023 fold works in the zsmalloc pool behind zram: the objects it folds are pages already swapped out of "
  "process memory into the compressed store.",
  [ROM_FOLD], [ev("zram.slot_written", "objects in the pool the fold later scans")],
  [code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool")])
d("1[pre]", "ksm", "partial",
  "KSM merges resident anonymous pages in one space, RAM; no second memory space takes part in merging, and a "
  "merged page stays resident. It is a method of managing memory in a device, but of one space only.",
  [KSM_TODAY_CMP], [ev("ksm.merge", "PTEs of resident pages repointed to one KSM page")],
  [code("engine/ksm.py:Ksmd")], parts("1[pre]", "present", "absent"),
  "merges resident pages within one memory space; no second memory space takes part")
d("1[pre]", "patent_claim1", "present",
  "The engine's model of claim 1 moves candidate pages from process address spaces to its own compressed store, "
  "the two spaces the preamble names.", [CLAIM_PRE], [ev("swap.out", "candidate pages leave the first memory space")],
  [code("engine/mechanisms/patent_claim1.py:PatentClaim1")])
# 1[a]
d("1[a]", "upstream_zram", "present",
  "Reclaim picks a page (LRU order in the engine, as Linux's reclaim does) and swaps it out: its PTE becomes a swap "
  "entry naming a zram slot.", [ZRAM_TODAY], [ev("swap.out", "a selected candidate's PTE now names a swap slot")],
  [code("engine/swap.py:select_candidates")])
d("1[a]", "zram_dedup", "present",
  "The same reclaim selects the page; the deduplicating store then handles it inline, while it is being written to "
  "its slot.", [KIM_MSG], [ev("swap.out", "candidates swapped into the deduplicating store")],
  [code("engine/swap.py:select_candidates")])
d("1[a]", "zram_merge", "present",
  "Swap-out selection is unchanged; the merge happens later, when triggered, and is not tied to any one candidate "
  "at its swap-out.", [ROM_MERGE], [ev("swap.out", "candidates swapped out before the merge runs")],
  [code("engine/swap.py:SwapDevice.swap_out")])
d("1[a]", "zsmalloc_fold", "present",
  "Swap-out selection is unchanged; folding runs later inside the allocator, over objects already stored, not for "
  "a candidate as it leaves memory.", [ROM_FOLD0], [ev("swap.out", "candidates swapped out before folding")],
  [code("engine/swap.py:SwapDevice.swap_out")])
d("1[a]", "ksm", "partial",
  "ksmd visits every page of mergeable areas in address order (one rmap_item each) in a background scan; it "
  "selects pages to merge, but none is selected for swapping out.",
  [KSM_TODAY_CMP], [ev("ksm.full_scan", "the scan covers all mergeable memory")], [code("engine/ksm.py:Ksmd")],
  parts("1[a]", "present", "absent"), "selects pages by a background scan, not for swapping out")
d("1[a]", "patent_claim1", "present",
  "The model takes the swap candidates chosen by the same reclaim policy as every other mechanism.",
  [CLAIM_SEL], [ev("swap.out", "candidate pages swapped out through the claimed method")],
  [code("engine/swap.py:select_candidates")])
# 1[b]
d("1[b]", "upstream_zram", "partial",
  "Every page that is not same-filled is compressed on store (lzo-rle by default; lz4, zstd and others "
  "selectable); zram computes no hash of any kind.", [ZRAM_TODAY_HUGE], [ev("zram.compressed", "the page is compressed on store")],
  [code("engine/zram.py:ZramDevice.write_page")], parts("1[b]", "present", "absent"),
  "computes no hash of the compressed page (no hash at all)")
d("1[b]", "zram_dedup", "partial",
  "The checksum is jhash of the uncompressed page (xxhash in later ports), taken before compression; a page found "
  "to be a duplicate is never compressed. No hash of a compressed page is taken.",
  [KIM_SUM], [ev("dedup.hash", "what is hashed: the uncompressed page, inline on store", mechanism="zram_dedup",
                 what="uncompressed page"),
              ev("zram.compressed", "compression only for pages with no stored duplicate")],
  [code("engine/mechanisms/zram_dedup.py:ZramDedupDevice.write_page")], parts("1[b]", "present", "absent"),
  "hashes the uncompressed page before compressing, not the compressed page")
d("1[b]", "zram_merge", "undetermined",
  "Pages are compressed when stored. XXH64 of each stored compressed object is taken only later, when the merge "
  "is triggered, over all objects; it is not obtained together with compressing the candidate. Whether a later "
  "hash of stored compressed bytes counts for 1[b.2] is a construction question.",
  [ROM_MERGE_SCAN], [ev("zram.compressed", "compression at store time"),
                ev("dedup.hash", "compressed objects hashed on the offline trigger", mechanism="zram_merge",
                   what="compressed object")],
  [code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")], parts("1[b]", "present", "undetermined"),
  "hashes stored compressed objects later, on a trigger, not while compressing the candidate")
d("1[b]", "zsmalloc_fold", "undetermined",
  "zram compresses on store; the allocator, which does not know its objects are compressed, later hashes each "
  "object's slot bytes on the fold trigger (as posted, class-size bytes including the slot tail).",
  [ROM_FOLD0], [ev("zram.compressed", "compression at store time"),
                   ev("dedup.hash", "slot bytes hashed inside zsmalloc on the fold trigger", mechanism="zsmalloc_fold")],
  [code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")], parts("1[b]", "present", "undetermined"),
  "hashes allocator slots later, apart from compression, without knowing they hold compressed pages")
d("1[b]", "ksm", "absent",
  "KSM compresses nothing. Its only hash is a 32-bit checksum (xxhash today) of the raw page, used to skip pages "
  "that changed since the last scan; identity is decided by memcmp.",
  [KSM_TODAY], [ev("ksm.checksum", "the raw page is hashed as a volatility filter")], [code("engine/ksm.py:Ksmd")],
  diff="does not compress; hashes raw pages only to skip pages that change")
d("1[b]", "patent_claim1", "present",
  "The model compresses the candidate and takes the first hash value over the compressed bytes, on swap-out.",
  [CLAIM_AB], [ev("dedup.hash", "the compressed page is hashed on swap-out", mechanism="patent_claim1",
                  what="compressed object")],
  [code("engine/mechanisms/patent_claim1.py:PatentClaim1.swap_out_pages")])
# 1[c]
d("1[c]", "upstream_zram", "absent",
  "zram compares no page with another; two identical pages are stored as two objects.",
  [ZRAM_TODAY_SAME], [ev("zram.slot_written", "every page gets its own object")],
  [code("engine/mechanisms/upstream_zram.py:UpstreamZram")], diff="compares no pages; identical pages are stored twice")
d("1[c]", "zram_dedup", "partial",
  "Checksums of the uncompressed candidate are compared with those of stored entries, and a match is confirmed by "
  "comparing the whole page. There is no branch on the compressed size, and entries stored compressed and whole sit "
  "in the same buckets.",
  [KIM_SUM, KIM_MSG_SUM], [ev("dedup.compare", "identity by full compare of the uncompressed page", mechanism="zram_dedup"),
                      ev("dedup.share", "slot repointed to the existing entry", mechanism="zram_dedup")],
  [code("engine/mechanisms/zram_dedup.py:ZramDedupDevice.write_page")],
  parts("1[c]", "absent", "partial", "present", "absent"),
  "compares hashes of uncompressed pages, without a size branch; compressed and whole entries share one index")
d("1[c]", "zram_merge", "partial",
  "Stored compressed objects are compared with each other by XXH64 bucket and memcmp of the compressed bytes, only "
  "between objects of equal size, on a trigger; whole-page (huge) objects take part in the same pass, so there is no "
  "smaller-than-a-size branch.",
  [ROM_MERGE], [ev("dedup.compare", "memcmp of compressed objects of equal size", mechanism="zram_merge"),
                ev("dedup.hash", "compressed objects hashed on the trigger", mechanism="zram_merge")],
  [code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")],
  parts("1[c]", "absent", "partial", "present", "absent"),
  "compares stored objects among themselves on a trigger, by equal size, with no size threshold")
d("1[c]", "zsmalloc_fold", "partial",
  "Objects are compared only within one zsmalloc size class, by hash bucket and memcmp, on a trigger. Size classes "
  "partition by size but are not one predetermined size; as posted, compared bytes include the slot tail.",
  [ROM_FOLD_SCAN], [ev("dedup.compare", "memcmp of slot bytes within a size class", mechanism="zsmalloc_fold")],
  [code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")],
  parts("1[c]", "absent", "partial", "present", "absent"),
  "compares allocator objects per size class on a trigger, not by one predetermined size")
d("1[c]", "ksm", "absent",
  "KSM has no compressed pages and no size condition; it compares raw resident pages.",
  [KSM_TODAY_CMP], [ev("ksm.merge", "merges compare whole uncompressed pages")], [code("engine/ksm.py:Ksmd")],
  diff="compares raw resident pages; no compressed pages and no size condition")
d("1[c]", "patent_claim1", "present",
  "When the compressed page is smaller than the predetermined size (default: zram's huge threshold), its hash is "
  "looked up among stored compressed pages, all smaller than that size; a match is confirmed on the compressed bytes "
  "(identity=full) or taken on the hash alone (identity=hash-only).",
  [CLAIM_C], [ev("dedup.compare", "comparison among stored compressed pages", mechanism="patent_claim1")],
  [code("engine/mechanisms/patent_claim1.py:PatentClaim1.swap_out_pages")])
# 1[d] / 1[f]
for el, kind in (("1[d]", "compressed"), ("1[f]", "uncompressed")):
    tgt = "compressed object" if kind == "compressed" else "page stored whole"
    d(el, "upstream_zram", "absent",
      f"Nothing is repointed to shared data: each swap entry names its own slot and its own {tgt}.",
      [ZRAM_TODAY], [ev("swap.out", "each PTE names its own slot")],
      [code("engine/mechanisms/upstream_zram.py:UpstreamZram")],
      diff=f"maps nothing to a shared {tgt}; every slot keeps its own")
    d(el, "zram_dedup", "undetermined",
      f"The slot is repointed to a shared, refcounted zram_entry (slot -> handle) holding the {tgt}; the process's "
      "virtual address still maps, through its PTE, to a swap entry naming its own slot. Whether repointing a slot "
      "maps a virtual address is the construction question of the 2022 thread.",
      [KIM_MSG] if el == "1[d]" else [KIM_MSG, KIM_SUM],
      [ev("dedup.share", "the link repointed is slot -> handle", mechanism="zram_dedup", link="slot -> handle")],
      [code("engine/mechanisms/zram_dedup.py:ZramDedupDevice.write_page")],
      parts(el, "undetermined", "present"),
      "repoints a swap slot to a shared handle; the PTE still names its own slot")
    d(el, "zram_merge", "undetermined",
      f"The merge repoints zram slots to one handle (slot -> handle) for each group of identical {tgt}s; virtual "
      "addresses and PTEs are untouched. Its author describes it as working on handles; the construction is the "
      "reviewer's.",
      [ROM_REPLY] if el == "1[d]" else [ROM_MERGE, ROM_REPLY],
      [ev("dedup.share", "the link repointed is slot -> handle", mechanism="zram_merge", link="slot -> handle")],
      [code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")],
      parts(el, "undetermined", "present"),
      "repoints slots to one handle on a trigger; virtual addresses and PTEs are untouched")
    d(el, "zsmalloc_fold", "undetermined",
      f"Folding repoints a zsmalloc handle to another object (handle -> object), one level below zram slots and two "
      f"below PTEs; the {tgt} found is an allocator object, and virtual addresses and slots are untouched.",
      [ROM_FOLD0] if el == "1[d]" else [ROM_FOLD],
      [ev("dedup.share", "the link repointed is handle -> object", mechanism="zsmalloc_fold", link="handle -> object")],
      [code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")],
      parts(el, "undetermined", "present"),
      "repoints allocator handles to one object; slots, PTEs and virtual addresses are untouched")
    if kind == "compressed":
        d(el, "ksm", "partial",
          "KSM does map virtual addresses (their PTEs) to one shared page of the same content, but that page is not "
          "compressed and there is no first compressed page.",
          [KSM_TODAY_CMP], [ev("ksm.merge", "PTEs repointed to a KSM page")], [code("engine/ksm.py:Ksmd")],
          parts(el, "present", "absent"), "maps virtual addresses to a shared raw page, never to a compressed page")
    else:
        d(el, "ksm", "partial",
          "KSM maps virtual addresses (PTE -> KSM page) to one shared uncompressed page of the same content, confirmed "
          "by memcmp; the page is resident in RAM, not a page stored in a second memory space after its compressed "
          "size exceeded a threshold.",
          [KSM_TODAY_CMP], [ev("ksm.merge", "PTEs repointed to a KSM page"), ev("mm.cow_fault", "a write gets a private copy")],
          [code("engine/ksm.py:Ksmd")], parts(el, "present", "partial"),
          "maps virtual addresses to a shared resident page, not to a page stored whole in a second space")
    d(el, "patent_claim1", "present",
      f"On a match the model gives the candidate's PTE a swap entry naming the found {tgt}'s slot, whose use count "
      "rises (virtual address -> stored page); no new slot is made.",
      [CLAIM_D if el == "1[d]" else CLAIM_F],
      [ev("dedup.share", "virtual address mapped to the found stored page", mechanism="patent_claim1")],
      [code("engine/mechanisms/patent_claim1.py:PatentClaim1.swap_out_pages")])
# 1[e]
d("1[e]", "upstream_zram", "partial",
  "zram stores a page whose compressed length reaches the huge threshold uncompressed (a size split like the claim's), "
  "but compares it with nothing.",
  [ZRAM_TODAY_HUGE], [ev("zram.slot_written", "huge pages stored whole", flag="huge")],
  [code("engine/zram.py:ZramDevice.write_page")], parts("1[e]", "present", "absent", "absent", "present"),
  "stores poorly compressing pages whole but compares them with nothing")
d("1[e]", "zram_dedup", "partial",
  "Entries stored whole are found through the same uncompressed-page checksum and confirmed with a full compare; "
  "there is no branch on the compressed size, and the hash compared is not of a compressed page.",
  [KIM_SUM], [ev("dedup.compare", "full compare, including whole-page entries", mechanism="zram_dedup")],
  [code("engine/mechanisms/zram_dedup.py:ZramDedupDevice.write_page")],
  parts("1[e]", "absent", "partial", "present", "present"),
  "finds whole-page entries by a hash of the uncompressed page, with no size branch")
d("1[e]", "zram_merge", "partial",
  "Huge (uncompressed) slots take part in the merge pass and, as only equal sizes are compared, meet only other huge "
  "slots; the hash is of the stored whole page taken on the trigger, not of the candidate's compressed page.",
  [ROM_MERGE_SCAN], [ev("dedup.compare", "equal-size memcmp; huge slots meet only huge slots", mechanism="zram_merge")],
  [code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")],
  parts("1[e]", "absent", "partial", "present", "present"),
  "compares stored whole pages with each other on a trigger; no hash of a compressed candidate")
d("1[e]", "zsmalloc_fold", "partial",
  "Whole-page objects live in the 4096-byte size class and are compared only within it, by a hash of their bytes "
  "and memcmp, on the fold trigger.",
  [ROM_FOLD], [ev("dedup.compare", "memcmp within the huge size class", mechanism="zsmalloc_fold")],
  [code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")],
  parts("1[e]", "absent", "partial", "present", "present"),
  "compares whole-page objects within their size class on a trigger; no hash of a compressed candidate")
d("1[e]", "ksm", "absent",
  "KSM compares uncompressed pages by full content, but compresses nothing, so there is no larger-than-a-size "
  "condition and no hash of a compressed page.", [KSM_TODAY_CMP],
  [ev("ksm.merge", "full memcmp of uncompressed pages")], [code("engine/ksm.py:Ksmd")],
  diff="compresses nothing, so has no size branch and no hash of a compressed page")
d("1[e]", "patent_claim1", "present",
  "When the compressed page is not smaller than the predetermined size, the model looks its hash up among those "
  "kept for pages stored whole (hashes of their compressed forms) and confirms a match on the raw page; a length "
  "equal to the size counts as larger (the claim is silent).",
  [CLAIM_E], [ev("dedup.compare", "comparison among stored uncompressed pages", mechanism="patent_claim1")],
  [code("engine/mechanisms/patent_claim1.py:PatentClaim1.swap_out_pages")])
# 2[a]
d("2[a]", "upstream_zram", "absent",
  "zram keeps a slot table, but no comparison is made, so no structure serves one.",
  [ZRAM_TODAY], [], [code("engine/mechanisms/upstream_zram.py:UpstreamZram")], parts("2[a]", "present", "absent"),
  "")
D[("2[a]", "upstream_zram")]["status"] = "partial"
D[("2[a]", "upstream_zram")]["difference"] = "keeps a slot table but performs no comparison under it"
d("2[a]", "zram_dedup", "present",
  "Hash buckets of red-black trees of zram_entry, ordered by checksum, hold the candidates for the comparison.",
  [KIM_SUM], [ev("dedup.compare", "comparisons walk the bucket's tree", mechanism="zram_dedup")],
  [code("engine/mechanisms/zram_dedup.py:ZramDedupDevice")])
d("2[a]", "zram_merge", "present",
  "A temporary hash table of num_pages buckets drives the comparison during a merge pass; a red-black tree keyed by "
  "handle counts the sharers.", [ROM_MERGE_TREE],
  [ev("dedup.compare", "comparisons walk one hash bucket", mechanism="zram_merge")],
  [code("engine/mechanisms/zram_merge.py:ZramMergeDevice.merge")])
d("2[a]", "zsmalloc_fold", "present",
  "A per-class hash table drives the comparison; a per-class red-black tree keyed by the encoded object counts the "
  "handles that share it.", [ROM_FOLD_TREE],
  [ev("dedup.compare", "comparisons walk one hash bucket", mechanism="zsmalloc_fold")],
  [code("engine/mechanisms/zsmalloc_fold.py:FoldingZsPool.fold")])
d("2[a]", "ksm", "present",
  "The comparison is performed while walking the stable and unstable red-black trees, ordered by page content.",
  [KSM_TODAY_CMP], [ev("ksm.unstable_insert", "pages filed in the unstable tree"), ev("ksm.merge", "matches found in the trees")],
  [code("engine/ksm.py:Ksmd")])
d("2[a]", "patent_claim1", "present",
  "Two hash indexes (stored compressed pages; stored whole pages) hold the hash values the comparison uses.",
  [CLAIM_2], [ev("dedup.compare", "comparisons within the size branch's index", mechanism="patent_claim1")],
  [code("engine/mechanisms/patent_claim1.py:PatentClaim1")])

CONSTRUCTION = {
    "second memory space": "Two readings (constructions.yaml, second-space): a memory space distinct from the process address spaces even if carved from the same RAM (carved-pool), or a separate device (separate-device). Cells whose status turns on it give their status under each.",
    "mapping a virtual address": "The central open question of the 2022 thread: does repointing a swap slot (slot -> handle) or an allocator handle (handle -> object) map a virtual address, or only a PTE (or the swap entry a PTE holds)? Those parts stay 'undetermined' until a reviewer decides; the cells give their status under each mapping alternative of constructions.yaml (pte-swap-entry, slot-remap, pte-frame).",
    "first hash value of the first compressed page": "Read literally: a hash computed over the compressed bytes of the candidate page.",
    "predetermined size": "A single size threshold; the engine's default is zram's huge threshold (3625 bytes, derived from the zsmalloc class table). Before the priority date zram used 3/4 of a page (max_zpage_size). The claim does not cover a compressed page equal to the size.",
}

# ============================================================================================
# Prior art: every element x every reference dated before the priority date (2014-10-27)
# ============================================================================================
REFS = ["vmware-esx-2002", "us6789156", "us2004-0098544", "difference-engine-2008", "satori-2009", "ksm-linux-2.6.32",
        "compcache-ramzswap-2.6.33", "us8898118", "zswap-3.11", "zram-3.14"]
P = {}
DS, PD, ND, UN = "disclosed", "partly disclosed", "not disclosed", "undetermined"


def p(el, ref, status, reasoning, cites, events=(), part=None):
    P[(el, ref)] = {"status": status, "reasoning": reasoning, "cites": list(cites), "events": list(events),
                    "parts": part or {}}


ESX = "esx_2002"
DEN = "difference_engine_2008"
K32 = "ksm_2_6_32"
ZS11 = "zswap_3_11"
Z314 = "zram_3_14"
# 1[pre]
p("1[pre]", "vmware-esx-2002", UN,
  "ESX manages machine memory shared by virtual machines; page sharing itself works within machine memory, and the "
  "paper's swapping is a separate mechanism, so whether it describes a second memory space in the claim's sense is "
  "open.", [ESX_TABLE], [ev("dedup.share", "guest pages mapped to shared machine pages", mechanism=ESX)],
  parts("1[pre]", DS, UN))
p("1[pre]", "difference-engine-2008", UN,
  "Difference Engine keeps compressed pages in memory beside the guests' pages; whether its compressed area is a "
  "second memory space distinct from the first is for the reviewer.", [DE_COMP],
  [ev("dedup.share", "pages shared by the model of Difference Engine", mechanism=DEN)], parts("1[pre]", DS, UN))
p("1[pre]", "satori-2009", UN,
  "Satori manages the memory of virtual machines and the surplus that sharing frees; the quoted text names no second "
  "memory space into which pages move.", [SAT_ENL], part=parts("1[pre]", DS, UN))
p("1[pre]", "ksm-linux-2.6.32", PD,
  "KSM 2.6.32 manages memory in one space: merged pages stay locked in RAM and cannot be swapped out, so no second "
  "memory space takes part.", [KSM_LOCK], [ev("dedup.share", "PTEs repointed to a KSM page", mechanism=K32)],
  parts("1[pre]", DS, ND))
p("1[pre]", "compcache-ramzswap-2.6.33", DS,
  "ramzswap is a RAM-based swap device: pages swapped out of process memory are compressed into its own pool, a "
  "second memory space beside the first (with an optional backing swap disk).", [RZ_COMP, RZ_INC],
  part=parts("1[pre]", DS, DS))
p("1[pre]", "zswap-3.11", DS,
  "zswap keeps pages on their way to swap in a compressed zbud pool in RAM, separate from process memory; pages it "
  "rejects go on to the swap device.", [ZS_LEN, ZS_POOR], [ev("swap.out", "pages leave process memory for the store")],
  parts("1[pre]", DS, DS))
p("1[pre]", "zram-3.14", DS,
  "zram 3.14 is a compressed RAM block device used as swap: process memory is the first space and the zsmalloc pool "
  "behind zram's slots the second.", [Z14_COMP], [ev("zram.slot_written", "pages stored in the zram device")],
  parts("1[pre]", DS, DS))
# 1[a]
p("1[a]", "vmware-esx-2002", PD,
  "ESX selects guest pages by a random scan to look for sharing, not to swap them out; its page sharing does not "
  "move the scanned page into another space.", [ESX_SCAN], [ev("dedup.hash", "scanned pages hashed", mechanism=ESX)],
  parts("1[a]", DS, ND))
p("1[a]", "difference-engine-2008", UN,
  "Difference Engine picks pages to share, patch or compress; which pages it compresses, and whether that is a "
  "swap-out into a second space, is not in the quoted abstract.", [DE_COMP, DE_SHARE],
  [ev("dedup.hash", "pages hashed by the model's scan", mechanism=DEN)], parts("1[a]", DS, UN))
p("1[a]", "satori-2009", ND,
  "Satori finds sharing when guests read data through enlightened devices; it selects no candidate page for "
  "swapping out.", [SAT_SHORT], part=parts("1[a]", ND, ND))
p("1[a]", "ksm-linux-2.6.32", PD,
  "ksmd visits pages of MADV_MERGEABLE areas in its scan and skips those whose checksum changed; the pages are chosen "
  "for merging, never for swapping out.", [KSM_VOL], [ev("dedup.hash", "scanned pages checksummed", mechanism=K32)],
  parts("1[a]", DS, ND))
p("1[a]", "compcache-ramzswap-2.6.33", DS,
  "The kernel's reclaim selects pages and writes them to the ramzswap device, whose write path compresses each one: "
  "a candidate page swapped out of process memory into the device.", [RZ_COMP], part=parts("1[a]", DS, DS))
p("1[a]", "zswap-3.11", DS,
  "zswap receives, through frontswap, each page that reclaim is swapping out, and stores it compressed before it "
  "would reach the swap device.", [ZS_LEN], [ev("swap.out", "pages swapped out through zswap")], parts("1[a]", DS, DS))
p("1[a]", "zram-3.14", DS,
  "Pages selected by reclaim are written to zram's slots when zram is the swap device; zram_bvec_write compresses "
  "each one.", [Z14_COMP], [ev("swap.out", "candidates swapped out to zram 3.14")], parts("1[a]", DS, DS))
# 1[b]
p("1[b]", "vmware-esx-2002", ND,
  "ESX compresses nothing; the value it hashes is of the page's own contents, used as the key of its hash table.",
  [ESX_KEY], [ev("dedup.hash", "the raw page is hashed", mechanism=ESX, what="uncompressed page")],
  parts("1[b]", ND, ND))
p("1[b]", "difference-engine-2008", PD,
  "Difference Engine compresses pages in memory, but the hash it uses to find identical pages is, per the abstract's "
  "content-based sharing, of page contents; a hash of a compressed page is not described.", [DE_COMP, DE_CBPS],
  [ev("dedup.hash", "what the model of Difference Engine hashes", mechanism=DEN)], parts("1[b]", DS, ND))
p("1[b]", "satori-2009", ND,
  "Neither compression nor a hash of a compressed page appears in Satori's description of its sharing.", [SAT_SYS],
  part=parts("1[b]", ND, ND))
p("1[b]", "ksm-linux-2.6.32", ND,
  "KSM 2.6.32 compresses nothing; calc_checksum is jhash2 over the raw page (PAGE_SIZE/4 words, initval 17), used "
  "only to skip pages that change between scans.", [KSM_SUM],
  [ev("dedup.hash", "jhash2 of the raw page", mechanism=K32, what="uncompressed page")], parts("1[b]", ND, ND))
p("1[b]", "compcache-ramzswap-2.6.33", PD,
  "ramzswap compresses each swapped-out page with LZO, but takes no hash of the result.", [RZ_COMP],
  part=parts("1[b]", DS, ND))
p("1[b]", "zswap-3.11", PD,
  "zswap compresses each page with the crypto API compressor (LZO by default) and computes no hash of it.",
  [ZS_LZO], part=parts("1[b]", DS, ND))
p("1[b]", "zram-3.14", PD,
  "zram 3.14 compresses each written page with LZO; no hash is taken of the compressed or the raw page.", [Z14_COMP],
  [ev("zram.compressed", "pages compressed on write")], parts("1[b]", DS, ND))
# 1[c]
p("1[c]", "vmware-esx-2002", ND,
  "ESX compares hash values of raw pages in its table and confirms by full comparison; no compressed pages are "
  "compared and no size condition applies.", [ESX_FULL],
  [ev("dedup.compare", "full compare of raw pages", mechanism=ESX)], parts("1[c]", ND, ND, ND, ND))
p("1[c]", "difference-engine-2008", ND,
  "The abstract describes sharing, patching and compression side by side; a comparison among compressed pages "
  "below a size is not described there.", [DE_SHARE], part=parts("1[c]", ND, ND, ND, ND))
p("1[c]", "satori-2009", ND,
  "Satori's sharing detection involves no compressed pages and no size threshold.", [SAT_ENL],
  part=parts("1[c]", ND, ND, ND, ND))
p("1[c]", "ksm-linux-2.6.32", ND,
  "KSM 2.6.32 searches its stable tree of raw pages by content; there are no compressed pages and no size "
  "condition.", [KSM_STABLE], [ev("dedup.compare", "memcmp of raw pages in the trees", mechanism=K32)],
  parts("1[c]", ND, ND, ND, ND))
p("1[c]", "compcache-ramzswap-2.6.33", PD,
  "A page that compresses to max_zpage_size or less is stored compressed, so every compressed page in the pool is "
  "below that size; ramzswap compares no page with another.", [RZ_THR], part=parts("1[c]", DS, ND, ND, DS))
p("1[c]", "zswap-3.11", PD,
  "Only pages whose compressed length fits a zbud allocation are stored, so stored compressed pages are below that "
  "size; the red-black tree is keyed by swap offset, and pages are never compared by content.", [ZS_ZBUD, ZS_TREE],
  part=parts("1[c]", DS, ND, ND, DS))
p("1[c]", "zram-3.14", PD,
  "Pages that compress to max_zpage_size (3/4 page) or less are stored compressed, so all stored compressed pages are "
  "below the threshold; zram 3.14 compares no pages.", [Z14_THR, Z14_MAX],
  [ev("zram.compressed", "pages compressed below the threshold", huge=False)], parts("1[c]", DS, ND, ND, DS))
# 1[d]
p("1[d]", "vmware-esx-2002", PD,
  "ESX maps guest pages to one shared machine page, copy-on-write; the shared page is a raw page, not a compressed "
  "one, and whether a guest physical page number is a virtual address is open.", [ESX_COW],
  [ev("dedup.share", "guest page mapped to the shared frame", mechanism=ESX)], parts("1[d]", PD, ND))
p("1[d]", "difference-engine-2008", PD,
  "Difference Engine shares full pages copy-on-write by remapping; the pages it maps to are not compressed pages "
  "found equal to a compressed candidate.", [DE_SHARE], [ev("dedup.share", "pages remapped to a shared copy", mechanism=DEN)],
  parts("1[d]", PD, ND))
p("1[d]", "satori-2009", UN,
  "Satori maps guest pages to shared copies, but how (and whether compressed pages take part) is not in the quoted "
  "text.", [SAT_INTRO], part=parts("1[d]", UN, ND))
p("1[d]", "ksm-linux-2.6.32", PD,
  "KSM 2.6.32 repoints a virtual address's PTE to a write-protected KSM page of the same content; nothing is "
  "compressed, so no first compressed page is mapped.", [KSM_UNSH],
  [ev("dedup.share", "PTE -> KSM page", mechanism=K32, link="PTE -> page frame")], parts("1[d]", PD, ND))
p("1[d]", "compcache-ramzswap-2.6.33", ND,
  "Each swap slot of ramzswap holds its own object; no page is mapped to another stored page of the same content.",
  [RZ_FLAG], part=parts("1[d]", ND, ND))
p("1[d]", "zswap-3.11", ND,
  "Each zswap entry stores its own compressed copy under its swap offset; nothing is mapped to a shared copy.",
  [ZS_TREE], part=parts("1[d]", ND, ND))
p("1[d]", "zram-3.14", ND,
  "Each zram slot keeps its own zsmalloc object; no slot or address is mapped to another slot's object.", [Z14_COMP],
  part=parts("1[d]", ND, ND))
# 1[e]
p("1[e]", "vmware-esx-2002", PD,
  "ESX looks a page's hash up among the hashes of stored raw pages and confirms a match by full comparison, which "
  "finds pages with the same content as the candidate; no compression, no size branch, and the hash is of the raw "
  "page.", [ESX_FULL, ESX_HINT], [ev("dedup.compare", "hash lookup then full compare", mechanism=ESX)],
  parts("1[e]", ND, PD, DS, ND))
p("1[e]", "difference-engine-2008", PD,
  "Full-page sharing finds identical pages; the abstract gives no size branch and no hash of a compressed page.",
  [DE_SHARE], [ev("dedup.compare", "identical pages confirmed", mechanism=DEN)], parts("1[e]", ND, ND, DS, ND))
p("1[e]", "satori-2009", UN,
  "Satori detects pages with identical contents; whether by hash values, and against which stored pages, is not in "
  "the quoted text.", [SAT_ENL], part=parts("1[e]", ND, UN, UN, ND))
p("1[e]", "ksm-linux-2.6.32", PD,
  "KSM finds a resident page with the same content by walking content-ordered trees with memcmp; its checksum "
  "decides volatility, not identity, and there is no compression or size branch.", [KSM_STABLE, KSM_VOL],
  [ev("dedup.compare", "full compare in the trees", mechanism=K32)], parts("1[e]", ND, ND, DS, ND))
p("1[e]", "compcache-ramzswap-2.6.33", PD,
  "A page whose compressed size exceeds max_zpage_size is stored as-is, uncompressed (or forwarded to the backing "
  "swap): a larger-than-a-size branch and uncompressed stored pages of that kind; no comparison is made.",
  [RZ_INC, RZ_INIT], part=parts("1[e]", DS, ND, ND, DS))
p("1[e]", "zswap-3.11", PD,
  "A page whose compressed length does not fit zbud is rejected (zswap_reject_compress_poor) and goes, uncompressed, "
  "to the swap device; nothing is compared.", [ZS_POOR, ZS_ZBUD],
  [ev("swap.out", "pages that go on to the swap device")], parts("1[e]", DS, ND, ND, PD))
p("1[e]", "zram-3.14", PD,
  "A page that compresses to more than max_zpage_size is stored uncompressed in memory: the split into compressed and "
  "uncompressed storage by a size threshold; no comparison is made.", [Z14_THR, Z14_DOC],
  [ev("zram.slot_written", "pages stored whole above the threshold", flag="huge")], parts("1[e]", DS, ND, ND, DS))
# 1[f]
p("1[f]", "vmware-esx-2002", UN,
  "On a verified match ESX maps the guest page to the shared machine page of the same content, uncompressed; "
  "whether a guest physical page is a virtual address, and the shared page a page stored in a second space, are "
  "construction questions.", [ESX_FULL, ESX_COW], [ev("dedup.share", "guest page -> shared frame", mechanism=ESX)],
  parts("1[f]", UN, DS))
p("1[f]", "difference-engine-2008", UN,
  "Copy-on-write full page sharing maps pages to one uncompressed copy of the same content; whether those mappings "
  "are of virtual addresses is open.", [DE_SHARE], [ev("dedup.share", "pages mapped to one copy", mechanism=DEN)],
  parts("1[f]", UN, DS))
p("1[f]", "satori-2009", UN,
  "Satori shares pages with identical contents between guests; the mapping used is not in the quoted text.",
  [SAT_INTRO], part=parts("1[f]", UN, UN))
p("1[f]", "ksm-linux-2.6.32", PD,
  "KSM maps the virtual address (PTE) of a page to a KSM page of the same content, uncompressed; the KSM page is "
  "resident and locked in RAM, not a page stored in a second memory space.", [KSM_LOCK, KSM_UNSH],
  [ev("dedup.share", "PTE -> KSM page", mechanism=K32)], parts("1[f]", DS, PD))
p("1[f]", "compcache-ramzswap-2.6.33", ND,
  "Pages stored uncompressed by ramzswap are never shared: each slot keeps its own copy.", [RZ_FLAG],
  part=parts("1[f]", ND, ND))
p("1[f]", "zswap-3.11", ND,
  "Rejected pages go to the swap device each in its own slot; nothing is mapped to a page of the same content.",
  [ZS_POOR], part=parts("1[f]", ND, ND))
p("1[f]", "zram-3.14", ND,
  "Pages zram 3.14 stores uncompressed keep one object per slot; no address is mapped to another's copy.",
  [Z14_DOC], part=parts("1[f]", ND, ND))
# 2[a]
p("2[a]", "vmware-esx-2002", DS,
  "A single global hash table of frames (shared and hint entries, 16 bytes each) is the structure under which the "
  "comparison is made.", [ESX_TABLE, ESX_16], [ev("dedup.compare", "lookups in the hash table", mechanism=ESX)],
  parts("2[a]", DS, DS))
p("2[a]", "difference-engine-2008", UN,
  "The abstract does not describe the index Difference Engine uses to find identical pages.", [DE_CBPS],
  part=parts("2[a]", UN, UN))
p("2[a]", "satori-2009", UN,
  "Satori's quoted text does not name the structure its sharing detection uses.", [SAT_SYS],
  part=parts("2[a]", UN, UN))
p("2[a]", "ksm-linux-2.6.32", DS,
  "The stable and unstable red-black trees, ordered by page content, are searched for every scanned page.",
  [KSM_STABLE], [ev("dedup.compare", "comparisons made while walking the trees", mechanism=K32)],
  parts("2[a]", DS, DS))
p("2[a]", "compcache-ramzswap-2.6.33", PD,
  "ramzswap keeps a table of slots with per-slot flags (RZS_UNCOMPRESSED), but performs no comparison under it.",
  [RZ_FLAG], part=parts("2[a]", DS, ND))
p("2[a]", "zswap-3.11", PD,
  "zswap keeps a red-black tree of entries per swap type, keyed by swap offset; it finds entries by offset and "
  "compares no contents.", [ZS_TREE], part=parts("2[a]", DS, ND))
p("2[a]", "zram-3.14", UN,
  "zram 3.14 keeps a slot table (handle, size, flags); whether that is a structure 'under which the comparison is "
  "performed' does not arise, as no comparison exists.", [Z14_ZERO], part=parts("2[a]", DS, UN))

# the published patent documents (claims as printed; their descriptions were not in the stored copies)
p("1[pre]", "us6789156", UN,
  "The claim's system has a hardware memory and contexts with virtual memory; both are the one machine's RAM, so "
  "whether that is a first and a second memory space in the patent's sense is open.", [US156_SYS],
  part=parts("1[pre]", DS, UN))
p("1[a]", "us6789156", PD,
  "Candidate memory units are selected from the virtual memory units, to be shared, not to be swapped out into "
  "another space.", [US156_SEL], part=parts("1[a]", DS, ND))
p("1[b]", "us6789156", ND,
  "The hash is applied to the contents of the candidate memory unit itself; nothing is compressed.", [US156_HASH],
  part=parts("1[b]", ND, ND))
p("1[c]", "us6789156", ND,
  "No compressed units and no size condition appear in the claim; every candidate goes through the same hash lookup.",
  [US156_DS], part=parts("1[c]", ND, ND, ND, ND))
p("1[d]", "us6789156", PD,
  "Virtual memory units with identical contents are mapped to one hardware memory unit, but that unit is not a "
  "compressed page and the unit mapped is not a compressed candidate.", [US156_MAP], part=parts("1[d]", PD, ND))
p("1[e]", "us6789156", PD,
  "The candidate's hash is looked up in a data structure of earlier entries and, on a hit, the entire contents are "
  "compared with the single instance: a hash-then-compare search for an identical uncompressed unit, with no size "
  "branch and no hash of a compressed page.", [US156_DS, US156_CMP], part=parts("1[e]", ND, PD, DS, ND))
p("1[f]", "us6789156", PD,
  "Virtual memory units found identical are mapped to a single instance in hardware memory, an uncompressed unit; "
  "that instance is not a page stored in a second memory space after compressing poorly.", [US156_MAP],
  part=parts("1[f]", DS, PD))
p("2[a]", "us6789156", DS,
  "A data structure of entries keyed by hash value is searched for every candidate and receives new entries: the "
  "structure under which the comparison is performed.", [US156_DS], part=parts("2[a]", DS, DS))
p("1[pre]", "us2004-0098544", UN,
  "The claim manages one memory system; whether the application describes two memory spaces is not in the stored "
  "claim text.", [US544_PRE], part=parts("1[pre]", DS, UN))
p("1[a]", "us2004-0098544", UN,
  "A requesting page is searched for; why it is chosen, and whether it is on its way out of memory, is not in the "
  "claim.", [US544_SEARCH], part=parts("1[a]", UN, ND))
p("1[b]", "us2004-0098544", ND,
  "Check values are generated from the contents of memory; no compression is described, and the value is not of a "
  "compressed page.", [US544_CHK], part=parts("1[b]", ND, ND))
p("1[c]", "us2004-0098544", ND,
  "The search runs over check values of pages in memory, with no compressed pages and no size condition.", [US544_DS],
  part=parts("1[c]", ND, ND, ND, ND))
p("1[d]", "us2004-0098544", UN,
  "Claim 1 stops at finding the candidate page; what is then mapped to it is not in the stored text.", [US544_SEARCH],
  part=parts("1[d]", UN, ND))
p("1[e]", "us2004-0098544", PD,
  "The requesting page's check value is used to search a data structure of check values for a page with identical "
  "content: a comparison by check value against stored pages, without a size branch or compression.",
  [US544_SEARCH], part=parts("1[e]", ND, PD, DS, ND))
p("1[f]", "us2004-0098544", UN,
  "Whether the requesting page is then mapped to the identical candidate is not said in claim 1.", [US544_SEARCH],
  part=parts("1[f]", UN, UN))
p("2[a]", "us2004-0098544", DS,
  "Each check value is associated with its page in a data structure, and that structure is what is searched: the "
  "element's two parts in the claim's own words.", [US544_DS, US544_SEARCH], part=parts("2[a]", DS, DS))
p("1[pre]", "us8898118", UN,
  "The IBM patent manages pages of data stored in a memory; whether a second memory space receives them is not in "
  "the stored abstract and claim.", [IBM_ABS], part=parts("1[pre]", DS, UN))
p("1[a]", "us8898118", UN,
  "A first page of data stored in memory is compressed; how it was chosen, and whether for swap-out, is not stated "
  "in the stored text.", [IBM_ABS], part=parts("1[a]", UN, ND))
p("1[b]", "us8898118", PD,
  "The first page is compressed and the effectiveness of that compression is calculated; no hash of the compressed "
  "page is described.", [IBM_ABS, IBM_EFF], part=parts("1[b]", DS, ND))
p("1[c]", "us8898118", PD,
  "What happens next depends on how well the page compressed (at least a predetermined effectiveness threshold), a "
  "branch on compressed size; the pages then identified have similar, not identical, content, and are not compared "
  "by hash among stored compressed pages.", [IBM_THR, IBM_SIM], part=parts("1[c]", PD, ND, ND, ND))
p("1[d]", "us8898118", ND,
  "Pages of similar content are compressed in ranked order; no address is mapped to another page.", [IBM_RANK],
  part=parts("1[d]", ND, ND))
p("1[e]", "us8898118", UN,
  "The stored text describes only the branch at or above the effectiveness threshold; the other branch, and any "
  "comparison in it, is not described there.", [IBM_THR], part=parts("1[e]", UN, ND, ND, ND))
p("1[f]", "us8898118", ND,
  "Nothing is mapped to an uncompressed page of the same content in the stored text.", [IBM_EFF],
  part=parts("1[f]", ND, ND))
p("2[a]", "us8898118", UN,
  "The second pages are ranked by a differential parameter; whether a structure holds them for a comparison of "
  "content is not in the stored abstract and claim.", [IBM_RANK], part=parts("2[a]", UN, UN))

# ============================================================================================
# Statuses under claim constructions (constructions.yaml): where a cell's status, or one of its
# parts, turns on how the claim's words are read, the cell gives its status under each
# alternative and says what each reading means for it. Never which reading is right.
# ============================================================================================
def turn(table, key, kind, cid, turning, reasoning):
    """Give cell ``key`` its statuses under construction ``cid``. ``turning``: sub-limitation
    (or, for a cell without parts, the element) -> {alternative -> its status}. The cell's
    status per alternative is derived from its parts (claims.analysis.statuses_under_readings);
    where the alternatives disagree the turned parts and the headline become undetermined."""
    sys.path.insert(0, os.path.join(HERE, ".."))
    from claims.analysis import aggregate, headline_status, statuses_under_readings
    cell = table[key]
    parts = dict(cell["parts"])
    if not parts and key[0] not in turning:        # a fully met (or unmet) cell: every part has its status
        parts = parts_of(key[0], cell["status"])
    statuses = statuses_under_readings(parts, turning, kind)
    cell.setdefault("by_construction", {})[cid] = statuses
    cell.setdefault("construction_reasoning", {})[cid] = reasoning
    if len(set(statuses.values())) > 1:
        for part, per in turning.items():
            if part in parts and len(set(per.values())) > 1:
                parts[part] = "undetermined"
    cell["parts"] = parts
    want = headline_status(cell["by_construction"], kind)
    if parts and aggregate(list(parts.values()), kind) != want:
        raise SystemExit(f"chart_source: {key} {cid}: parts give {aggregate(list(parts.values()), kind)!r}, "
                         f"the alternatives {want!r}")
    cell["status"] = want


def parts_of(el, status):
    """Every sub-limitation of ``el`` (limitations.yaml) with one status."""
    import yaml
    with open(os.path.join(DATA, "limitations.yaml"), encoding="utf-8") as f:
        lim = yaml.safe_load(f)["elements"]
    return {x["id"]: status for x in lim[el]}


def aggregate_pa(*statuses):
    sys.path.insert(0, os.path.join(HERE, ".."))
    from claims.analysis import aggregate
    return aggregate(list(statuses), "prior-art")


MAP = ("pte-swap-entry", "slot-remap", "pte-frame")


def per_map(swap, slot, frame):
    return dict(zip(MAP, (swap, slot, frame)))


# -- designs: what the mapping reading repoints, against the link each design repoints ----------
for el, what in (("1[d]", "compressed object"), ("1[f]", "page stored whole")):
    p1 = el[:-1] + ".1]"
    turn(D, (el, "zram_dedup"), "designs", "mapping", {p1: per_map("absent", "present", "absent")},
         f"Under pte-swap-entry the candidate's PTE would name the found {what}'s slot; zram dedup leaves every PTE "
         f"naming a slot of its own, so {p1} is absent and the cell partial. Under slot-remap a slot of the "
         f"candidate's own pointing at the found page's refcounted handle is what zram dedup does with zram_entry, so "
         f"the cell is present. Under pte-frame the PTE would map a shared resident frame; zram dedup keeps the "
         f"{what} in zsmalloc and maps no frame, so {p1} is absent and the cell partial.")
    turn(D, (el, "zram_merge"), "designs", "mapping", {p1: per_map("absent", "present", "absent")},
         f"Under pte-swap-entry no PTE is changed by the merge, so {p1} is absent and the cell partial. Under "
         f"slot-remap the merge's repointing of existing slots to one handle per group of identical {what}s, "
         f"counted in its tree, is that reading's slot -> handle link (done on a trigger, not at swap-out), so the "
         f"cell is present. Under pte-frame nothing is brought back into a resident frame, so {p1} is absent and the "
         f"cell partial.")
    turn(D, (el, "zsmalloc_fold"), "designs", "mapping", {p1: per_map("absent", "undetermined", "absent")},
         f"Under pte-swap-entry no PTE changes, so {p1} is absent and the cell partial. Under slot-remap each zram "
         f"slot keeps its own handle; the fold repoints handles to one allocator object, a level below the slots, "
         f"and whether that is the reading's slot pointing at the found page's handle is not settled by it: "
         f"undetermined. Under pte-frame nothing maps a resident frame, so {p1} is absent and the cell partial.")
    turn(D, (el, "patent_claim1"), "designs", "mapping", {el: per_map("present", "present", "present")},
         f"The model runs each reading: under pte-swap-entry the PTE's swap entry names the found {what}'s slot; "
         f"under slot-remap the candidate gets its own slot on the found page's handle; under pte-frame its PTE "
         f"maps a shared resident frame holding the page. Each run repoints that reading's link and reads every "
         f"page back (construe).")
turn(D, ("1[d]", "ksm"), "designs", "mapping", {"1[d.1]": per_map("absent", "absent", "present")},
     "Under pte-swap-entry and slot-remap the mapping repoints a swap entry or a slot, which KSM never does (its pages "
     "stay resident), so 1[d.1] is absent and, with no compressed page, the cell absent. Under pte-frame, pointing "
     "the PTE at a shared write-protected frame is what KSM does, so 1[d.1] is present and the cell partial (the page "
     "mapped is not a compressed page).")
turn(D, ("1[f]", "ksm"), "designs", "mapping", {"1[f.1]": per_map("absent", "absent", "present")},
     "Under pte-frame KSM's PTE -> KSM page is the reading's link and 1[f.1] is present; under pte-swap-entry and "
     "slot-remap KSM repoints neither a swap entry nor a slot and 1[f.1] is absent. Either way 1[f.2] is partial (a "
     "resident page, not one stored whole in a second space), so the cell is partial under every reading.")
# -- designs: the larger branch's comparison -------------------------------------------------------
turn(D, ("1[e]", "patent_claim1"), "designs", "large-branch",
     {"1[e]": {"compressed": "present", "raw": "present", "literal": "undetermined"}},
     "Under compressed the model compares the first hash value with hashes of the stored whole pages' compressed "
     "forms and shares the duplicates that reach that branch. Under raw it hashes the candidate's raw page too and "
     "compares it with hashes of the stored raw pages, sharing the same pages. Under literal it compares the hash of "
     "compressed bytes with hashes of raw pages, which match only by accident: the branch runs but shares nothing "
     "(construe: pages shared through the larger branch under each), and whether that performs the claimed "
     "comparison 'to find' a page of the same content is the reviewer's question.")
# -- designs: the equal case and the size, against today's zram's huge rule -----------------------
turn(D, ("1[e]", "upstream_zram"), "designs", "equal",
     {"1[e.1]": {"larger": "present", "smaller": "present"}},
     "zram stores a page whole when comp_len >= huge_class_size. Under larger, a page exactly the size goes whole on "
     "both sides, so at the default size zram's split is the reading's at every length; under smaller, such a page "
     "would take the smaller branch while zram stores it whole, a difference at one length. zram compares nothing, "
     "so the cell is partial under both.")
turn(D, ("1[e]", "upstream_zram"), "designs", "predetermined-size",
     {"1[e.1]": {"huge-threshold": "present", "three-quarter-page": "present", "half-page": "present"}},
     "Under huge-threshold the size is zram's own huge_class_size and its whole-page rule is the reading's larger "
     "branch; under three-quarter-page and half-page, pages between that size and huge_class_size are larger than "
     "the size yet zram keeps them compressed, though every page it stores whole is larger. zram compares nothing, "
     "so the cell is partial under each.")

# -- designs: the second memory space, against stores carved from the same RAM ----------------------
SPACE = ("carved-pool", "separate-device")
for mech, store in (("upstream_zram", "zram's zsmalloc pool"), ("zram_dedup", "the deduplicating zram device's pool"),
                    ("zram_merge", "the zram pool the merge works in"), ("zsmalloc_fold", "the zsmalloc pool it folds")):
    turn(D, ("1[pre]", mech), "designs", "second-space", {"1[pre.2]": dict(zip(SPACE, ("present", "absent")))},
         f"Under carved-pool, {store} is a second memory space apart from the process address spaces though carved "
         f"from the same RAM, and the cell is present. Under separate-device the stored pages must not occupy the RAM "
         f"the processes use; {store} is allocated from that RAM, so 1[pre.2] is absent and the cell partial.")
    D[("1[pre]", mech)]["difference"] = (f"stores pages in {store}, carved from process RAM: a second memory space "
                                          f"under carved-pool, not under separate-device")
    D[("1[a]", mech)]["difference"] = (f"swaps candidates out into {store}, in the same RAM, not to a separate "
                                        f"device")
    turn(D, ("1[a]", mech), "designs", "second-space", {"1[a.2]": dict(zip(SPACE, ("present", "absent")))},
         f"Under carved-pool the swap-out moves the candidate into {store}, the second memory space, and the cell is "
         f"present. Under separate-device the page would leave process RAM for a device outside it; {store} is in "
         f"the same RAM, so 1[a.2] is absent and the cell partial (the candidate is still selected from process "
         f"memory).")
turn(D, ("1[pre]", "patent_claim1"), "designs", "second-space", {"1[pre]": dict(zip(SPACE, ("present", "present")))},
     "The model runs both readings: the same pages are shared under carved-pool and separate-device; what differs is "
     "the accounting (under separate-device the bytes saved are the store's, and process RAM gains only what the "
     "index does not cost: RAM net in construe).")

# -- prior art: the mapping reading against what each reference repoints ---------------------------
turn(P, ("1[d]", "ksm-linux-2.6.32"), "prior-art", "mapping", {"1[d.1]": per_map(ND, ND, PD)},
     "Under pte-frame, repointing a PTE to a shared write-protected page is what KSM 2.6.32 does, so 1[d.1] is partly "
     "disclosed (a virtual address is mapped, but not one of a compressed page) and the cell partly disclosed. Under "
     "pte-swap-entry and slot-remap the mapping repoints a swap entry or a slot; KSM 2.6.32 keeps merged pages "
     "locked in RAM and repoints neither, so the cell is not disclosed.")
turn(P, ("1[f]", "ksm-linux-2.6.32"), "prior-art", "mapping", {"1[f.1]": per_map(ND, ND, DS)},
     "Under pte-frame KSM 2.6.32's PTE -> KSM page mapping is the reading's and 1[f.1] is disclosed; under "
     "pte-swap-entry and slot-remap no swap entry or slot is repointed and 1[f.1] is not disclosed. The page mapped "
     "to is resident, not stored in a second space (1[f.2] partly disclosed), so the cell is partly disclosed under "
     "each.")
for ref, who in (("vmware-esx-2002", "ESX"), ("difference-engine-2008", "Difference Engine")):
    turn(P, ("1[d]", ref), "prior-art", "mapping", {"1[d.1]": per_map(ND, ND, UN)},
         f"{who} remaps guest physical pages to one machine page, copy-on-write. Under pte-swap-entry and slot-remap "
         f"the mapping repoints a swap entry or a slot, which {who}'s sharing does not, so the cell is not disclosed. "
         f"Under pte-frame it repoints a page table entry to a shared write-protected frame; whether {who}'s "
         f"guest-physical to machine mapping is such an entry, of a virtual address, is open, so the cell is "
         f"undetermined.")
    turn(P, ("1[f]", ref), "prior-art", "mapping", {"1[f.1]": per_map(ND, ND, UN)},
         f"Under pte-swap-entry and slot-remap, {who} repoints no swap entry or slot, so 1[f.1] is not disclosed and, "
         f"with a shared copy of the same content (1[f.2]), the cell is partly disclosed. Under pte-frame, whether "
         f"{who}'s copy-on-write remapping of guest pages is the reading's page table entry to a shared frame is "
         f"open, so the cell is undetermined.")
turn(P, ("1[d]", "us6789156"), "prior-art", "mapping", {"1[d.1]": per_map(ND, ND, PD)},
     "Under pte-frame, mapping virtual memory units to a single hardware memory unit is the reading's page table "
     "entry pointed at a shared frame, so 1[d.1] is partly disclosed (the unit mapped is not a compressed page) and "
     "the cell partly disclosed. Under pte-swap-entry and slot-remap the claim's mapping of virtual units to hardware "
     "units repoints no swap entry or slot, so the cell is not disclosed.")
turn(P, ("1[f]", "us6789156"), "prior-art", "mapping", {"1[f.1]": per_map(ND, ND, DS)},
     "Under pte-frame the mapping of identical virtual units to one hardware unit is the reading's and 1[f.1] is "
     "disclosed; under pte-swap-entry and slot-remap it is not. The single instance is not a page stored in a second "
     "space after compressing poorly (1[f.2]), so the cell is partly disclosed under each.")
# -- prior art: the second memory space -------------------------------------------------------------
for ref, pre_sep, a_sep, what in (
        ("zram-3.14", ND, ND, "zram 3.14's zsmalloc pool is allocated from the same RAM, and it has no backing device"),
        ("zswap-3.11", PD, PD, "zswap's compressed pool is in the same RAM; only the pages it rejects go on to the "
                               "swap device, uncompressed"),
        ("compcache-ramzswap-2.6.33", PD, PD, "the ramzswap pool is in the same RAM; only pages forwarded to the "
                                              "optional backing swap disk leave it")):
    turn(P, ("1[pre]", ref), "prior-art", "second-space", {"1[pre.2]": {"carved-pool": DS, "separate-device": pre_sep}},
         f"Under carved-pool a compressed store apart from the process address spaces is a second memory space even "
         f"in the same RAM, and the cell is disclosed. Under separate-device the stored pages must not occupy the RAM "
         f"the processes use: {what}; so the cell is {aggregate_pa(DS, pre_sep)}.")
    turn(P, ("1[a]", ref), "prior-art", "second-space", {"1[a.2]": {"carved-pool": DS, "separate-device": a_sep}},
         f"Under carved-pool the page reclaim swaps out goes into the compressed store, the second memory space, and "
         f"the cell is disclosed. Under separate-device it would have to leave RAM for a device: {what}; so the cell "
         f"is {aggregate_pa(DS, a_sep)}.")

# -- prior art: zram 3.14's threshold (stored whole when clen > 3072) against the size branches -------
turn(P, ("1[c]", "zram-3.14"), "prior-art", "predetermined-size",
     {"1[c.1]": {"huge-threshold": PD, "three-quarter-page": DS, "half-page": PD}},
     "zram 3.14 keeps a page compressed when clen <= 3072. Under three-quarter-page the size is its max_zpage_size "
     "and every page smaller than it is kept compressed (a page of exactly 3072 bytes too, which under equal=larger "
     "would take the larger branch). Under huge-threshold (3625) pages from 3073 to 3624 bytes are smaller than the "
     "size yet stored whole, and under half-page pages from 2048 to 3072 bytes are kept compressed though not "
     "smaller; zram 3.14 compares nothing, so the cell is partly disclosed under each.")
turn(P, ("1[c]", "zram-3.14"), "prior-art", "equal",
     {"1[c.1]": {"larger": DS, "smaller": DS}},
     "At the default size (3625) no page zram 3.14 keeps compressed is as long as the size, so larger and smaller "
     "change nothing here; with the size read as 3072, a 3072-byte page is kept compressed as the smaller reading "
     "would send it, and the larger reading would not. No comparison is made, so the cell is partly disclosed under "
     "both.")
turn(P, ("1[e]", "zram-3.14"), "prior-art", "predetermined-size",
     {"1[e.1]": {"huge-threshold": DS, "three-quarter-page": DS, "half-page": PD}},
     "zram 3.14 stores a page whole when clen > 3072. Under three-quarter-page that is the reading's 'larger than' "
     "at every length; under huge-threshold (3625) every page larger than the size is stored whole, and so are pages "
     "of 3073 to 3625 bytes that are not larger; under half-page, pages of 2049 to 3072 bytes are larger than the "
     "size yet kept compressed. Nothing is compared, so the cell is partly disclosed under each.")
turn(P, ("1[e]", "zram-3.14"), "prior-art", "equal",
     {"1[e.1]": {"larger": DS, "smaller": DS}},
     "zram 3.14's rule is strictly 'clen > max_zpage_size'. At the default size no page it stores whole is exactly "
     "the size, so larger and smaller decide alike; with the size read as 3072, the smaller reading matches its rule "
     "at every length and the larger reading differs for a 3072-byte page. Nothing is compared, so the cell is "
     "partly disclosed under both.")


COMBINATIONS = [
    {"id": "zram-3.14+ksm-2.6.32", "readings": {"second-space": "carved-pool"}, "references": ["zram-3.14", "ksm-linux-2.6.32"],
     "covers": {"1[pre]": "zram-3.14", "1[a]": "zram-3.14", "2[a]": "ksm-linux-2.6.32"},
     "question": ("zram 3.14 compresses each swapped-out page and keeps pages above max_zpage_size uncompressed, but "
                  "compares nothing; KSM 2.6.32 finds identical raw pages by memcmp in content-ordered trees and "
                  "repoints PTEs, but compresses nothing and hashes only to skip changing pages. Would a person of "
                  "ordinary skill have applied KSM's identity test and remapping to zram's stored pages, and would the "
                  "result hash the compressed page (1[b.2]) and compare within the size branches (1[c], 1[e])? "
                  "'pagemerge combine' shows this composition's per-page decisions beside the claimed method's.")},
    {"id": "zram-3.14+esx-2002", "readings": {"second-space": "carved-pool"}, "references": ["zram-3.14", "vmware-esx-2002"],
     "covers": {"1[pre]": "zram-3.14", "1[a]": "zram-3.14", "2[a]": "vmware-esx-2002"},
     "question": ("ESX keys a global hash table by a hash of page contents and confirms by full comparison; zram 3.14 "
                  "splits stored pages by a compressed-size threshold. What would have led a person of skill to key "
                  "such a table for a compressed swap store, and would the key be the raw or the compressed page?")},
    {"id": "us6789156+zram-3.14", "readings": {"second-space": "carved-pool"}, "references": ["us6789156", "zram-3.14"],
     "covers": {"1[pre]": "zram-3.14", "1[a]": "zram-3.14", "2[a]": "us6789156"},
     "question": ("US 6,789,156 claims hashing candidate units, searching a data structure by the hash, comparing entire "
                  "contents and mapping identical virtual units to one instance; zram 3.14 stores swapped-out pages "
                  "compressed or, above max_zpage_size, whole. Would its search have been applied to zram's stored pages, "
                  "and would the value searched be a hash of the compressed page (1[b.2]) with one index per size "
                  "branch (1[c], 1[e])?")},
    {"id": "difference-engine-2008+zram-3.14", "readings": {"second-space": "carved-pool"}, "references": ["difference-engine-2008", "zram-3.14"],
     "covers": {"1[pre]": "zram-3.14", "1[a]": "zram-3.14"},
     "question": ("Difference Engine already puts page sharing and in-memory compression in one system, and zram 3.14 "
                  "has the size split. Does either describe comparing compressed pages, or hashing a compressed page, "
                  "and what does the reviewer read into combining sharing with a threshold-split compressed store?")},
]


# ============================================================================================
# writing, with reviewer edits merged
# ============================================================================================
def q(s):
    return json.dumps(s, ensure_ascii=False)


def flow(d):
    return "{" + ", ".join(f"{q(k) if not k.isidentifier() else k}: {q(v) if not isinstance(v, dict) else flow(v)}"
                           for k, v in d.items()) + "}"


def _existing(path, key_fields, list_key):
    """Cells of the file as it is (keyed by key_fields), or {} if there is none."""
    import yaml
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            sys.exit(f"chart_source: {path}: not valid YAML, so reviewer edits cannot be merged; fix it first ({e})")
    return {tuple(c.get(k) for k in key_fields): c for c in data.get(list_key, []) if isinstance(c, dict)}


def merge_cell(generated: dict, old: dict | None) -> dict:
    """A draft cell takes the generated text; a cell a reviewer has touched stays as the reviewer
    left it. Reviewer fields always survive."""
    if not old:
        return generated
    if old.get("reviewer_status", "draft") != "draft":
        return old
    out = dict(generated)
    for k in REVIEW_FIELDS:
        if old.get(k) not in (None, ""):
            out[k] = old[k]
    return out


def review_lines(c, ind):
    out = [f"{ind}reviewer_status: {q(c.get('reviewer_status', 'draft'))}"]
    for k in ("reviewer", "reviewed_on", "review_comment"):
        v = c.get(k)
        if v not in (None, ""):
            out.append(f"{ind}{k}: {q(str(v))}")
    return out


def reading_lines(c, ind):
    """The cell's statuses under claim constructions and what each reading means for it."""
    out = []
    if c.get("by_construction"):
        out.append(f"{ind}by_construction:")
        out += [f"{ind}  {q(k)}: {flow(v)}" for k, v in c["by_construction"].items()]
    if c.get("construction_reasoning"):
        out.append(f"{ind}construction_reasoning:")
        out += [f"{ind}  {q(k)}: {q(v)}" for k, v in c["construction_reasoning"].items()]
    return out


def chart_cells():
    return {(el, m): {"element": el, "mechanism": m, "status": D[(el, m)]["status"],
                      "reasoning": D[(el, m)]["reasoning"], "parts": D[(el, m)]["parts"],
                      "difference": D[(el, m)]["difference"],
                      "by_construction": D[(el, m)].get("by_construction", {}),
                      "construction_reasoning": D[(el, m)].get("construction_reasoning", {}),
                      "evidence": {"events": D[(el, m)]["events"], "code": D[(el, m)]["code"],
                                   "citations": D[(el, m)]["cites"]}}
            for el in ELEMENTS for m in M}


def prior_art_cells():
    return {(el, r): {"element": el, "reference": r, "status": P[(el, r)]["status"],
                      "reasoning": P[(el, r)]["reasoning"], "parts": P[(el, r)]["parts"],
                      "citations": P[(el, r)]["cites"], "events": P[(el, r)]["events"],
                      "by_construction": P[(el, r)].get("by_construction", {}),
                      "construction_reasoning": P[(el, r)].get("construction_reasoning", {})}
            for el in ELEMENTS for r in REFS}


def emit_chart(path):
    old = _existing(path, ("element", "mechanism"), "rows")
    out = ["# Designs: US 9,977,598 claims 1-2, element by element, against the later designs (Kim 2017,",
           "# Romanov 2022 and 2023, KSM and zram today) and the engine's model of claim 1.",
           "# Generated by scripts/chart_source.py; reviewers edit this file directly: a cell whose",
           "# reviewer_status is not draft is kept as is when the file is regenerated.",
           "# Every id is quoted. Status: present / partial / absent / undetermined; parts give each",
           "# sub-limitation's status (limitations.yaml). Technical evidence for review, not legal advice.",
           'patent: "US9977598"',
           'title: "US 9,977,598 claims 1-2 against the later designs: what each does, element by element"',
           "claims: [1, 2]",
           "mechanisms: [" + ", ".join(q(m) for m in M) + "]",
           "construction_notes:"]
    out += [f"  {q(k)}: {q(v)}" for k, v in CONSTRUCTION.items()]
    out.append("rows:")
    for key, gen in chart_cells().items():
        c = merge_cell(gen, old.get(key))
        out.append(f"  - element: {q(c['element'])}")
        out.append(f"    mechanism: {q(c['mechanism'])}")
        out.append(f"    status: {q(c['status'])}")
        if c.get("parts"):
            out.append(f"    parts: {flow(c['parts'])}")
        out.append(f"    reasoning: {q(c['reasoning'])}")
        if c.get("difference"):
            out.append(f"    difference: {q(c['difference'])}")
        out += reading_lines(c, "    ")
        e = c.get("evidence", {})
        out.append("    evidence:")
        for k, key2 in (("events", "events"), ("code", "code"), ("citations", "citations")):
            items = e.get(key2, [])
            out.append(f"      {k}:" + ("" if items else " []"))
            out += [f"        - {flow(x)}" for x in items]
        out += review_lines(c, "    ")
    write(path, out)
    return len(chart_cells())


def emit_prior_art(path):
    old = _existing(path, ("element", "reference"), "cells")
    old_comb = _existing(path, ("id",), "combinations")
    out = ["# Prior art: every element of US 9,977,598 claims 1-2 against every reference dated before",
           "# the priority date (2014-10-27). Status: disclosed / partly disclosed / not disclosed /",
           "# undetermined, about what each reference describes; parts give each sub-limitation",
           "# (limitations.yaml). Citations quote the reference's own text (sources/<id>.txt). events are",
           "# counted in a run of the reference's executable model (the engine mechanism whose reference",
           "# it is). Claim-level status, including claim 2's, is computed from the cells, never typed.",
           "# Generated by scripts/chart_source.py; reviewer edits survive regeneration.",
           "# Technical evidence for review, not legal advice.",
           'patent: "US9977598"',
           'title: "US 9,977,598 claims 1-2 against the art before 2014-10-27"',
           "references: [" + ", ".join(q(r) for r in REFS) + "]",
           "cells:"]
    for key, gen in prior_art_cells().items():
        c = merge_cell(gen, old.get(key))
        out.append(f"  - element: {q(c['element'])}")
        out.append(f"    reference: {q(c['reference'])}")
        out.append(f"    status: {q(c['status'])}")
        if c.get("parts"):
            out.append(f"    parts: {flow(c['parts'])}")
        out.append(f"    reasoning: {q(c['reasoning'])}")
        out += reading_lines(c, "    ")
        for k in ("citations", "events", "code"):
            items = c.get(k, [])
            if items or k == "citations":
                out.append(f"    {k}:" + ("" if items else " []"))
                out += [f"      - {flow(x)}" for x in items]
        out += review_lines(c, "    ")
    out.append("combinations:")
    for comb in COMBINATIONS:
        c = merge_cell(comb, old_comb.get((comb["id"],)))
        out.append(f"  - id: {q(c['id'])}")
        out.append("    references: [" + ", ".join(q(r) for r in c["references"]) + "]")
        out.append(f"    covers: {flow(c['covers'])}")
        if c.get("readings"):
            out.append(f"    readings: {flow(c['readings'])}")
        out.append(f"    question: {q(c['question'])}")
        out += review_lines(c, "    ")
    write(path, out)
    return len(prior_art_cells())


def write(path, lines):
    sys.path.insert(0, os.path.join(HERE, ".."))
    from engine.fileio import AtomicFile
    with AtomicFile(path, force=True) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA, help="the patent's data folder (default: the bundled US9977598)")
    a = ap.parse_args(argv)
    n = emit_chart(os.path.join(a.data, "chart.yaml"))
    k = emit_prior_art(os.path.join(a.data, "prior_art.yaml"))
    print(f"wrote {a.data}/chart.yaml ({n} cells) and prior_art.yaml ({k} cells)")


if __name__ == "__main__":
    main()
