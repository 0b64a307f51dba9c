"""The zram model on hand-computed cases (no kernel needed)."""
import pytest

from engine.events import Recorder
from engine.pages import PAGE_SIZE
from engine.zram import ZramDevice, io_spans, is_same_filled
from engine.compress import KernelLZ4, KernelLZO, KernelLZORLE
from engine.errors import InputError
from engine.scenario import ZramScenario
from tests import pagesets

COMPRESSORS = [KernelLZORLE, KernelLZO, KernelLZ4]


def test_same_filled_rule_is_on_8_byte_words():
    assert is_same_filled(bytes(PAGE_SIZE)) == (True, 0)
    assert is_same_filled(b"\x01\x02\x03\x04\x05\x06\x07\x08" * 512) == (True, 0x0807060504030201)
    assert is_same_filled(b"abcd" * 1024)[0]                     # period 4 is also period 8
    assert not is_same_filled(b"0123456789abcdef" * 256)[0]      # period 16 is not
    p = bytearray(PAGE_SIZE)
    p[-1] = 1
    assert not is_same_filled(bytes(p))[0]


def test_default_compressor_is_the_kernels_default():
    dev = ZramDevice(PAGE_SIZE)
    assert dev.algorithm == "kernel-lzo-rle" and dev.comp_algorithm == "lzo-rle"
    assert dev.stats().to_dict()["comp_algorithm"] == "lzo-rle"
    assert ZramScenario(pagesets.text_pages(1)).comp_algorithm == "lzo-rle"


