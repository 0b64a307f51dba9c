"""KSM on the model, against the expectations of the kernel's own selftests (kselftest, LTP)
and hand-computed traces (shared/reference/kernel-mechanisms.md, sections A and E)."""
import pytest
from hypothesis import given, settings, strategies as st

from engine.events import Recorder
from engine.ksm import Ksmd, ZERO_CHECKSUM
from engine.mm import Machine
from engine.pages import PAGE_SIZE, PageSet

import xxhash


def setup(pages, **kw):
    m = Machine()
    kw.setdefault("pages_to_scan", 10 ** 6)
    kw.setdefault("smart_scan", False)
    k = Ksmd(m, **kw)
    [mm] = m.place_pages(PageSet.from_pages(pages))
    v = mm.vmas[0]
    k.madvise_mergeable(mm, v.start, v.end - v.start)
    k.set_run(1)
    return m, k, mm


def kselftest_expect(n, L):
    """assert_ksm_pages_count in tools/testing/selftests/mm/ksm_tests.c"""
    if n % L in (0, 1):
        shared = n // L
        return shared, shared * (L - 1)
    shared = n // L + 1
    return shared, n - shared


def test_checksum_is_low_32_bits_of_xxh64():
    assert xxhash.xxh64_intdigest(bytes(PAGE_SIZE)) & 0xFFFFFFFF == ZERO_CHECKSUM
    assert xxhash.xxh64_intdigest(b"*" * PAGE_SIZE) & 0xFFFFFFFF == 0x9005251D


@pytest.mark.parametrize("n", [2, 10, 255, 256, 257, 300, 513, 1000])
def test_identical_pages_formula_and_chains(n):
    L = 256
    _, k, mm = setup([b"*" * PAGE_SIZE] * n, max_page_sharing=L)
    k.full_scan()
    k.full_scan()
    c = k.counters()
    assert (c["pages_shared"], c["pages_sharing"]) == kselftest_expect(n, L)
    chains = 1 if n > L and c["pages_shared"] > 1 else 0
    assert c["stable_node_chains"] == chains
    assert c["stable_node_dups"] == (c["pages_shared"] if chains else 0)
    assert c["pages_unshared"] == (1 if n % L == 1 else 0)
    assert k.ksm_stat(mm)["ksm_merging_pages"] == c["pages_shared"] + c["pages_sharing"]


def test_pages_merge_only_on_their_second_visit():
    _, k, _ = setup([b"*" * PAGE_SIZE] * 10)
    k.full_scan()
    c = k.counters()
    assert c["pages_volatile"] == 10 and c["pages_shared"] == c["pages_sharing"] == c["pages_unshared"] == 0
    k.full_scan()
    c = k.counters()
    # reference trace A.15: shared 1, sharing 9, profit 9*4096 - 10*64
    assert (c["pages_shared"], c["pages_sharing"], c["pages_volatile"]) == (1, 9, 0)
    assert c["general_profit"] == 36224


def test_merged_frames_are_shared_and_write_protected():
    m, k, mm = setup([b"*" * PAGE_SIZE] * 5)
    k.full_scan()
    k.full_scan()
    frames = {mm.ptes[a].frame.pfn for a in mm.ptes}
    assert len(frames) == 1
    f = next(iter(mm.ptes.values())).frame
    assert f.ksm and f.mapcount == 5 and not any(p.writable for p in mm.ptes.values())


def test_cow_copies_and_counters_stay_stale_until_revisited():
    m, k, mm = setup([b"*" * PAGE_SIZE] * 2)
    k.full_scan()
    k.full_scan()
    base = mm.vmas[0].start
    mm.write(base, b"-")
    mm.write(base + PAGE_SIZE, b"+")
    assert mm.read(base, 2) == b"-*" and mm.read(base + PAGE_SIZE, 2) == b"+*"
    assert m.cow_ksm == 2
    c = k.counters()
    assert (c["pages_shared"], c["pages_sharing"]) == (1, 1)           # stale until ksmd revisits
    k.full_scan()
    c = k.counters()
    assert (c["pages_shared"], c["pages_sharing"]) == (0, 0)           # kselftest -U
    assert c["pages_volatile"] == 2                                     # changed checksum: volatile
    k.full_scan()
    assert k.counters()["pages_unshared"] == 2


