"""Each mechanism's own behaviour, on hand-computed cases, and the `simulate all` contract."""
import json

import pytest

from pagemerge.cli import main
from engine.compress import DEFAULT_COMPRESSOR, get_compressor
from engine.events import Recorder
from engine.mechanisms import Workload, compare, make
from engine.mechanisms.events import LINK_HANDLE_OBJECT, LINK_PTE, LINK_SLOT_HANDLE, LINK_VA_STORED
from engine.pages import PAGE_SIZE, PageSet
from tests import pagesets


@pytest.fixture(scope="module")
def text12():
    return pagesets.text_pages(12, distinct=3)          # 3 contents x 4 copies


def lengths(ps):
    c = get_compressor(DEFAULT_COMPRESSOR)      # the mechanisms' default: the kernel's lzo-rle
    return [len(c.compress(p)[0]) for p in ps]


def test_saved_bytes_hand_computed(text12):
    L = lengths(text12)[:3]
    dup_compressed = 3 * sum(L)                         # three extra copies of each content
    for name, expect in [("upstream_zram", 0), ("zram_dedup", dup_compressed), ("zram_merge", dup_compressed),
                         ("patent_claim1", dup_compressed), ("ksm", 9 * PAGE_SIZE)]:
        m = make(name).run(Workload(text12))
        assert m.saved_bytes_ == expect, name
        assert m.pages_merged_ == (0 if name == "upstream_zram" else 9)
    fold = make("zsmalloc_fold", variant="corrected").run(Workload(text12))
    assert fold.saved_bytes_ == dup_compressed
    assert fold.mm_stat_["compr_data_size"] == 12 * 0 + sum(lengths(text12))   # fold leaves it alone


def test_metadata_hand_computed(text12):
    assert make("zram_dedup").run(Workload(text12)).metadata_bytes_ == 3 * 48 + 1024 * 16
    assert make("zram_merge").run(Workload(text12)).metadata_bytes_ == 3 * 40
    assert make("patent_claim1").run(Workload(text12)).metadata_bytes_ == 3 * 40
    ksm = make("ksm").run(Workload(text12))
    assert ksm.metadata_bytes_ == 12 * 64 + 3 * 48      # an rmap_item per page, a stable node per KSM page


def test_work_counts_show_where_each_design_spends(text12):
    kim = make("zram_dedup").run(Workload(text12))
    assert kim.work_["pages_hashed"] == 12 and kim.work_["compressions"] == 3      # hash before compress
    merge = make("zram_merge").run(Workload(text12))
    assert merge.work_["compressions"] == 12 and merge.work_["pages_hashed"] == 12  # compress all, hash later
    pat = make("patent_claim1").run(Workload(text12))
    assert pat.work_["compressions"] == 12 and pat.work_["bytes_hashed"] == sum(lengths(text12))


def test_each_mechanism_repoints_its_own_link(text12):
    expected = {"zram_dedup": LINK_SLOT_HANDLE, "zram_merge": LINK_SLOT_HANDLE,
                "zsmalloc_fold": LINK_HANDLE_OBJECT, "patent_claim1": LINK_VA_STORED}
    for name, link in expected.items():
        params = {"variant": "corrected"} if name == "zsmalloc_fold" else {}
        rec = Recorder()
        m = make(name, **params)
        from engine.events import EventBus
        bus = EventBus()
        bus.subscribe(rec)
        m.run(Workload(text12), bus=bus)
        shares = rec.of("dedup.share")
        assert shares and {e.link for e in shares} == {link}, name
        assert {e.mechanism for e in shares} == {name}
        assert rec.of("dedup.hash") and rec.of("dedup.compare")
    rec = Recorder()
    from engine.events import EventBus
    bus = EventBus()
    bus.subscribe(rec)
    make("ksm").run(Workload(text12), bus=bus)
    assert make("ksm").link == LINK_PTE and rec.counts["ksm.merge"] == 3 + 6


