"""The compiled zram write path's pipeline (engine.zram ZramDevice._write_pages_fast): batches
prepared ahead by the worker threads, tasks no worker started prepared by the storing thread
itself, batch arrays kept for the next write. None of it may change a result: every setting is
held equal to the Python path (the reference), on real pages, with refusals by mem_limit."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import engine.zram as Z
from engine.compress import KernelLZ4, KernelLZO, KernelLZORLE
from engine.pages import PAGE_SIZE
from engine.zram import ZramDevice
from tests import pagesets
from tests.test_zram_model import _real_pages, _workload, pool_state

COMPRESSORS = [KernelLZORLE, KernelLZO, KernelLZ4]


def _pipeline(monkeypatch, batch, depth, task):
    monkeypatch.setattr(Z, "_FAST_BATCH", batch)
    monkeypatch.setattr(Z, "_FAST_DEPTH", depth)
    monkeypatch.setattr(Z, "_FAST_TASK", task)


def _assert_same(fast, ref):
    assert fast.stats() == ref.stats()
    assert fast.work_compressions == ref.work_compressions and fast.work_decompressions == ref.work_decompressions
    assert fast.flags == ref.flags and fast.handle == ref.handle and fast.size == ref.size
    assert pool_state(fast.pool) == pool_state(ref.pool)
    fast.pool.check()


@pytest.mark.parametrize("comp", COMPRESSORS, ids=lambda c: c.name)
@pytest.mark.parametrize("batch,depth,task", [(64, 1, 16), (64, 3, 16), (100, 4, 32), (1024, 4, 256)])
def test_every_pipeline_setting_equals_the_python_path(monkeypatch, comp, batch, depth, task):
    """Batches of 64..1024 pages, 1..4 in flight, tasks of 16..256 pages; 8-page I/Os and a
    mem_limit that refuses pages in the middle of batches: refused and skipped positions, every
    counter, the slot table, the pool and every page read back are the Python path's."""
    _pipeline(monkeypatch, batch, depth, task)
    real = _real_pages()
    rnd = pagesets.random_pages(150, seed=40)
    disk = (len(real) + len(real) // 2 + 8) * PAGE_SIZE
    fast, ref = ZramDevice(disk, comp.name, mem_limit=1 << 20), ZramDevice(disk, comp.name, mem_limit=1 << 20)
    ref.compiled = False
    a = _workload(fast, real, rnd, 8, 4096)
    assert fast.slot_arrays is not None                 # the compiled path ran
    b = _workload(ref, real, rnd, 8, 4096)
    assert a == b
    assert fast.io_stat()["failed_writes"] > 0 and any(a[i] for i in (2, 4, 6))    # pages were skipped
    _assert_same(fast, ref)


class _Blocked:
    """An executor whose one worker is held for the whole write: no task it is given starts,
    so the storing thread must prepare every one itself (cancelling it first)."""

    def __init__(self):
        self.release = threading.Event()
        self.ex = ThreadPoolExecutor(max_workers=1)
        self.ex.submit(self.release.wait, 60)       # a write that waited for it fails, not hangs
        self.submitted = 0

    def submit(self, fn, *args):
        self.submitted += 1
        return self.ex.submit(fn, *args)


@pytest.mark.parametrize("comp", COMPRESSORS, ids=lambda c: c.name)
def test_tasks_no_worker_started_are_prepared_by_the_storing_thread(monkeypatch, comp):
    import engine._zram_fast as F
    _pipeline(monkeypatch, 128, 3, 32)
    blocked = _Blocked()
    monkeypatch.setattr(Z, "_fast_executor", lambda: blocked)
    threads = set()
    for name in ("prepare_lz4", "prepare_lzo"):
        real_fn = getattr(F, name)

        def spy(*args, _fn=real_fn):
            threads.add(threading.get_ident())
            return _fn(*args)
        monkeypatch.setattr(F, name, spy)
    real = _real_pages()
    fast, ref = ZramDevice(len(real) * PAGE_SIZE, comp.name), ZramDevice(len(real) * PAGE_SIZE, comp.name)
    ref.compiled = False
    try:
        fast.write_pages(real, io_pages=256)
    finally:
        blocked.release.set()
        blocked.ex.shutdown(wait=True)
    ref.write_pages(real, io_pages=256)
    assert blocked.submitted >= len(real) // 32                     # every task was handed out ...
    assert threads == {threading.get_ident()}                       # ... and ran here
    _assert_same(fast, ref)
    assert [fast.read_page(i) for i in range(len(real))] == list(real)


def test_batch_arrays_are_kept_for_the_next_write_of_any_device(monkeypatch):
    """Full-sized batches' arrays go back to the process's free sets after a write and the
    next write (another device, another backend of the same width) takes them; results stay
    the Python path's. Smaller batches' arrays are not kept."""
    _pipeline(monkeypatch, 128, 2, 32)
    monkeypatch.setattr(Z, "_BATCH_ARRAYS", {})
    seen = []

    class Watched(ZramDevice):
        def compiled_store_batch(self, chunk, b, *args):
            seen.append(id(b.out))
            return super().compiled_store_batch(chunk, b, *args)

    real = _real_pages()
    n = len(real)
    devs = [Watched(n * PAGE_SIZE, "lzo-rle"), Watched(n * PAGE_SIZE, "lzo"), Watched(n * PAGE_SIZE, "lz4")]
    refs = [ZramDevice(n * PAGE_SIZE, d.algorithm) for d in devs]
    for r in refs:
        r.compiled = False
    devs[0].write_pages(real)
    first = set(seen)
    assert len(first) == 2
    kept = Z._BATCH_ARRAYS[(128, fast_width(devs[0]), False)]
    assert {id(a[2]) for a in kept} == first
    seen.clear()
    devs[1].write_pages(real)                        # lzo: the same width as lzo-rle
    assert set(seen) == first
    seen.clear()
    devs[2].write_pages(real)                        # lz4: narrower rows, arrays of its own
    assert not set(seen) & first
    devs[0].write_pages(real.array[::-1].copy(), indexes=range(n))            # overwrites
    devs[0].write_pages(real.array[:100], indexes=range(100))                  # one small batch
    assert all(k[0] == 128 for k in Z._BATCH_ARRAYS) and all(len(v) <= 2 for v in Z._BATCH_ARRAYS.values())
    for r, d in zip(refs, devs):
        r.write_pages(real)
    refs[0].write_pages(real.array[::-1].copy(), indexes=range(n))
    refs[0].write_pages(real.array[:100], indexes=range(100))
    for d, r in zip(devs, refs):
        _assert_same(d, r)
        assert [d.read_page(i) for i in range(n)] == [r.read_page(i) for i in range(n)]


@pytest.mark.parametrize("gathering", [False, True])
def test_a_slot_beyond_disksize_in_a_later_batch_stops_the_write_cleanly(monkeypatch, gathering):
    """Batches already prepared ahead when a slot beyond disksize stops the write: the pages
    before it are stored, no worker is left writing the arrays, and the next writes (which
    reuse them) equal the Python path's."""
    _pipeline(monkeypatch, 64, 4, 16)
    monkeypatch.setattr(Z, "_BATCH_ARRAYS", {})
    real = _real_pages()
    n = len(real)
    slots = list(range(n))
    slots[300] = n + 5
    fast, ref = ZramDevice(n * PAGE_SIZE, "lzo-rle"), ZramDevice(n * PAGE_SIZE, "lzo-rle")
    ref.compiled = False
    pages = list(real) if gathering else real.array
    for dev in (fast, ref):
        with pytest.raises(IndexError):
            dev.write_pages(pages, indexes=slots)
    assert fast.mm_stat()["orig_data_size"] == 300 * PAGE_SIZE
    assert len(Z._BATCH_ARRAYS[(64, fast_width(fast), gathering)]) == 4      # all given back
    for dev in (fast, ref):
        dev.write_pages(pages, indexes=range(n), io_pages=8)
    _assert_same(fast, ref)
    assert [fast.read_page(i) for i in range(n)] == [ref.read_page(i) for i in range(n)] == list(real)


def fast_width(dev):
    from engine.compress import _lz4_kernel, _lzo_kernel
    return _lz4_kernel.bound(PAGE_SIZE) if isinstance(dev.comp, KernelLZ4) else _lzo_kernel.bound(PAGE_SIZE)


def test_every_page_is_compressed_once_and_work_counted_as_the_kernel_does(monkeypatch):
    """Compression ahead is work the model does (the compressor's count: every page that is
    not same-filled, the rest of a refused I/O included); ``work_compressions`` counts what
    the kernel compresses (not the skipped rest), as the Python path does."""
    _pipeline(monkeypatch, 64, 4, 16)
    rnd = pagesets.random_pages(600, seed=41)
    same = int(sum(1 for p in rnd if bytes(p[:8]) * 512 == bytes(p)))
    fast, ref = ZramDevice(600 * PAGE_SIZE, mem_limit=300 * PAGE_SIZE), ZramDevice(600 * PAGE_SIZE,
                                                                                  mem_limit=300 * PAGE_SIZE)
    ref.compiled = False
    assert fast.write_pages(rnd, io_pages=32) == ref.write_pages(rnd, io_pages=32) > 0
    assert fast.last_skipped == ref.last_skipped and len(fast.last_skipped) > 0
    assert fast.comp.compressions == ref.comp.compressions == 600 - same
    assert fast.work_compressions == ref.work_compressions == 600 - same - len(fast.last_skipped)
    _assert_same(fast, ref)