def test_zero_pages_with_and_without_use_zero_pages():
    _, k, _ = setup([bytes(PAGE_SIZE)] * 10)
    k.full_scan()
    k.full_scan()
    assert (k.pages_shared, k.pages_sharing) == (1, 9)                  # kselftest -Z -z 0
    m, k, mm = setup([bytes(PAGE_SIZE)] * 10, use_zero_pages=True)
    k.full_scan()
    k.full_scan()
    c = k.counters()
    assert (c["pages_shared"], c["pages_sharing"], c["ksm_zero_pages"]) == (0, 0, 10)   # -Z -z 1
    assert k.rmap_items == 10 and c["pages_volatile"] == 10
    k.full_scan()
    assert k.rmap_items == 0                                            # freed at the next visit
    assert k.ksm_stat(mm)["ksm_zero_pages"] == 10
    mm.write(mm.vmas[0].start, b"x")                                    # drops at once
    assert k.ksm_zero_pages == 9 and mm.ksm_zero_pages == 9
    assert mm.read(mm.vmas[0].start + PAGE_SIZE, 8) == bytes(8)


def test_unmergeable_unshares_and_items_go_on_next_pass():
    m, k, mm = setup([b"\xcf" * PAGE_SIZE] * 64, use_zero_pages=True)
    k.full_scan()
    k.full_scan()
    v = mm.vmas[0]
    k.madvise_unmergeable(mm, v.start, v.end - v.start)
    assert len({p.frame.pfn for p in mm.ptes.values()}) == 64          # no two pages share a frame
    assert k.rmap_items == 64
    k.full_scan()
    c = k.counters()
    assert k.rmap_items == 0 and c["pages_shared"] == c["pages_sharing"] == 0


def test_run_2_unmerges_everything_and_resets_full_scans():
    m, k, mm = setup([b"*" * PAGE_SIZE] * 300 + [bytes(PAGE_SIZE)] * 3, use_zero_pages=True)
    for _ in range(3):
        k.full_scan()
    scanned = k.pages_scanned
    k.set_run(2)
    c = k.counters()
    assert c["full_scans"] == 0 and c["pages_scanned"] == scanned
    for key in ("pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "stable_node_chains",
                "stable_node_dups", "ksm_zero_pages"):
        assert c[key] == 0, key
    assert k.rmap_items == 0
    assert len({p.frame.pfn for p in mm.ptes.values()}) == 303
    assert mm.read(mm.vmas[0].start + 5 * PAGE_SIZE, 3) == b"***"


def test_ltp_ksm01_table_scaled():
    """LTP ksm01: three processes, contents changed step by step (P pages each, no chains)."""
    P = 256
    m = Machine()
    k = Ksmd(m, pages_to_scan=10 ** 6, smart_scan=False, max_page_sharing=3 * P)
    mms = []
    for fill in b"caa":
        [mm] = m.place_pages(PageSet.from_pages([bytes([fill]) * PAGE_SIZE] * P), base=0x7F0000000000)
        v = mm.vmas[0]
        k.madvise_mergeable(mm, v.start, v.end - v.start)
        mms.append(mm)
    k.set_run(1)

    def settle():
        for _ in range(3):
            k.full_scan()
        c = k.counters()
        return c["pages_shared"], c["pages_sharing"], c["pages_volatile"], c["pages_unshared"]

    def fill(mm, byte):
        for a in sorted(mm.ptes):
            mm.write(a, bytes([byte]) * PAGE_SIZE)

    assert settle() == (2, 3 * P - 2, 0, 0)
    fill(mms[1], ord("b"))
    assert settle() == (3, 3 * P - 3, 0, 0)
    for mm in mms:
        fill(mm, ord("d"))
    assert settle() == (1, 3 * P - 1, 0, 0)
    last = max(mms[1].ptes)
    mms[1].write(last + PAGE_SIZE - 1, b"e")
    assert settle() == (1, 3 * P - 2, 0, 1)
    k.set_run(2)
    c = k.counters()
    assert (c["pages_shared"], c["pages_sharing"], c["pages_volatile"], c["pages_unshared"]) == (0, 0, 0, 0)


