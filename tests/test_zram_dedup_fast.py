"""zram inline dedup: the compiled write path (engine._dedup_fast) against the Python path.

The Python path (``device.compiled = False``) is the reference: on the same writes both must
give the same mm_stat, io_stat, work counters, pages merged, refused and skipped pages, bytes
read back from every slot, zsmalloc state and hash index. Hand-computed cases check the
counters against what the kernel's algorithm does, independently of either path.
"""
import numpy as np
import lz4.block
import pytest
import xxhash

from engine import _dedup_fast as DF
from engine.compress import KernelLZ4, KernelLZO, KernelLZORLE
from engine.compress import _lz4_kernel as LZ4
from engine.events import Recorder
from engine.hashes import jhash, xxhash32
from engine.mechanisms.base import Work, Workload
from engine.mechanisms.zram_dedup import ZramDedup, ZramDedupDevice, ZramEntry
from engine.pages import PAGE_SIZE, PageSet, default_pages_path
from engine.zram import is_same_filled
from tests import pagesets
from tests.test_zram_model import pool_state

COMPRESSORS = [KernelLZORLE, KernelLZO, KernelLZ4]


def _real():
    return PageSet.open(default_pages_path())


def _pair(nslots, algo="kernel-lzo-rle", **kw):
    fast = ZramDedupDevice(nslots * PAGE_SIZE, algo, work=Work(), **kw)
    ref = ZramDedupDevice(nslots * PAGE_SIZE, algo, work=Work(), **kw)
    ref.compiled = False
    return fast, ref


def _index_state(dev) -> dict:
    """The hash index in object form: checksum -> [(handle, len, refcount)], newest first."""
    return {c: [(e.handle, e.len, e.refcount) for e in lst] for c, lst in dev.index.items()}


def _assert_same(fast, ref, nslots, compiled_ran=True):
    """Every observable of the two devices is equal (reads back every slot: read-back work)."""
    if compiled_ran:
        assert fast.slot_arrays is not None and fast._dd is not None      # the compiled path holds the state
    assert ref.slot_arrays is None and ref._dd is None
    assert fast.mm_stat() == ref.mm_stat()
    assert fast.io_stat() == ref.io_stat()
    assert fast.pages_merged() == ref.pages_merged()
    assert (fast.last_failed, fast.last_skipped) == (ref.last_failed, ref.last_skipped)
    assert [fast.read_page(i) for i in range(nslots)] == [ref.read_page(i) for i in range(nslots)]
    assert fast.work == ref.work
    assert (fast.work_compressions, fast.work_decompressions) == (ref.work_compressions, ref.work_decompressions)
    assert fast.flags == ref.flags
    assert fast.size == ref.size                                      # converts the compiled state back
    assert fast._dd is None and _index_state(fast) == _index_state(ref)
    assert [h.handle if isinstance(h, ZramEntry) else h for h in fast.handle] == \
        [h.handle if isinstance(h, ZramEntry) else h for h in ref.handle]
    assert pool_state(fast.pool) == pool_state(ref.pool)
    fast.pool.check()


def _checksums_match_contents(dev):
    """Every entry's checksum is the checksum of the page it holds (independent of the path)."""
    for c, lst in dev.index.items():
        for e in lst:
            data = dev.pool.read(e.handle, e.len)
            page = data if e.len == PAGE_SIZE else dev.comp.decompress(data, PAGE_SIZE)
            assert dev.hash_fn(page) & 0xFFFFFFFF == c


# -- the compiled pieces -----------------------------------------------------------------------

