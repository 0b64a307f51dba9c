"""The executable prior art, each on hand-computed cases taken from the version it models.

The constants these tests expect are typed here from the cited sources (zram_drv.h of 3.14,
zbud.c of 3.11, jhash.h of 2.6.32, the ESX paper), not read from the code under test.
"""
import re
from datetime import date

import numpy as np
import pytest

from engine.compress import get_compressor
from engine.events import Recorder
from engine.hashes import jhash, xxhash32
from engine.mechanisms import PRIOR_ART, REGISTRY, Workload, catalogue, make
from engine.mechanisms.base import KINDS
from engine.mechanisms.events import LINK_PTE
from engine.mm import Machine
from engine.pages import PAGE_SIZE, PageSet
from tests import pagesets

PRIORITY = date(2014, 10, 27)


def boundary_page(algo: str, length: int) -> bytes:
    """A page whose compressed length under ``algo`` is exactly ``length``: random bytes whose
    tail repeats their head, the repeat shortened until the length is reached."""
    c = get_compressor(algo)
    rand = np.random.default_rng(7).integers(0, 256, PAGE_SIZE, dtype=np.uint8).tobytes()
    for m in range(0, 1400):
        p = rand[:PAGE_SIZE - m] + rand[:m]
        if len(c.compress(p)[0]) == length:
            return p
    raise AssertionError(f"no page of compressed length {length} under {algo}")


# ---- zram 3.14 ---------------------------------------------------------------------------------
MAX_ZPAGE_SIZE_314 = 4096 // 4 * 3        # zram_drv.h of 3.14: PAGE_SIZE / 4 * 3


def test_zram_3_14_stores_a_page_whole_exactly_when_it_compresses_to_more_than_3072():
    lengths = [3071, 3072, 3073, 3074]
    pages = [boundary_page("kernel-lz4", n) for n in lengths]
    m = make("zram_3_14", algo="kernel-lz4").run(Workload(PageSet.from_pages(pages, "boundary")))
    dev = m.device
    sizes = [dev.size[s] for s in range(len(pages))]
    # clen > max_zpage_size is stored whole; 3072 itself is not (the operator is strict)
    assert sizes == [3071, 3072, PAGE_SIZE, PAGE_SIZE]
    assert m.mm_stat_["compr_data_size"] == 3071 + 3072 + 2 * PAGE_SIZE
    assert m.verified_readback_


def test_zram_3_14_allocator_geometry_hand_computed():
    # 3.14 zsmalloc: 3072-byte objects live in 3-page zspages of 4 (usedpc 75, 75, 100 for 1..3
    # pages), a 3071-byte request falls in the same class (ceil((3071-32)/16) = 190), and a
    # whole page takes a 1-page zspage of its own. No handle header is added.
    pages = [boundary_page("kernel-lz4", 3072), boundary_page("kernel-lz4", 3071), boundary_page("kernel-lz4", 3073)]
    m = make("zram_3_14", algo="kernel-lz4").run(Workload(PageSet.from_pages(pages, "geometry")))
    assert m.mm_stat_["mem_used_total"] == 3 * PAGE_SIZE + 1 * PAGE_SIZE
    from engine.mechanisms.zram_3_14 import Zs314Pool
    pool = Zs314Pool()
    assert len(pool.size_class) == 255
    assert [pool.size_class[i].pages_per_zspage for i in (0, 1, 190, 254)] == [1, 3, 3, 1]
    assert pool.size_class[1].size == 48 and pool.size_class[190].size == 3072


def test_zram_3_14_keeps_zero_pages_out_of_pages_stored_and_does_not_catch_other_fills():
    ps = pagesets.same_filled_pages()             # fill words 0, 0x01..., 0xDEAD..., 0xFF, 0xFF..., then 5 zero pages
    m = make("zram_3_14").run(Workload(ps))
    st = m.mm_stat_
    assert st["zero_pages"] == 6                  # only all-zero pages are caught before compression in 3.14
    assert st["orig_data_size"] == 4 * PAGE_SIZE  # the four other fills are compressed and counted
    today = make("upstream_zram").run(Workload(ps))
    assert today.mm_stat_["same_pages"] == 10 and today.mm_stat_["orig_data_size"] == 10 * PAGE_SIZE
    assert m.verified_readback_


def test_zram_3_14_has_no_mem_limit():
    with pytest.raises(Exception, match="3.18"):
        make("zram_3_14", mem_limit=1 << 20).run(Workload(pagesets.text_pages(2)))