def test_smart_scan_skip_schedule():
    """ksm07: a lone page is examined at ages 0-3, skipped at 4, examined 5, skipped 6-7,
    examined 8, skipped 9-12, examined 13, then skipped 8 of every 9 visits."""
    _, k, _ = setup([b"a" * PAGE_SIZE], smart_scan=True)
    skipped_at = []
    for scan in range(31):
        before = k.pages_skipped
        k.full_scan()
        if k.pages_skipped > before:
            skipped_at.append(scan)
    assert skipped_at == [4, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30]
    assert k.pages_skipped * 2 >= k.seqnr                                # ksm07's 50% criterion


def test_several_processes_share_content():
    m = Machine()
    k = Ksmd(m, pages_to_scan=10 ** 6, smart_scan=False)
    mms = []
    for i in range(3):
        [mm] = m.place_pages(PageSet.from_pages([b"shared!!" * 512, bytes([i + 1]) * 4095 + b"x"]))
        k.madvise_mergeable(mm, mm.vmas[0].start, 2 * PAGE_SIZE)
        mms.append(mm)
    k.set_run(1)
    k.full_scan()
    k.full_scan()
    assert (k.pages_shared, k.pages_sharing, k.pages_unshared) == (1, 2, 3)
    assert [k.ksm_stat(mm)["ksm_merging_pages"] for mm in mms] == [1, 1, 1]


def test_prctl_merge_any_covers_new_vmas():
    m = Machine()
    k = Ksmd(m, pages_to_scan=10 ** 6, smart_scan=False)
    mm = m.new_mm("p")
    k.prctl_set_memory_merge(mm, True)
    mm.mmap(0x10000000, 4 * PAGE_SIZE)
    for i in range(4):
        mm.populate(0x10000000 + i * PAGE_SIZE, b"q" * PAGE_SIZE)
    k.set_run(1)
    k.full_scan()
    k.full_scan()
    assert (k.pages_shared, k.pages_sharing) == (1, 3)
    k.prctl_set_memory_merge(mm, False)
    assert len({p.frame.pfn for p in mm.ptes.values()}) == 4


def test_merge_events_name_the_repointed_ptes():
    m, k, mm = setup([b"*" * PAGE_SIZE] * 3)
    rec = Recorder()
    m.bus.subscribe(rec)
    k.full_scan()
    k.full_scan()
    merges = rec.of("ksm.merge")
    assert [e.how for e in merges] == ["unstable_match", "stable_hit"]
    assert {va for e in merges for (_pid, va, _pfn) in e.repointed} == set(mm.ptes)
    assert all(e.compared_bytes == PAGE_SIZE for e in merges)
    assert rec.counts["ksm.checksum"] == 6 and rec.counts["ksm.rmap_item_created"] == 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["write", "scan", "unmerge", "merge"]), st.integers(0, 11),
                          st.integers(0, 3)), max_size=40),
       st.booleans(), st.integers(2, 4))
def test_reads_always_return_the_last_write(ops, zero, mps):
    pages = [bytes([i % 3]) * PAGE_SIZE for i in range(12)]
    m, k, mm = setup(pages, use_zero_pages=zero, max_page_sharing=mps)
    base = mm.vmas[0].start
    expect = {i: bytearray(p) for i, p in enumerate(pages)}
    for op, i, v in ops:
        if op == "write":
            mm.write(base + i * PAGE_SIZE + v, bytes([v]))
            expect[i][v] = v
        elif op == "scan":
            k.full_scan()
        elif op == "unmerge":
            k.madvise_unmergeable(mm, base, 12 * PAGE_SIZE)
        else:
            k.madvise_mergeable(mm, base, 12 * PAGE_SIZE)
        assert k.pages_shared >= 0 and k.pages_sharing >= 0 and k.pages_unshared >= 0
    for i in range(12):
        assert mm.read(base + i * PAGE_SIZE) == bytes(expect[i])
    k.set_run(2)
    for i in range(12):
        assert mm.read(base + i * PAGE_SIZE) == bytes(expect[i])
    assert k.pages_shared == k.pages_sharing == k.pages_unshared == k.rmap_items == 0