@pytest.mark.parametrize("comp", COMPRESSORS, ids=lambda c: c.name)
def test_store_counts_and_read_back(comp):
    ps = pagesets.mixed_pages()
    dev = ZramDevice(len(ps) * PAGE_SIZE, comp.name)
    dev.write_pages(ps)
    c = comp()
    same = [is_same_filled(p)[0] for p in ps]
    lens = [len(c.compress(p)[0]) for p in ps]
    huge = [not s and n >= 3625 for s, n in zip(same, lens)]
    mm = dev.mm_stat()
    assert mm["orig_data_size"] == len(ps) * PAGE_SIZE
    assert mm["same_pages"] == sum(same)
    assert mm["huge_pages"] == mm["huge_pages_since"] == sum(huge)
    assert mm["compr_data_size"] == sum(PAGE_SIZE if h else (0 if s else n) for s, h, n in zip(same, huge, lens))
    # write-only sequences fill zspages in order: pages = sum ceil(objs / per zspage) * ppz
    by_class = {}
    for s, h, n in zip(same, huge, lens):
        if not s:
            cls = dev.pool.class_for(PAGE_SIZE if h else n)
            by_class[cls] = by_class.get(cls, 0) + 1
    expected_pages = sum(-(-k // c.objs_per_zspage) * c.pages_per_zspage for c, k in by_class.items())
    assert mm["mem_used_total"] == expected_pages * PAGE_SIZE == mm["mem_used_max"]
    for i in range(len(ps)):
        assert dev.read_page(i) == ps[i]
    assert dev.stats().comp_algorithm == comp.kernel_name


def test_huge_threshold_is_derived_not_typed():
    dev = ZramDevice(PAGE_SIZE)
    assert dev.huge_class_size == dev.pool.huge_class_size == 3625


def test_overwrite_allocates_before_freeing():
    page_a = pagesets.random_pages(1, seed=10)[0]              # incompressible: huge, 1 page
    page_b = pagesets.random_pages(1, seed=11)[0]
    dev = ZramDevice(PAGE_SIZE)
    dev.write_page(0, page_a)
    dev.write_page(0, page_b)
    mm = dev.mm_stat()
    assert mm["mem_used_total"] == PAGE_SIZE and mm["mem_used_max"] == 2 * PAGE_SIZE
    assert mm["huge_pages"] == 1 and mm["huge_pages_since"] == 2
    assert dev.read_page(0) == page_b


def test_mem_limit_refuses_and_keeps_old_content():
    ps = pagesets.random_pages(4, seed=12)
    dev = ZramDevice(8 * PAGE_SIZE, mem_limit=2 * PAGE_SIZE)
    results = [dev.write_page(i, ps[i]) for i in range(4)]
    assert results == [True, True, False, False]
    assert dev.io_stat()["failed_writes"] == 2
    assert dev.mm_stat()["mem_used_max"] == 3 * PAGE_SIZE    # sampled after the refused alloc
    assert dev.write_page(5, bytes(PAGE_SIZE))               # same-filled: no limit check
    assert not dev.write_page(0, ps[3])
    assert dev.read_page(0) == ps[0]


def test_io_spans_cut_runs_of_consecutive_slots():
    assert io_spans(range(10), 4) == [(0, 0, 4), (4, 4, 4), (8, 8, 2)]
    assert io_spans([5, 6, 7, 9, 10, 3, 4], 2) == [(0, 5, 2), (2, 7, 1), (3, 9, 2), (5, 3, 2)]
    assert io_spans([1, 1, 2], 8) == [(0, 1, 1), (1, 1, 2)]          # a repeated slot starts anew
    with pytest.raises(ValueError):
        io_spans([0], 257)
    with pytest.raises(InputError, match="--io-pages"):
        ZramScenario(pagesets.text_pages(1), io_pages=0)


def test_multi_page_write_ends_at_the_refused_page():
    # incompressible pages are huge (one pool page each); limit 2 pool pages; I/Os of 4 pages.
    # I/O 0 = pages 0..3: 0 and 1 stored, 2 refused (failed_writes 1), 3 skipped uncounted;
    # I/O 1 = pages 4..7: 4 (same-filled) stored, 5 refused, 6 and 7 skipped; I/O 2 = 8..9:
    # 8 refused, 9 (same-filled) skipped.
    rnd = pagesets.random_pages(10, seed=20)
    same = {4, 9}
    pages = [(i + 1).to_bytes(8, "little") * 512 if i in same else rnd[i] for i in range(10)]
    dev = ZramDevice(10 * PAGE_SIZE, mem_limit=2 * PAGE_SIZE)
    assert dev.write_pages(pages, io_pages=4) == 3
    assert dev.last_failed == [2, 5, 8] and dev.last_skipped == [3, 6, 7, 9]
    mm, io = dev.mm_stat(), dev.io_stat()
    assert io["failed_writes"] == 3
    assert mm["orig_data_size"] == 3 * PAGE_SIZE and mm["same_pages"] == 1 and mm["huge_pages"] == 2
    assert [dev.slot_allocated(i) for i in range(10)] == [i in (0, 1, 4) for i in range(10)]
    # page by page, every page is tried: 3 stored + both same-filled, 6 refused
    dev1 = ZramDevice(10 * PAGE_SIZE, mem_limit=2 * PAGE_SIZE)
    assert dev1.write_pages(pages) == 6
    assert dev1.mm_stat()["orig_data_size"] == 4 * PAGE_SIZE and dev1.last_skipped == []


def test_discard_in_requests_counts_every_page():
    ps = pagesets.text_pages(10, distinct=3)
    a, b = ZramDevice(20 * PAGE_SIZE), ZramDevice(20 * PAGE_SIZE)
    a.write_pages(ps)
    b.write_pages(ps)
    a.discard([0, 1, 2, 3, 15, 16], io_pages=2)
    b.discard([0, 1, 2, 3, 15, 16])
    assert a.stats() == b.stats() and a.io_stat()["notify_free"] == 6


def test_discard_counts_notify_free_per_page():
    ps = pagesets.text_pages(10, distinct=3)
    dev = ZramDevice(20 * PAGE_SIZE)
    dev.write_pages(ps)
    dev.discard([0, 1, 15])                                  # 15 was never written
    io = dev.io_stat()
    assert io["notify_free"] == 3
    assert dev.mm_stat()["orig_data_size"] == 8 * PAGE_SIZE
    assert dev.read_page(0) == bytes(PAGE_SIZE)


def test_events_are_typed_and_cheap_when_nobody_listens(monkeypatch):
    import engine.zram
    import engine.zsmalloc
    ps = pagesets.mixed_pages()
    dev = ZramDevice(len(ps) * PAGE_SIZE, "kernel-lz4")
    rec = Recorder()
    unsubscribe = dev.bus.subscribe(rec)
    dev.write_pages(ps)
    mm = dev.mm_stat()
    assert rec.counts["zram.slot_written"] == len(ps)
    assert rec.counts["zram.same_filled"] == mm["same_pages"]
    assert rec.counts["zram.compressed"] == len(ps) - mm["same_pages"]
    assert rec.counts["zsmalloc.obj_alloc"] == len(ps) - mm["same_pages"]
    assert all(e.algorithm == "kernel-lz4" for e in rec.of("zram.compressed"))
    unsubscribe()

    class Exploding:
        def __getattr__(self, name):
            raise AssertionError(f"event {name} built while nobody listens")
    monkeypatch.setattr(engine.zram, "ev", Exploding())
    monkeypatch.setattr(engine.zsmalloc, "ev", Exploding())
    dev2 = ZramDevice(len(ps) * PAGE_SIZE)
    dev2.write_pages(ps)
    dev2.discard(range(0, len(ps), 2))
    dev2.compact()