def test_patent_branches_on_the_predetermined_size():
    # incompressible pages go down the "larger" branch and are stored whole; duplicates still map
    ps = pagesets.random_pages(3, seed=9)
    pages = PageSet.from_pages([ps[0], ps[1], ps[0], ps[2], ps[0]])
    m = make("patent_claim1").run(Workload(pages))
    assert m.pages_merged_ == 2 and m.saved_bytes_ == 2 * PAGE_SIZE
    assert m.mm_stat_["huge_pages"] == 3
    small = make("patent_claim1", predetermined_size=5000).run(Workload(pages))   # everything "smaller"
    assert small.pages_merged_ == 2 and small.mm_stat_["huge_pages"] == 3       # still stored whole by zram


def test_posted_merge_accounting_drifts_and_corrected_does_not(text12):
    for variant, drift in (("posted", True), ("corrected", False)):
        m = make("zram_merge", variant=variant).run(Workload(text12))
        for mm, va in m.where_:
            mm.read(va)                                   # fault everything back in: all slots freed
        st = m.device.mm_stat()
        assert (st["compr_data_size"] < 0) == drift and (st["pages_merged"] < 0) == drift


def test_posted_fold_compares_tail_bytes_so_equal_payloads_rarely_fold(text12):
    posted = make("zsmalloc_fold", variant="posted").run(Workload(text12))
    corrected = make("zsmalloc_fold", variant="corrected").run(Workload(text12))
    assert corrected.pages_merged_ == 9
    assert posted.pages_merged_ < corrected.pages_merged_


def test_dataframe_api(text12):
    df = compare(Workload(text12))
    assert list(df.index) == ["upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm", "patent_claim1"]
    assert df["verified_readback"].all()
    assert (df["net_saved_bytes"] == df["saved_bytes"] - df["metadata_bytes"]).all()


def test_simulate_all_json(tmp_path, capsys, text12):
    f = tmp_path / "t.pages"
    f.write_bytes(bytes(text12.array.reshape(-1)))
    assert main(["simulate", "all", str(f), "--json", "--merge-variant", "corrected"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["mechanisms"]) == {"upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm",
                                    "patent_claim1"}
    for name, r in d["mechanisms"].items():
        for key in ("saved_bytes", "metadata_bytes", "net_saved_bytes", "pages_merged", "work", "verified_readback",
                    "variant"):
            assert key in r, (name, key)
        assert r["verified_readback"] is True
        if name != "ksm":
            assert "mm_stat" in r
    assert d["mechanisms"]["zram_merge"]["variant"] == "corrected"
    assert set(d["mechanisms"]["zram_dedup"]["work"]) == {"pages_hashed", "bytes_hashed", "compares", "bytes_compared",
                                                          "compressions", "decompressions"}


def test_simulate_all_rejects_unknown_mechanism(tmp_path, capsys, text12):
    f = tmp_path / "t.pages"
    f.write_bytes(bytes(text12.array.reshape(-1)))
    assert main(["simulate", "all", str(f), "--mechanisms", "dedupe"]) == 2
    assert "unknown" in capsys.readouterr().err


def test_patent_share_events_count_the_references_of_one_batch():
    """Four identical pages swapped out together: the first is stored, the other three are
    mapped to it, so the share events report 2, 3 and 4 references to the one slot."""
    from engine.events import EventBus
    from engine.mechanisms import Workload, make
    from engine.pages import PageSet
    page = (b"same page " * 410)[:4096]
    bus = EventBus()
    seen = []
    bus.subscribe(lambda e: seen.append(e) if e.kind == "dedup.share" else None)
    m = make("patent_claim1")
    m.run(Workload(PageSet.from_pages([page] * 4)), bus=bus)
    assert [e.refcount for e in seen] == [2, 3, 4] and len({e.target for e in seen}) == 1
    assert m.verified_readback_