# ---- zswap 3.11 --------------------------------------------------------------------------------
def test_zswap_3_11_rejects_a_page_whose_object_exceeds_what_zbud_holds():
    # zbud.c: size > PAGE_SIZE - ZHDR_SIZE_ALIGNED (64) - CHUNK_SIZE (64) = 3968 is -ENOSPC;
    # zswap asks for dlen + 8 (the swap entry header): dlen 3960 fits, 3961 does not
    pages = [boundary_page("kernel-lz4", n) for n in (3959, 3960, 3961, 3962)]
    m = make("zswap_3_11", algo="kernel-lz4").run(Workload(PageSet.from_pages(pages, "zbud-edge")))
    st = m.mm_stat_
    assert st["reject_compress_poor"] == 2 and st["stored_pages"] == 2 and st["swap_device_pages"] == 2
    assert sorted(m.device.tree) == [0, 1]                 # the first two are in zswap
    assert m.device.disk.size[2] == m.device.disk.size[3] == PAGE_SIZE
    assert m.verified_readback_


def test_zbud_packs_two_buddies_per_page_hand_computed():
    from engine.mechanisms.zswap_3_11 import ZbudPool
    pool = ZbudPool()
    a = pool.alloc(1000)            # 16 chunks, FIRST of a new page: 64 - 16 - 1 = 47 free chunks
    assert pool.pages_nr == 1 and pool.unbuddied[47]
    b = pool.alloc(1000)            # the first unbuddied list with >= 16 free chunks: the LAST buddy
    assert pool.pages_nr == 1 and pool.buddied and a & 0xFFF == 64 and b & 0xFFF == 4096 - 16 * 64
    pool.alloc(3000)                # 47 chunks, no room: a new page
    assert pool.pages_nr == 2
    pool.free(a)
    assert pool.pages_nr == 2 and pool.unbuddied[64 - 16 - 1]
    pool.free(b)
    assert pool.pages_nr == 1
    pool.check()
    with pytest.raises(MemoryError):
        pool.alloc(3969)


def test_zswap_3_11_shares_nothing():
    m = make("zswap_3_11").run(Workload(pagesets.text_pages(12, distinct=3)))
    assert m.pages_merged_ == 0 and m.mm_stat_["stored_pages"] == 12 and m.work_["pages_hashed"] == 0


# ---- KSM 2.6.32 --------------------------------------------------------------------------------
def lookup2_jhash2(words, initval):
    """Bob Jenkins' lookup2 hash over 32-bit words, written out here from its description
    (golden ratio start, 3 words per round, length in bytes added to c before the last mix)."""
    M = 0xFFFFFFFF

    def mix(a, b, c):
        for sa, sb, sc in ((13, 8, 13), (12, 16, 5), (3, 10, 15)):
            a = ((a - b - c) & M) ^ (c >> sa)
            b = ((b - c - a) & M) ^ ((a << sb) & M)
            c = ((c - a - b) & M) ^ (b >> sc)
        return a, b, c

    a = b = 0x9E3779B9
    c = initval
    i = 0
    while len(words) - i >= 3:
        a, b, c = (a + words[i]) & M, (b + words[i + 1]) & M, (c + words[i + 2]) & M
        a, b, c = mix(a, b, c)
        i += 3
    c = (c + 4 * len(words)) & M
    rest = words[i:]
    if len(rest) == 2:
        b = (b + rest[1]) & M
    if rest:
        a = (a + rest[0]) & M
    return mix(a, b, c)[2]


def test_ksm_2_6_32_checksum_is_jhash2_lookup2_over_1024_words_with_initval_17():
    from engine.mechanisms.ksm_2_6_32 import jhash2_2632
    pages = [bytes(PAGE_SIZE), b"*" * PAGE_SIZE, pagesets.random_pages(1).page(0).tobytes(),
             bytes(pagesets.text_pages(1).page(0))]
    for p in pages:
        words = list(np.frombuffer(p, "<u4"))
        expect = lookup2_jhash2([int(w) for w in words], 17)
        assert jhash2_2632(p) == expect
        assert expect != xxhash32(p) and expect != jhash(p, 17)      # neither today's checksum nor lookup3
    assert lookup2_jhash2([], 0) == jhash2_2632(b"", 0)
    # the zero page's checksum, from 2.6.32's include/linux/jhash.h built in user space (outside this
    # repository): jhash2(page, 1024, 17) = 0x31cbe0fa
    assert jhash2_2632(bytes(PAGE_SIZE)) == 0x31CBE0FA


