"""The compiled offline steps (engine._offline_fast) against their Python paths, the reference.

Romanov's zram merge and zsmalloc fold, with the writes before them (upstream's compiled write
path) and the overwrites, discards and swap frees after them, in both variants: every counter,
the work, the trees, zsmalloc's whole state and every byte read back must be the same. The
compiled XXH64 is checked against the ``xxhash`` package.
"""
import numpy as np
import pytest
import xxhash

from engine.events import Recorder
from engine.hashes import xxh64
from engine.mechanisms import Workload, make
from engine.mechanisms.zram_merge import ZRAM_MERGED, ZramMergeDevice
from engine.mechanisms.zsmalloc_fold import ZramFoldDevice
from engine.pages import PAGE_SIZE, PageSet, default_pages_path
from tests import pagesets
from tests.test_zram_model import pool_state

VARIANTS = ("posted", "corrected")


# -- XXH64 --------------------------------------------------------------------------------------

def test_compiled_xxh64_equals_the_xxhash_package():
    rng = np.random.default_rng(64)
    lengths = list(range(130)) + [int(x) for x in rng.integers(0, 4200, 2500)] + [4095, 4096, 4097, 8192]
    for n in lengths:
        data = rng.integers(0, 256, n, dtype=np.uint8)
        buf = np.empty(n + 8, np.uint8)           # bytes past n must not count
        buf[:n] = data
        buf[n:] = rng.integers(0, 256, 8, dtype=np.uint8)
        seed = int(rng.integers(0, 2**63)) if n % 3 == 0 else 0
        assert int(xxh64(buf, n, np.uint64(seed))) == xxhash.xxh64_intdigest(data.tobytes(), seed), n
    # the published test vectors of XXH64 (seed 0)
    assert int(xxh64(np.empty(0, np.uint8), 0, np.uint64(0))) == 0xEF46DB3751D8E999
    abc = np.frombuffer(b"abc", np.uint8).copy()
    assert int(xxh64(abc, 3, np.uint64(0))) == 0x44BC2CF5AD770999


# -- pages --------------------------------------------------------------------------------------

def _pages():
    """Real process memory with duplicates (the embedded default, a third of it repeated),
    incompressible pages (stored huge, two of them twice), same-filled pages, and
    compressible pages of many lengths, several in pairs."""
    real = PageSet.open(default_pages_path()).array
    rnd = pagesets.random_pages(6, seed=77).array
    mixed = pagesets.mixed_pages(seed=9).array[:200]
    same = pagesets.same_filled_pages().array
    arr = np.concatenate([real, rnd, rnd[:2], same, mixed, real[::3], mixed[:60:2]])
    return arr


def _state(dev):
    d = {"stats": dev.stats(), "flags": bytes(dev.flags), "handle": list(dev.handle), "size": list(dev.size),
         "compr": dev.work_compressions, "decompr": dev.work_decompressions, "pool": pool_state(dev.pool)}
    if isinstance(dev, ZramMergeDevice):
        d.update(pages_merged=dev.pages_merged, saved=dev.saved, shared=dict(dev.shared),
                 sharers={h: set(s) for h, s in dev.sharers.items()}, mm=dev.mm_stat())
    else:
        pool = dev.pool
        d.update(nodes={k: (n.cnt, list(n.handles)) for k, n in pool.nodes.items()}, req=dict(pool.req_size),
                 folded=(pool.pages_folded, pool.objs_folded), saved=pool.saved(), mm=dev.mm_stat())
        pool.check()
    return d


def _work(dev):
    return dev.work if isinstance(dev, ZramMergeDevice) else dev.pool.work