def test_compiled_jhash_and_xxhash_equal_the_reference_functions():
    rng = np.random.default_rng(7)
    for n in list(range(0, 64)) + [4095, 4096, 5000]:
        buf = rng.integers(0, 256, n + 8, dtype=np.uint8)
        assert DF.jhash_bytes(buf, n, 0) == jhash(buf[:n].tobytes()), n
    real = _real().array[:300]
    for rows in (real, real[:299], real[:1]):                     # jhash two at a time, and an odd one
        out = np.empty(len(rows), np.int64)
        DF.checksum_rows(rows, DF.HASH_JHASH, out)
        assert out.tolist() == [jhash(r.tobytes()) for r in rows]
    # the parallel step: checksums of the pages that are not same-filled, paired across them
    mixed = pagesets.mixed_pages().array[:301]
    k = len(mixed)
    sflags, fills, csums, comped = (np.empty(k, np.uint8), np.empty(k, np.uint64), np.zeros(k, np.int64),
                                    np.empty(k, np.uint8))
    out, lengths = np.empty((k, LZ4.bound(PAGE_SIZE)), np.uint8), np.empty(k, np.int64)
    DF.prepare(mixed, 0, k, sflags, fills, out, lengths, csums, comped, True, True, 1, DF.HASH_JHASH,
               np.zeros(DF.SEEN_SIZE, np.uint8))
    assert 0 < sflags.sum() < k
    assert [int(c) for c, f in zip(csums, sflags) if not f] == [jhash(r.tobytes()) for r, f in zip(mixed, sflags) if not f]
    out = np.empty(len(real), np.int64)
    DF.checksum_rows(real, DF.HASH_XXH, out)
    assert out.tolist() == [xxhash.xxh64_intdigest(r.tobytes()) & 0xFFFFFFFF for r in real]
    assert out.tolist() == [xxhash32(r.tobytes()) for r in real]


def test_compiled_lz4_decompressor_reads_the_lz4_package_and_the_kernel_model():
    rng = np.random.default_rng(11)
    dst = np.empty(PAGE_SIZE, np.uint8)
    table = np.empty(1 << LZ4.HASH_LOG, np.uint16)
    out = np.empty(LZ4.bound(PAGE_SIZE), np.uint8)
    pages = list(_real().array[:400]) + list(pagesets.mixed_pages().array[:200]) + list(pagesets.ladder_pages().array)
    for page in pages:
        n = LZ4.compress_block(page, out, table, 1)                   # the kernel model's blocks
        assert LZ4.decompress_block(out[:n].copy(), dst) == PAGE_SIZE and dst.tobytes() == page.tobytes()
        blk = np.frombuffer(lz4.block.compress(page.tobytes(), store_size=False), np.uint8)
        assert LZ4.decompress_block(blk, dst) == PAGE_SIZE and dst.tobytes() == page.tobytes()
    for n in list(range(0, 200)) + [1000, 4096, 65536]:
        for alphabet in (2, 256):                                     # long overlapping matches, literals
            data = rng.integers(0, alphabet, n, dtype=np.uint8).tobytes()
            blk = np.frombuffer(lz4.block.compress(data, store_size=False), np.uint8)
            d = np.empty(n, np.uint8)
            assert LZ4.decompress_block(blk, d) == n and d.tobytes() == data, (n, alphabet)
            if n > 16:                                                # no room: refused, not overrun
                assert LZ4.decompress_block(blk, np.empty(n - 1, np.uint8)) == -1
    page = _real().array[3]
    blk = np.frombuffer(lz4.block.compress(page.tobytes(), store_size=False), np.uint8)
    for cut in (1, 2, 3):
        assert LZ4.decompress_block(blk[:cut].copy(), dst) == -1      # cut inside the first sequence
    bad = np.array([0x14, ord("a"), 0, 0], np.uint8)                 # 1 literal, then offset 0
    assert LZ4.decompress_block(bad, dst) == -1
    far = np.array([0x14, ord("a"), 9, 0], np.uint8)                 # offset 9 with 1 byte written
    assert LZ4.decompress_block(far, dst) == -1