def test_ksm_2_6_32_searches_the_stable_tree_before_taking_the_checksum():
    # 3 contents x 4 copies. Scan 1: every page hashed, all volatile (12). Scan 2: per content
    # the first page is hashed and enters the unstable tree, the second is hashed and merges
    # with it, the other two hit the stable tree without a checksum (3 x 2 = 6). Later scans
    # see only KSM pages already in place.
    ps = pagesets.text_pages(12, distinct=3)
    old = make("ksm_2_6_32").run(Workload(ps))
    assert old.pages_merged_ == 9 and old.work_["pages_hashed"] == 18
    today = make("ksm").run(Workload(ps))
    assert today.pages_merged_ == 9 and today.work_["pages_hashed"] > old.work_["pages_hashed"]


def test_ksm_2_6_32_has_no_chains_and_counts_only_rmap_items():
    ps = PageSet.from_pages([b"\x5a" * 2048 + bytes(2048)] * 300, "300 copies")
    old = make("ksm_2_6_32").run(Workload(ps))
    k = old.mm_stat_["ksm"]
    assert (k["pages_shared"], k["pages_sharing"]) == (1, 299)
    assert "stable_node_chains" not in k
    assert old.metadata_bytes_ == 300 * 64
    today = make("ksm").run(Workload(ps))                 # 256 per KSM page today: a chain of two dups
    assert today.mm_stat_["ksm"]["stable_node_chains"] == 1 and today.mm_stat_["ksm"]["pages_shared"] == 2


def test_ksm_2_6_32_merged_pages_stay_resident_and_only_the_rest_is_swapped():
    ps = PageSet.from_pages([b"A" * PAGE_SIZE] * 4 + [bytes([i]) * 8 + b"x" * (PAGE_SIZE - 8) for i in range(3)],
                            "mixed")
    m = make("ksm_2_6_32").run(Workload(ps, swap_fraction=1.0))
    resident = [mm.ptes[va].frame for mm, va in m.where_]
    assert [f is not None and f.ksm for f in resident] == [True] * 4 + [False] * 3
    assert m.device.pages_stored == 3 and m.verified_readback_


def test_ksm_2_6_32_breaks_a_ksm_page_left_with_one_mapping():
    ps = PageSet.from_pages([b"B" * PAGE_SIZE] * 2, "pair")
    m = make("ksm_2_6_32")
    machine, mms, where = m.setup(Workload(ps))
    m.prepare(machine, mms)
    (mm0, va0), (mm1, va1) = where
    assert mm0.ptes[va0].frame == mm1.ptes[va1].frame and m.ksmd.pages_sharing == 1
    m.write(mm1, va1, b"C")                                # COW: the KSM page keeps one mapping
    kpage = mm0.ptes[va0].frame
    assert kpage.ksm and kpage.mapcount == 1
    m.ksmd.full_scan()
    m.ksmd.full_scan()
    assert not mm0.ptes[va0].frame.ksm                     # replaced by an ordinary page
    assert (m.ksmd.pages_shared, m.ksmd.pages_sharing) == (0, 0)
    assert mm0.read(va0) == b"B" * PAGE_SIZE


def test_ksm_2_6_32_max_kernel_pages_stops_new_ksm_pages():
    ps = pagesets.text_pages(12, distinct=3)
    m = make("ksm_2_6_32", max_kernel_pages=1).run(Workload(ps))
    assert m.mm_stat_["ksm"]["pages_shared"] == 1 and m.pages_merged_ == 3


# ---- ESX 2002 ----------------------------------------------------------------------------------
def esx_machine(pages, hash_name="xxhash64"):
    from engine.hashes import get_hash
    from engine.mechanisms.base import Work
    from engine.mechanisms.legacy import ContentSharing
    machine = Machine()
    mms = machine.place_pages(PageSet.from_pages(pages, "esx"))
    mm = mms[0]
    vas = sorted(mm.ptes)
    name, fn = get_hash(hash_name)
    cs = ContentSharing(machine, "esx_2002", name, fn, Work(), hints=True)
    return machine, mm, vas, cs


def test_esx_shares_only_after_a_full_compare():
    A, B = b"A" * PAGE_SIZE, b"B" * PAGE_SIZE
    machine, mm, vas, cs = esx_machine([A, B, A], "weak")  # every page has the same hash
    for va in vas:
        cs.visit(mm, va)
    # A becomes the hint; B matches its hash, the full compare fails: not shared (false match);
    # the second A matches, is compared equal, and both map one read-only frame
    assert cs.false_matches == 1 and cs.pages_merged() == 1
    assert mm.ptes[vas[0]].frame == mm.ptes[vas[2]].frame != mm.ptes[vas[1]].frame
    assert not mm.ptes[vas[0]].writable and mm.ptes[vas[1]].writable
    assert [mm.read(va) for va in vas] == [A, B, A]