def _scenario(dev, step, arr):
    """Writes, the offline step, overwrites (shared slots and others, some same-filled),
    discards, swap frees, more writes, a second offline step, frees, and a read of every slot.
    Returns what each step returned and a snapshot after the first offline step."""
    n = len(arr)
    out = []
    dev.write_pages(arr)
    out.append(getattr(dev, step)())
    out.append((dev.stats(), _work(dev).as_dict()))
    rng = np.random.default_rng(5)
    over = sorted(rng.choice(n, n // 10, replace=False).tolist())
    pages = arr[rng.integers(0, n, len(over))].copy()
    pages[::7] = 0                                           # some become same-filled
    dev.write_pages(pages, indexes=over, io_pages=8)
    dev.discard(list(range(0, n, 11)))
    for i in range(3, n, 13):
        dev.slot_free_notify(i)
    dev.write_pages(arr[: n // 3], indexes=list(range(n, n + n // 3)))
    out.append(getattr(dev, step)())
    dev.discard(list(range(1, n + n // 3, 17)))
    for i in range(5, n + n // 3, 19):
        dev.slot_free_notify(i)
    out.append([dev.read_page(i) for i in range(dev.num_pages)])
    return out


def _pair(cls, variant, hash="xxhash64", extra=3):
    from engine.mechanisms.base import Work
    arr = _pages()
    disk = (len(arr) + len(arr) // extra + 8) * PAGE_SIZE
    devs = [cls(disk, variant=variant, hash=hash, work=Work()) for _ in range(2)]
    devs[1].compiled = False
    return arr, devs


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("hash", ["xxhash64", "jhash", "weak"])
def test_compiled_merge_equals_python_merge(variant, hash):
    arr, (fast, ref) = _pair(ZramMergeDevice, variant, hash)
    a = _scenario(fast, "merge", arr)
    assert fast.slot_arrays is not None and fast._mtree is not None      # the compiled paths ran
    b = _scenario(ref, "merge", arr)
    assert ref.slot_arrays is None and ref.pool.arrays is None
    assert a == b
    assert a[0] > 50                                         # the first pass merged many slots
    assert _work(fast).as_dict() == _work(ref).as_dict()
    sf, sr = _state(fast), _state(ref)
    assert sf == sr
    assert np.any(np.frombuffer(fast.flags, np.uint8) & ZRAM_MERGED)
    if variant == "posted":                                  # the posted accounting drifted
        assert fast.mm_stat()["compr_data_size"] < sum(fast.size)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("hash", ["xxhash64", "xxhash32", "weak"])
def test_compiled_fold_equals_python_fold(variant, hash):
    arr, (fast, ref) = _pair(ZramFoldDevice, variant, hash)
    a = _scenario(fast, "fold", arr)
    assert fast.slot_arrays is not None and fast.pool._foldarr is not None  # the compiled paths ran
    b = _scenario(ref, "fold", arr)
    assert a == b
    assert fast.pool.folded_handles() == ref.pool.folded_handles() > 0
    assert fast.pool.fold_nodes() == ref.pool.fold_nodes()
    assert fast.pool.saved() == ref.pool.saved() > 0
    assert _work(fast).as_dict() == _work(ref).as_dict()
    assert _state(fast) == _state(ref)


@pytest.mark.parametrize("variant", VARIANTS)
def test_fold_then_compaction_then_compiled_writes(variant):
    """Compaction runs on the object form (the arrays are converted back exactly, fold nodes
    included); compiled writes, frees and a second fold follow on the array form again."""
    arr, (fast, ref) = _pair(ZramFoldDevice, variant, extra=2)
    n = len(arr)
    res = []
    for dev in (fast, ref):
        dev.write_pages(arr)
        dev.fold()
        dev.discard(list(range(0, n, 3)))                   # room for compaction
        r = [dev.compact()]
        dev.write_pages(arr[: n // 2], indexes=list(range(n, n + n // 2)))
        r.append(dev.fold())
        dev.discard(list(range(1, n + n // 2, 4)))
        r.append([dev.read_page(i) for i in range(dev.num_pages)])
        res.append(r)
    assert res[0] == res[1] and res[0][0] > 0
    assert fast.pool._foldarr is not None
    assert _state(fast) == _state(ref)


@pytest.mark.parametrize("variant", VARIANTS)
def test_merge_into_a_slot_that_is_a_posted_survivor_and_handle_reuse(variant):
    """A second merge after the sharers of a handle were freed down to one slot (posted: it
    stays MERGED with a count of 1 and merges again, leaving that count behind for the
    handle id, which the next write reuses)."""
    text = [(f"object {k} " * 500).encode()[:PAGE_SIZE] for k in range(3)]
    pages = np.frombuffer(b"".join([text[0], text[0], text[1], text[1], text[1], text[2]]), np.uint8)
    pages = pages.reshape(-1, PAGE_SIZE)
    from engine.mechanisms.base import Work
    out = []
    for compiled in (True, False):
        dev = ZramMergeDevice(16 * PAGE_SIZE, variant=variant, work=Work())
        dev.compiled = compiled
        dev.write_pages(pages)
        r = [dev.merge()]                                    # 1 -> 0, 3 -> 2, 4 -> 2
        dev.slot_free_notify(0)                              # slot 1 left alone on its handle
        dev.slot_free_notify(2)
        dev.write_pages(pages[:1], indexes=[0])
        r.append(dev.merge())                                # slot 1 merges into slot 0
        r.append((dict(dev.shared), dev.pages_merged, dev.stats()))
        dev.write_pages(pages[2:6], indexes=[7, 8, 9, 10])   # reuses freed handle ids
        r.append(dev.merge())
        dev.discard([0, 3, 7])
        dev.write_pages(pages[:2], indexes=[3, 4])           # overwrites of MERGED slots
        r.append([dev.read_page(i) for i in range(16)])
        if compiled:
            assert dev._mtree is not None
        out.append((r, _state(dev)))
    assert out[0] == out[1]


@pytest.mark.parametrize("cls,step", [(ZramMergeDevice, "merge"), (ZramFoldDevice, "fold")])
def test_listeners_get_the_python_path_with_its_events_then_compiled_again(cls, step):
    """While someone listens, the offline step and the frees run in Python and emit their
    events (the array form is converted back, trees included); after, the compiled paths
    take over again from the object form."""
    arr, (fast, ref) = _pair(cls, "corrected")
    n = len(arr)
    counts, res = [], []
    for dev in (fast, ref):
        dev.write_pages(arr[: n // 2])
        getattr(dev, step)()
        rec = Recorder()
        unsubscribe = dev.bus.subscribe(rec)
        dev.write_pages(arr[n // 2:], indexes=range(n // 2, n))
        getattr(dev, step)()
        dev.discard(list(range(0, n, 7)))
        unsubscribe()
        counts.append(dict(rec.counts))
        dev.write_pages(arr[: n // 3], indexes=range(n, n + n // 3))
        r = [getattr(dev, step)()]
        dev.discard(list(range(1, n + n // 3, 5)))
        r.append([dev.read_page(i) for i in range(dev.num_pages)])
        res.append(r)
    assert counts[0] == counts[1] and counts[0]["dedup.hash"] > 0 and counts[0]["dedup.share"] > 0
    assert res[0] == res[1]
    assert fast.slot_arrays is not None and (fast._mtree is not None if step == "merge" else fast.pool._foldarr is not None)
    assert _state(fast) == _state(ref)


@pytest.mark.parametrize("cls,step", [(ZramMergeDevice, "merge"), (ZramFoldDevice, "fold")])
@pytest.mark.parametrize("variant", VARIANTS)
def test_mem_limit_after_the_offline_step(cls, step, variant):
    """Writes refused by mem_limit after a merge or fold (the rest of each refused I/O
    skipped), overwrites of shared slots among them."""
    arr, (fast, ref) = _pair(cls, variant)
    n = len(arr)
    out = []
    for dev in (fast, ref):
        dev.write_pages(arr)
        r = [getattr(dev, step)()]
        dev.set_mem_limit(dev.pool.total_pages() * PAGE_SIZE + 16 * PAGE_SIZE)
        r.append(dev.write_pages(arr[::-1][: n // 2], indexes=list(range(n // 4, n // 4 + n // 2)), io_pages=8))
        r += [list(dev.last_failed), list(dev.last_skipped)]
        r.append([dev.read_page(i) for i in range(dev.num_pages)])
        out.append(r)
    assert out[0] == out[1] and out[0][1] > 0
    assert _state(fast) == _state(ref)


@pytest.mark.parametrize("name", ["zram_merge", "zsmalloc_fold"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_mechanism_results_equal_on_both_paths(name, variant):
    ps = PageSet.from_bytes(_pages().tobytes(), "offline")
    results = []
    for compiled in (True, False):
        m = make(name, variant=variant)
        machine, mms, _ = m.setup(Workload(ps))
        m.device.compiled = compiled
        from engine.swap import select_candidates
        machine.swap.swap_out(select_candidates(machine, 1.0, "lru", 0, mms))
        m.trigger()
        m.finish()
        if compiled:
            assert m.device.slot_arrays is not None                # the read-back ran on the arrays too
        results.append(m.result())
        # every page faulted back in: every slot swap-freed, the store left empty
        for mm, va in m.where_:
            mm.read(va, 1)
        if compiled:                                         # the swap frees ran compiled too
            assert m.device.slot_arrays is not None and m.device.pool.arrays is not None
        st = m.device.mm_stat()
        results.append((st["orig_data_size"], st["mem_used_total"], m.device.io_stat()["notify_free"]))
    assert results[0] == results[2] and results[1] == results[3]
    assert results[0]["verified_readback"] and results[0]["pages_merged"] > 0
    assert results[1][0] == 0 and results[1][1] == 0