def test_lzo_decoder_with_word_copies_gives_every_byte_back():
    """The LZO decoder copies matches and literals 8 bytes at a time where the output has room:
    every length, near matches (offsets 1..7) up to the very end of an exactly sized output."""
    from engine.compress import _lzo_kernel as LZO
    rng = np.random.default_rng(12)
    for rle in (False, True):
        for n in list(range(1, 120)) + [4096]:
            for alphabet in (1, 2, 5, 256):
                src = rng.integers(0, alphabet, n, dtype=np.uint8)
                blk = np.empty(LZO.bound(n), np.uint8)
                m = LZO.compress_block(src, blk, np.zeros(LZO.D_SIZE, np.uint16), rle)
                back = np.empty(n, np.uint8)
                assert LZO.decompress_block(blk[:m].copy(), back) == n and back.tobytes() == src.tobytes()


# -- compiled against Python ------------------------------------------------------------------------

def _workload(dev, real, rnd, io_pages, chunk_pages):
    """Writes with duplicates (within a batch and across calls), overwrites of shared slots with
    other and with the same content, discards, single frees; writes past a refused page."""
    n = len(real)
    arr = real.array
    dev.write_pages(np.concatenate([arr, arr[: n // 2]]), io_pages=io_pages, chunk_pages=chunk_pages)
    out = [list(dev.last_failed), list(dev.last_skipped)]
    dev.write_pages(rnd, indexes=list(range(n // 3, n // 3 + len(rnd))), io_pages=io_pages, chunk_pages=chunk_pages)
    out += [list(dev.last_failed), list(dev.last_skipped)]
    dev.discard(list(range(0, n, 3)))
    dev.slot_free_notify(1)
    bufs = [p.tobytes() for p in arr[n // 4: n // 2]] + [p.tobytes() for p in rnd.array[:20]]
    dev.write_pages(bufs, indexes=list(range(n // 2, n // 2 + len(bufs))), io_pages=io_pages,
                    chunk_pages=chunk_pages)                               # a list of buffers: gathered
    out += [list(dev.last_failed), list(dev.last_skipped)]
    dev.write_pages(arr[: n // 8], indexes=list(range(n, n + n // 8)), io_pages=io_pages, chunk_pages=chunk_pages)
    return out


@pytest.mark.parametrize("comp", COMPRESSORS, ids=lambda c: c.name)
@pytest.mark.parametrize("compare", ["all", "first"])
@pytest.mark.parametrize("accounting", ["consistent", "port"])
def test_compiled_dedup_equals_python_path(comp, compare, accounting):
    real = _real()
    rnd = pagesets.random_pages(60, seed=40)
    nslots = len(real) + len(real) // 2 + 8
    hash_ = "jhash" if comp is not KernelLZO else "xxhash32"
    fast, ref = _pair(nslots, comp.name, hash=hash_, compare=compare, accounting=accounting)
    assert _workload(fast, real, rnd, 1, 300) == _workload(ref, real, rnd, 1, 300)
    assert fast.work.compares > 0 and fast.pages_merged() > 0 and fast.mm_stat()["dup_data_size"] > 0
    _assert_same(fast, ref, nslots)
    _checksums_match_contents(fast)


@pytest.mark.parametrize("comp", COMPRESSORS, ids=lambda c: c.name)
@pytest.mark.parametrize("io_pages", [1, 8, 256])
def test_compiled_dedup_equals_python_path_under_mem_limit(comp, io_pages):
    """mem_limit refuses pages in the middle of I/Os: the same pages refused, the same skipped
    (never hashed, never counted), in both paths."""
    real = _real()
    rnd = pagesets.random_pages(120, seed=41)
    nslots = len(real) + len(real) // 2 + 8
    fast, ref = _pair(nslots, comp.name, mem_limit=1 << 20)
    a, b = _workload(fast, real, rnd, io_pages, 256), _workload(ref, real, rnd, io_pages, 256)
    assert a == b
    assert fast.io_stat()["failed_writes"] > 0 and fast.pages_merged() > 0
    if io_pages > 1:
        assert any(a[i] for i in (1, 3, 5))                           # pages were skipped
    _assert_same(fast, ref, nslots)
    _checksums_match_contents(ref)


def test_skipped_pages_are_not_hashed_and_do_not_shift_the_checksums():
    """A refused I/O's other pages are never stored: they are not hashed or counted, and each
    page after them is looked up under its own checksum (hand-counted)."""
    real = _real()
    arr = np.concatenate([real.array[:300], real.array[:300]])
    for compiled in (True, False):
        dev = ZramDedupDevice(len(arr) * PAGE_SIZE, mem_limit=40 * PAGE_SIZE, work=Work())
        dev.compiled = compiled
        dev.write_pages(arr, io_pages=8, chunk_pages=64)
        assert dev.last_skipped
        flags = np.empty(len(arr), np.uint8)
        LZ4.same_filled(arr, flags, np.empty(len(arr), np.uint64))
        stored_or_refused = [p for p in range(len(arr)) if p not in set(dev.last_skipped)]
        assert dev.work.pages_hashed == sum(1 for p in stored_or_refused if not flags[p])
        # every lookup that did not find its page compressed it: hits + compressions = lookups
        assert dev.work.compressions + dev.pages_merged() == dev.work.pages_hashed
        dev.leave_arrays()
        _checksums_match_contents(dev)


def test_duplicates_are_not_counted_as_compressions_and_huge_pages_are_shared():
    """n incompressible pages written twice: the second copies share the huge entries. By hand:
    n compressions, n compares without decompression, 2n huge pages, n since."""
    rnd = pagesets.random_pages(40, seed=42).array
    text = pagesets.text_pages(30, distinct=10).array            # 10 distinct compressible pages
    arr = np.concatenate([rnd, text, rnd])
    nslots = len(arr)
    fast, ref = _pair(nslots, "kernel-lz4")
    for dev in (fast, ref):
        dev.write_pages(arr)
        w = dev.work
        assert w.pages_hashed == 110
        assert w.compressions == 50                          # 40 random + 10 distinct text pages
        assert w.compares == 60 and w.decompressions == 20   # 40 huge (memcmp), 20 text (decompressed)
        mm = dev.mm_stat()
        assert mm["huge_pages"] == 80 and mm["huge_pages_since"] == 40
        assert mm["dup_data_size"] == 40 * PAGE_SIZE + 20 * len(KernelLZ4().compress(text[0])[0])
        assert mm["meta_data_size"] == 50 * 48
        assert dev.pages_merged() == 60
    _assert_same(fast, ref, nslots)


def test_overwrites_of_shared_slots():
    """A slot that shares an entry is overwritten with other content, with the same content
    (its own entry: the reference is taken before the old one is dropped), and with a
    same-filled page; the entry's object is freed with its last slot."""
    text = pagesets.text_pages(4, distinct=2).array              # A B A B
    a, b = text[0], text[1]
    zero = np.zeros(PAGE_SIZE, np.uint8)
    fast, ref = _pair(8)
    for dev in (fast, ref):
        dev.write_pages(np.stack([a, a, a, b]), chunk_pages=4)
        la = len(KernelLZORLE().compress(a)[0])
        assert dev.mm_stat()["dup_data_size"] == 2 * la and dev.entries == 2
        dev.write_pages(np.stack([b, a, zero]), indexes=[1, 0, 2])   # 1 -> B, 0 -> A again, 2 -> same-filled
        assert dev.pages_merged() == 1 and dev.entries == 2          # A on slot 0; B on 1 and 3
        dev.write_pages(np.stack([zero, zero]), indexes=[0, 1])
        assert dev.entries == 1 and dev.mm_stat()["dup_data_size"] == 0
        assert dev.mm_stat()["same_pages"] == 3
    _assert_same(fast, ref, 8)


@pytest.mark.parametrize("compare", ["all", "first"])
def test_checksum_collisions_are_settled_by_the_full_compare(compare, monkeypatch):
    """Every page has the same checksum (the ``weak`` hash, compiled; then an arbitrary Python
    function, computed before the batch is handed out): only identical contents share, and
    "first" compares with the newest entry only."""
    ps = pagesets.text_pages(12, distinct=3).array                # X Y Z X Y Z ...
    for hash_ in ("weak", lambda page: 0x1234):
        fast, ref = _pair(16, hash=hash_, compare=compare)
        for dev in (fast, ref):
            dev.write_pages(ps)
            if compare == "all":
                # X, Y, Z new (0 + 1 + 2 compares), then each later page finds its entry:
                # X is the oldest (3 compares), Y 2, Z 1
                assert dev.entries == 3 and dev.pages_merged() == 9
                assert dev.work.compares == 3 + 3 * (3 + 2 + 1)
            else:
                # only the newest entry is tried: a page shares only when it equals the page
                # stored just before it with this checksum
                assert dev.work.compares == 11 and dev.pages_merged() == 0 and dev.entries == 12
        _assert_same(fast, ref, 16)
        assert list(fast.index) == [0 if hash_ == "weak" else 0x1234]
        assert [fast.read_page(i) for i in range(12)] == [p.tobytes() for p in ps]


def test_listeners_get_the_python_path_and_the_same_events():
    real = _real()
    n = len(real)
    fast, ref = _pair(n + 64)
    recs = []
    for dev in (fast, ref):
        dev.write_pages(real.array[: n // 2])
        rec = Recorder()
        unsubscribe = dev.bus.subscribe(rec)
        dev.write_pages(real.array, indexes=range(64, n + 64))
        assert dev.slot_arrays is None                                 # listening: the Python path ran
        dev.discard(range(0, n // 2, 2))
        unsubscribe()
        recs.append(dict(rec.counts))
        dev.compact()
        dev.write_pages(real.array[: n // 2], indexes=range(n // 2, n))
    assert recs[0] == recs[1] and recs[0]["dedup.share"] > 0 and recs[0]["dedup.hash"] > 0
    assert fast.mm_stat()["pages_compacted"] > 0
    _assert_same(fast, ref, n + 64)


def test_compiled_dedup_grows_its_pool_arrays_and_resumes(monkeypatch):
    import engine._zram_fast as F
    monkeypatch.setattr(F, "_reserve_frames", lambda pages: 1)
    real = _real()
    arr = np.concatenate([real.array, real.array])
    fast, ref = _pair(len(arr))
    fast.pool.enter_arrays(0)
    fast.write_pages(arr, chunk_pages=len(arr))
    ref.write_pages(arr)
    assert fast.pool.arrays.A.shape[0] > 256
    _assert_same(fast, ref, len(arr))


def test_slot_beyond_disksize_after_storing_the_pages_before_it():
    ps = pagesets.text_pages(10, distinct=4)
    fast, ref = _pair(8)
    for dev in (fast, ref):
        with pytest.raises(IndexError):
            dev.write_pages(ps, indexes=[0, 1, 2, 3, 4, 9, 5, 6, 7, 8])
        assert dev.mm_stat()["orig_data_size"] == 5 * PAGE_SIZE
    _assert_same(fast, ref, 8)


def test_the_mechanism_gives_the_same_result_on_both_paths():
    class PythonOnly(ZramDedup):
        def make_device(self, disksize, bus):
            dev = super().make_device(disksize, bus)
            dev.compiled = False
            return dev

    real = _real()
    ps = PageSet.from_bytes(np.concatenate([real.array] * 2).tobytes(), "twice")
    nonsame = sum(1 for p in real.array if not is_same_filled(p)[0])   # each shared by its second copy
    for kw in ({"hash": "jhash"}, {"hash": "xxhash32", "compare": "first", "accounting": "port"}):
        a = ZramDedup(**kw).run(Workload(ps))
        b = PythonOnly(**kw).run(Workload(ps))
        assert a.device.slot_arrays is not None and b.device.slot_arrays is None
        ra, rb = a.result(), b.result()
        assert ra == rb and ra["verified_readback"] and ra["pages_merged"] >= nonsame