def test_esx_a_stale_hint_is_not_shared():
    A = b"A" * PAGE_SIZE
    machine, mm, vas, cs = esx_machine([A, b"x" * PAGE_SIZE, A])
    cs.visit(mm, vas[0])                                   # A is entered as a hint
    mm.write(vas[0], b"changed")                           # the hint page changes afterwards
    cs.visit(mm, vas[2])                                   # same hash as the old A: the hint is re-hashed
    assert cs.stale_hints == 1 and cs.pages_merged() == 0
    assert mm.ptes[vas[2]].frame != mm.ptes[vas[0]].frame
    cs.visit(mm, vas[2])                                   # it is now the hint itself: nothing to do


def test_esx_copy_on_write_gives_the_writer_a_private_copy():
    A = b"A" * PAGE_SIZE
    machine, mm, vas, cs = esx_machine([A, A, A])
    for va in vas:
        cs.visit(mm, va)
    shared = mm.ptes[vas[0]].frame
    assert shared.mapcount == 3 and cs.pages_merged() == 2
    mm.write(vas[1], b"W")
    assert mm.ptes[vas[1]].frame != shared and shared.mapcount == 2
    assert mm.read(vas[0]) == A and mm.read(vas[1]) == b"W" + A[1:]


def test_esx_mechanism_events_and_metadata():
    from engine.events import EventBus
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    m = make("esx_2002").run(Workload(pagesets.text_pages(12, distinct=3)), bus=bus)
    kinds = rec.counts
    assert kinds["dedup.hash"] == 12 + 3                   # every page, and each hint re-hashed once
    assert kinds["dedup.share"] == 9 + 3                   # 9 repointed PTEs, 3 hint pages write-protected
    assert all(e.link == LINK_PTE for e in rec.of("dedup.share"))
    assert m.metadata_bytes_ == 3 * 16 and m.pages_merged_ == 9


# ---- Difference Engine 2008 --------------------------------------------------------------------
def test_difference_engine_shares_whole_pages_then_compresses_the_cold_rest():
    text = pagesets.text_pages(8, distinct=2)             # 2 contents x 4 copies
    uniq = [(f"unique page {i} " * 300).encode()[:PAGE_SIZE] for i in range(3)]
    pages = [bytes(text.page(i)) for i in range(8)] + uniq
    m = make("difference_engine_2008").run(Workload(PageSet.from_pages(pages, "de")))
    assert m.pages_merged_ == 6
    comp = get_compressor(m.algo)
    st = m.mm_stat_
    assert st["orig_data_size"] == 3 * PAGE_SIZE           # only the unshared pages were compressed
    assert st["compr_data_size"] == sum(len(comp.compress(p)[0]) for p in uniq)
    assert m.verified_readback_


# ---- the catalogue -----------------------------------------------------------------------------
def test_every_mechanism_says_what_it_is_and_prior_art_predates_the_priority_date():
    rows = {r["name"]: r for r in catalogue()}
    assert set(rows) == set(REGISTRY)
    for name, r in rows.items():
        assert r["kind"] in KINDS, name
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", r["date"]), name
        assert r["reference"] and r["summary"], name
    for name in PRIOR_ART:
        r = rows[name]
        assert r["kind"] == "prior-art"
        assert date.fromisoformat(r["date"] + ("-01" if len(r["date"]) == 7 else "")) < PRIORITY
        assert r["citations"] and all(c["reference"] == r["reference"] and c["pinpoint"] and c["quote"]
                                      for c in r["citations"]), name
    assert rows["patent_claim1"]["kind"] == "claimed" and rows["upstream_zram"]["kind"] == "baseline"
    assert {rows[n]["kind"] for n in ("zram_dedup", "zram_merge", "zsmalloc_fold", "ksm")} == {"design"}
    for name in ("zram_dedup", "zram_merge", "zsmalloc_fold", "ksm"):
        assert date.fromisoformat(rows[name]["date"]) > PRIORITY


@pytest.mark.parametrize("name", PRIOR_ART)
def test_prior_art_on_real_memory_reads_back(name):
    from engine.pages import default_pages_path
    ps = PageSet.open(default_pages_path())
    m = make(name).run(Workload(ps))
    assert m.verified_readback_
