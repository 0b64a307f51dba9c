"""zsmalloc: class table from first principles, allocation, fullness, compaction."""
import random

from hypothesis import given, settings, strategies as st

from engine.zsmalloc import ZsPool, size_class_index, zspage_chain_size, GROUP_FULL

# rows of the reference table (index, size, pages per zspage, objects per zspage, request range)
REFERENCE_ROWS = [
    (0, 32, 1, 128, 1, 24), (1, 48, 3, 256, 25, 40), (7, 144, 7, 199, 121, 136),
    (49, 816, 1, 5, 777, 808), (100, 1632, 2, 5, 1577, 1624), (126, 2048, 1, 2, 1913, 2040),
    (225, 3632, 8, 9, 3577, 3624), (254, 4096, 1, 1, 3625, 4096),
]


def test_class_table_from_first_principles():
    pool = ZsPool()
    assert len(pool.classes) == 119
    assert pool.huge_class_size == 3625
    table = {c["index"]: c for c in pool.class_table()}
    for idx, size, ppz, objs, lo, hi in REFERENCE_ROWS:
        c = table[idx]
        assert (c["size"], c["pages_per_zspage"], c["objs_per_zspage"]) == (size, ppz, objs)
        assert (c["min_request"], c["max_request"]) == (lo, hi)
        assert pool.class_for(lo).index == idx and pool.class_for(hi).index == idx


def test_chain_size_minimises_waste():
    # 144-byte slots: 7 pages waste 28672 % 144 = 16 bytes, the least for 1..8 pages
    assert zspage_chain_size(144) == 7
    assert zspage_chain_size(2048) == 1          # power of two: one page
    assert size_class_index(32) == 0 and size_class_index(33) == 1 and size_class_index(5000) == 254


def test_pages_grow_only_when_a_class_is_full():
    pool = ZsPool()
    hs = [pool.malloc(40) for _ in range(256)]    # class 48: 3 pages hold 256 objects
    assert pool.total_pages() == 3
    hs.append(pool.malloc(40))
    assert pool.total_pages() == 6
    for h in hs[:-1]:
        pool.free(h)
    assert pool.total_pages() == 3                # the emptied zspage is returned at once
    pool.free(hs[-1])
    assert pool.total_pages() == 0
    pool.check()


def test_allocation_prefers_the_fullest_zspage():
    pool = ZsPool()
    hs = [pool.malloc(20) for _ in range(256)]    # class 32: two full 1-page zspages of 128
    for h in hs[:100]:
        pool.free(h)                              # zspage A down to 28/128
    pool.free(hs[200])                            # zspage B at 127/128
    h = pool.malloc(20)
    z, idx = pool.location(h)
    assert z is pool.location(hs[150])[0]         # B (fuller) gets it, in the slot just freed (LIFO)
    assert idx == 200 - 128


def test_compaction_frees_and_keeps_bytes():
    pool = ZsPool()
    hs = [pool.malloc(20) for _ in range(256)]
    for i, h in enumerate(hs):
        pool.write(h, bytes([i % 256]) * 20)
    live = {h: i for i, h in enumerate(hs) if i % 2}
    for i, h in enumerate(hs):
        if i % 2 == 0:
            pool.free(h)
    assert pool.total_pages() == 2
    freed = pool.compact()
    assert freed == 1 and pool.pages_compacted == 1 and pool.total_pages() == 1
    for h, i in live.items():
        assert pool.read(h, 20) == bytes([i % 256]) * 20
    pool.check()


def test_object_header_and_free_links_are_in_the_zspage():
    pool = ZsPool()
    h1 = pool.malloc(100)
    h2 = pool.malloc(100)
    z, i1 = pool.location(h1)
    size = z.cls.size
    assert int.from_bytes(z.mem[i1 * size:i1 * size + 8], "little") == h1 | 1
    pool.free(h1)                                  # free slot links to the old head (slot 2)
    assert int.from_bytes(z.mem[i1 * size:i1 * size + 8], "little") == 2 << 1
    assert pool.handle_obj(h2) >> 24 == z.pfns[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alloc", "free", "compact"]), st.integers(1, 4096),
                          st.integers(0, 10 ** 6)), min_size=1, max_size=300))
def test_random_sequences_keep_invariants_and_bytes(ops):
    pool = ZsPool()
    live = {}
    for op, size, r in ops:
        if op == "alloc":
            h = pool.malloc(size)
            data = random.Random(r).randbytes(size)
            pool.write(h, data)
            live[h] = data
        elif op == "free" and live:
            h = sorted(live)[r % len(live)]
            pool.free(h)
            del live[h]
        elif op == "compact":
            pool.compact()
        pool.check()
    for h, data in live.items():
        assert pool.read(h, len(data)) == data
    # a class never keeps more than one non-full zspage's worth of waste after compaction
    pool.compact()
    for c in pool.classes:
        assert (c.objs_allocated - c.objs_inuse) < 2 * c.objs_per_zspage or not any(
            c.fullness[g] for g in range(1, GROUP_FULL))


def test_array_form_round_trip_is_exact_and_later_operations_agree():
    """The pool's array form (zram's compiled write path) holds exactly the object state:
    converted there and back after mixed allocations, frees and a compaction, every zspage,
    list position, free list, byte and handle is the same, and so is everything after."""
    import random
    from tests.test_zram_model import pool_state
    rng = random.Random(7)
    pools = [ZsPool(), ZsPool()]
    for pool in pools:
        r = random.Random(7)
        hs = []
        for _ in range(3000):
            if hs and r.random() < 0.35:
                pool.free(hs.pop(r.randrange(len(hs))))
            else:
                size = r.choice([r.randint(1, 200), r.randint(200, 3000), 4096])
                hs.append(pool.malloc(size, bytes([r.randrange(256)]) * size))
        pool.compact()
    a, b = pools
    before = pool_state(a)
    a.enter_arrays(rng.randint(0, 5000))
    assert a._arrays is not None and a.live_handles() == b.live_handles()
    assert a.total_pages() == b.total_pages()
    a.leave_arrays()                              # also what touching any object state does
    assert pool_state(a) == before == pool_state(b)
    a.check()
    a.enter_arrays()
    for pool in pools:                             # __getattr__ converts back on first use
        r = random.Random(8)
        live = sorted(pool._handles)
        for h in live[::3]:
            pool.free(h)
        for _ in range(500):
            pool.malloc(r.randint(1, 4096))
    assert a._arrays is None and pool_state(a) == pool_state(b)