def test_read_faults_map_the_shared_zero_page_which_ksm_skips():
    m = Machine()
    k = Ksmd(m, pages_to_scan=10 ** 6, smart_scan=False)
    mm = m.new_mm("p")
    mm.mmap(0x10000000, 8 * PAGE_SIZE)
    for i in range(4):
        assert mm.read(0x10000000 + i * PAGE_SIZE, 16) == bytes(16)     # read faults: zero page
    assert all(p.frame is m.zero_frame and not p.writable for p in mm.ptes.values())
    k.madvise_mergeable(mm, 0x10000000, 8 * PAGE_SIZE)
    k.set_run(1)
    k.full_scan()
    k.full_scan()
    assert k.rmap_items == 0 and k.pages_scanned == 0                   # not "normal" anonymous pages
    mm.write(0x10000000, b"x")                                          # a write breaks the zero page
    assert mm.ptes[0x10000000].frame is not m.zero_frame and mm.read(0x10000000 + PAGE_SIZE, 4) == bytes(4)


def test_pinned_pages_are_not_merged():
    """write_protect_page refuses a page whose refcount exceeds its mappings (e.g. O_DIRECT)."""
    m, k, mm = setup([b"*" * PAGE_SIZE] * 3)
    base = mm.vmas[0].start
    f = mm.pin(base)
    assert f.refcount == 2 and f.mapcount == 1
    k.full_scan()
    k.full_scan()
    assert mm.ptes[base].frame == f and not f.ksm                        # left alone while pinned
    # the pinned page is first in the unstable tree, so every pairing with it fails and the
    # page merged provisionally is broken again (break_cow): nothing merges this scan
    assert (k.pages_shared, k.pages_sharing) == (0, 0)
    assert len({p.frame.pfn for p in mm.ptes.values()}) == 3
    mm.unpin(base)
    k.full_scan()
    assert (k.pages_shared, k.pages_sharing) == (1, 2)


def test_functional_unmerge_zero_pages():
    """ksm_functional_tests test_unmerge_zero_pages: 2 MiB of zeros with use_zero_pages."""
    m, k, mm = setup([bytes(PAGE_SIZE)] * 512, use_zero_pages=True)
    k.full_scan()
    k.full_scan()
    base = mm.vmas[0].start
    assert k.ksm_stat(mm)["ksm_zero_pages"] == 512
    k.madvise_unmergeable(mm, base, 256 * PAGE_SIZE)
    assert k.ksm_stat(mm)["ksm_zero_pages"] == 256
    for i in range(256, 512):
        mm.write(base + i * PAGE_SIZE, b"\0" * 8)                     # one word per page
    assert k.ksm_stat(mm)["ksm_zero_pages"] == 0
    assert len({p.frame.pfn for p in mm.ptes.values()}) == 512       # no shared PFNs


def test_functional_unmerge_discarded():
    """test_unmerge_discarded: merge, MADV_DONTNEED the first half, MADV_UNMERGEABLE all."""
    m, k, mm = setup([b"\xcf" * PAGE_SIZE] * 512)
    k.full_scan()
    k.full_scan()
    base = mm.vmas[0].start
    for i in range(256):
        mm.zap(base + i * PAGE_SIZE)
    k.madvise_unmergeable(mm, base, 512 * PAGE_SIZE)
    pfns = [p.frame.pfn for p in mm.ptes.values()]
    assert len(pfns) == 256 and len(set(pfns)) == 256
    assert mm.read(base, 4) == bytes(4) and mm.read(base + 300 * PAGE_SIZE, 2) == b"\xcf\xcf"
