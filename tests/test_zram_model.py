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


# -- the compiled write path (engine._zram_fast) against the Python path ---------------------------

def pool_state(pool) -> dict:
    """Everything zsmalloc holds, in object form: per class its counts and fullness lists (in
    list order, each zspage's id, use, free list, handles, page frames and bytes), every
    handle's location, the free stacks and the next ids."""
    classes = []
    for c in pool.classes:
        groups = [[(z.id, z.inuse, z.group, list(z.free), list(z.handles), list(z.pfns), bytes(z.mem))
                   for z in c.fullness[g]] for g in range(len(c.fullness))]
        classes.append((c.index, c.objs_allocated, c.objs_inuse, groups))
    return {"classes": classes, "handles": {h: (z.id, i) for h, (z, i) in pool._handles.items()},
            "free_handles": list(pool._free_handles), "free_pfns": list(pool._free_pfns),
            "next": (pool._next_handle, pool._next_pfn, pool._next_zspage_id),
            "pages": (pool.pages_allocated, pool.pages_compacted)}


def _real_pages():
    from engine.pages import PageSet, default_pages_path
    return PageSet.open(default_pages_path())


def _workload(dev, real, rnd, io_pages, chunk_pages):
    """Writes (fresh slots, overwrites, past a refused page), discards, single frees, reads."""
    n = len(real)
    out = [dev.write_pages(real, io_pages=io_pages, chunk_pages=chunk_pages), list(dev.last_failed),
           list(dev.last_skipped)]
    dev.write_pages(rnd, indexes=list(range(n // 3, n // 3 + len(rnd))), io_pages=io_pages, chunk_pages=chunk_pages)
    out += [list(dev.last_failed), list(dev.last_skipped)]
    dev.discard(list(range(0, n, 3)))
    dev.slot_free_notify(1)
    dev.write_pages(real.array[: n // 2], indexes=list(range(n - n // 4, n - n // 4 + n // 2)), io_pages=io_pages,
                    chunk_pages=chunk_pages)
    out += [list(dev.last_failed), list(dev.last_skipped)]
    out.append([dev.read_page(i) for i in range(dev.num_pages)])
    return out


@pytest.mark.parametrize("comp", COMPRESSORS, ids=lambda c: c.name)
@pytest.mark.parametrize("io_pages", [1, 8, 256])
@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_compiled_write_path_equals_python_path(comp, io_pages, limit):
    real = _real_pages()
    rnd = pagesets.random_pages(120, seed=30)
    disk = (len(real) + len(real) // 2 + 8) * PAGE_SIZE
    fast, ref = ZramDevice(disk, comp.name, mem_limit=limit), ZramDevice(disk, comp.name, mem_limit=limit)
    ref.compiled = False
    a = _workload(fast, real, rnd, io_pages, 300)
    assert fast.slot_arrays is not None and fast.pool.arrays is not None      # the compiled path ran
    b = _workload(ref, real, rnd, io_pages, 300)
    assert ref.slot_arrays is None and ref.pool.arrays is None
    assert a == b                                  # refused, skipped and read back: the same
    assert fast.stats() == ref.stats()
    assert fast.work_compressions == ref.work_compressions and fast.work_decompressions == ref.work_decompressions
    if limit:
        assert fast.io_stat()["failed_writes"] > 0
    assert fast.flags == ref.flags and fast.handle == ref.handle and fast.size == ref.size
    assert pool_state(fast.pool) == pool_state(ref.pool)
    fast.pool.check()


@pytest.mark.parametrize("comp", COMPRESSORS, ids=lambda c: c.name)
def test_compiled_path_grows_its_arrays_and_resumes(comp, monkeypatch):
    """Arrays reserved far too small: every growth (handles, zspages, page frames) happens in
    the middle of a batch and the batch resumes at the page that needed it."""
    import engine._zram_fast as F
    monkeypatch.setattr(F, "_reserve_frames", lambda pages: 1)
    real = _real_pages()
    fast, ref = ZramDevice(len(real) * PAGE_SIZE, comp.name), ZramDevice(len(real) * PAGE_SIZE, comp.name)
    ref.compiled = False
    fast.pool.enter_arrays(0)                     # 1024 handles, 256 zspages, 256 frames
    assert fast.pool.arrays.A.shape[0] == 256
    fast.write_pages(real, chunk_pages=len(real))
    ref.write_pages(real)
    assert fast.pool.arrays.A.shape[0] > 256 and fast.pool.arrays.H.shape[0] >= len(real)
    assert fast.stats() == ref.stats()
    assert [fast.read_page(i) for i in range(len(real))] == list(real)
    assert pool_state(fast.pool) == pool_state(ref.pool)


def test_compiled_path_hands_over_to_listeners_and_back():
    """Events are emitted exactly while someone listens: the write path switches to Python
    for those writes and back to compiled code after; compaction in between converts the pool
    to objects and back. The end state equals an all-Python run's."""
    real = _real_pages()
    rnd = pagesets.random_pages(200, seed=31)
    n = len(real)
    devs = [ZramDevice((n + 200) * PAGE_SIZE, "kernel-lz4") for _ in range(2)]
    devs[1].compiled = False
    recs = []
    for dev in devs:
        dev.write_pages(real.array[: n // 2])
        rec = Recorder()
        unsubscribe = dev.bus.subscribe(rec)
        dev.write_pages(real.array[n // 2:], indexes=range(n // 2, n))
        dev.discard(range(0, n // 2, 2))
        unsubscribe()
        recs.append(dict(rec.counts))
        dev.compact()
        dev.write_pages(rnd, indexes=range(n, n + 200), io_pages=8)
        dev.discard(range(n // 2, n, 5))
    fast, ref = devs
    assert recs[0] == recs[1] and recs[0]["zram.slot_written"] == n - n // 2
    assert fast.mm_stat()["pages_compacted"] > 0
    assert fast.slot_arrays is not None and fast.pool.arrays is not None      # back in compiled form
    assert fast.stats() == ref.stats()
    assert [fast.read_page(i) for i in range(n + 200)] == [ref.read_page(i) for i in range(n + 200)]
    assert pool_state(fast.pool) == pool_state(ref.pool)


def test_compiled_path_stands_aside_for_subclasses_that_override_the_write_path():
    class Hooked(ZramDevice):
        def store_page(self, index, page, block, cached, prepared=None):
            self.seen = getattr(self, "seen", 0) + 1
            return super().store_page(index, page, block, cached, prepared)

    class Plain(ZramDevice):
        pass

    ps = pagesets.mixed_pages()
    h, p = Hooked(len(ps) * PAGE_SIZE), Plain(len(ps) * PAGE_SIZE)
    h.write_pages(ps)
    p.write_pages(ps)
    assert h.seen == len(ps) - h.mm_stat()["same_pages"] and h.slot_arrays is None
    assert p.slot_arrays is not None and p.stats() == h.stats()


def test_compiled_path_refuses_a_slot_beyond_disksize_after_storing_the_pages_before_it():
    ps = pagesets.text_pages(10, distinct=10)
    fast, ref = ZramDevice(8 * PAGE_SIZE), ZramDevice(8 * PAGE_SIZE)
    ref.compiled = False
    for dev in (fast, ref):
        with pytest.raises(IndexError):
            dev.write_pages(ps, indexes=[0, 1, 2, 3, 4, 9, 5, 6, 7, 8])
    assert fast.stats() == ref.stats() and fast.mm_stat()["orig_data_size"] == 5 * PAGE_SIZE
    assert [fast.read_page(i) for i in range(8)] == [ref.read_page(i) for i in range(8)]


def test_compiled_path_works_in_a_forked_child():
    """The compression threads belong to one process: a child made by fork() after the parent
    used them makes its own instead of waiting forever on threads it does not have."""
    import os
    ps = pagesets.mixed_pages()
    parent = ZramDevice(len(ps) * PAGE_SIZE)
    parent.write_pages(ps)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: store, report, exit at once
        try:
            dev = ZramDevice(len(ps) * PAGE_SIZE)
            dev.write_pages(ps)
            ok = dev.slot_arrays is not None and dev.stats() == parent.stats()
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    try:
        import select
        ready, _, _ = select.select([r], [], [], 60)
        got = os.read(r, 1) if ready else b"timeout"
    finally:
        os.close(r)
        if not ready:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert got == b"1"


@pytest.mark.parametrize("io_pages", [1, 8])
def test_compiled_path_slots_written_twice_in_one_call(io_pages):
    """The same slot several times in one write (and runs that are not ascending): each write
    overwrites the one before, in order, as the Python path does; progress counts every page."""
    import random
    rnd = pagesets.random_pages(60, seed=32)
    text = pagesets.text_pages(200, distinct=50)
    pages = list(text) + list(rnd)
    r = random.Random(9)
    slots = [r.randrange(40) for _ in pages]

    class Count:
        n = 0

        def update(self, k):
            self.n += k
    devs, counts = [], []
    for compiled in (True, False):
        dev = ZramDevice(40 * PAGE_SIZE, "kernel-lzo-rle", mem_limit=24 * PAGE_SIZE)
        dev.compiled = compiled
        c = Count()
        dev.write_pages(pages, indexes=slots, io_pages=io_pages, chunk_pages=37, progress=c)
        devs.append(dev)
        counts.append(c.n)
    fast, ref = devs
    assert counts == [len(pages)] * 2
    assert fast.slot_arrays is not None and ref.slot_arrays is None
    assert fast.stats() == ref.stats() and fast.io_stat()["failed_writes"] > 0
    assert (fast.last_failed, fast.last_skipped) == (ref.last_failed, ref.last_skipped)
    assert [fast.read_page(i) for i in range(40)] == [ref.read_page(i) for i in range(40)]
    assert pool_state(fast.pool) == pool_state(ref.pool)
