"""The claimed method's compiled swap-out (engine._claim_fast) against its page-by-page Python path.

The Python path (``compiled = False``) is the reference: it runs claim 1's steps one page at a
time. For every construction value and the combinations the other tests use, both paths run
on the same pages (real process memory with its duplicates, and pages compressing to above,
below and exactly the predetermined size) and must agree on every decision, every counter
(saved and metadata bytes, accounting, mm_stat, io_stat, pages merged, work), the slot table,
the swap map and every byte read back, also across several swap-outs with faults, writes and
unmaps in between. The compiled hashes are checked against the xxhash library and
engine.hashes on inputs of every length class.
"""
import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import _claim_fast as C
from engine.compress import get_compressor
from engine.hashes import jhash
from engine.mechanisms import Workload, make
from engine.mechanisms.patent_claim1 import PatentClaim1
from engine.pages import PAGE_SIZE, PageSet, default_pages_path
from engine.swap import peek


def incompressible(seed=1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, PAGE_SIZE, dtype=np.uint8).tobytes()


def prefix_page(k: int, seed=7) -> bytes:
    """k random bytes then zeros: compresses to a little more than k bytes."""
    return np.random.default_rng(seed).integers(0, 256, k, dtype=np.uint8).tobytes() + bytes(PAGE_SIZE - k)


TEXT = (b"The quick brown fox jumps over the lazy dog. " * 100)[:PAGE_SIZE]


def clen(page: bytes, algo="kernel-lzo-rle") -> int:
    return len(get_compressor(algo).compress(page)[0])


# ---- the compiled hashes -----------------------------------------------------------------------------
def test_compiled_hashes_equal_the_library_and_engine_hashes():
    rng = np.random.default_rng(11)
    lengths = list(range(70)) + [95, 96, 97, 127, 128, 1000, 1085, 3071, 4095, 4096]
    rows = np.zeros((len(lengths), PAGE_SIZE), np.uint8)
    for i, n in enumerate(lengths):
        rows[i, :n] = rng.integers(0, 256, n, dtype=np.uint8)
    rows[5, :5] = 0xFF
    n = np.array(lengths, np.int64)
    for kind, fn in ((C.H_XXH64, xxhash.xxh64_intdigest), (C.H_XXH32, lambda b: xxhash.xxh64_intdigest(b) & 0xFFFFFFFF),
                     (C.H_JHASH, jhash), (C.H_WEAK, lambda b: 0)):
        out = np.empty(len(lengths), np.uint64)
        C.hash_rows(kind, rows, n, out)
        want = [fn(rows[i, :k].tobytes()) for i, k in enumerate(lengths)]
        assert out.tolist() == want, kind
    assert C.HASH_KINDS == {"xxhash64": C.H_XXH64, "xxhash32": C.H_XXH32, "jhash": C.H_JHASH, "weak": C.H_WEAK}
    from engine.mechanisms.patent_claim1 import COMPILED_HASHES
    assert set(COMPILED_HASHES) == set(C.HASH_KINDS)


def test_a_custom_hash_function_takes_the_python_path():
    def nhash(data):                                  # negative and large values: not a compiled kind
        return -xxhash.xxh64_intdigest(data) - (1 << 70)
    m = make("patent_claim1", hash=nhash)
    m.fast_min_pages = 1
    m._swap_out_fast = lambda *a: pytest.fail("compiled path with a custom hash")
    m.run(Workload(page_set([TEXT, incompressible(2)] * 4)))
    assert m.pages_merged_ == 6 and m.verified_readback_


# ---- the pages ----------------------------------------------------------------------------------------
def crafted_pages(algo="kernel-lzo-rle"):
    """Pages on both sides of the sizes the readings use (2048, 3000, 3072, the huge threshold),
    a page compressing to exactly ``exact`` bytes, incompressible and same-filled pages, each
    several times, in an interleaved order."""
    sizes = [100, 1500, 2040, 2046, 2052, 2500, 2990, 3004, 3068, 3080, 3500, 3610, 3620, 3630, 3700, 4000]
    uniq = [prefix_page(k, seed=k) for k in sizes] + [incompressible(s) for s in (1, 2)]
    uniq += [TEXT, TEXT[::-1], bytes(PAGE_SIZE), b"\x11" * PAGE_SIZE, (0xDEADBEEF).to_bytes(8, "little") * 512]
    order = np.random.default_rng(4).permutation(len(uniq) * 3) % len(uniq)
    pages = [uniq[i] for i in order]
    return pages, clen(prefix_page(2500, seed=2500), algo)


def real_pages(reps=2):
    ps = PageSet.open(default_pages_path())
    return np.tile(ps.array[:400], (reps, 1))


def page_set(pages) -> PageSet:
    if isinstance(pages, np.ndarray):
        return PageSet.from_bytes(pages.tobytes(), "test")
    return PageSet.from_pages(list(pages), "test")


# ---- equivalence ----------------------------------------------------------------------------------------
def state(m):
    """Everything either path leaves behind that a reader can see."""
    r = m.result()
    dev = m.device
    out = {"result": r, "decisions": list(m.decisions_.items()), "io_stat": dev.io_stat(),
           "mm_stat": dev.mm_stat(), "flags": bytes(dev.flags), "handle": list(dev.handle), "size": list(dev.size),
           "swap_map": list(m.swapdev.swap_map), "pool_pages": dev.pool.total_pages(),
           "live_handles": dev.pool.live_handles(), "huge_class": dev.huge_class_size,
           "ptes": [(p.swp, p.frame is None) if (p := mm.ptes.get(va)) else None for mm, va in m.where_],
           "readback": [peek(m.machine, mm, va) for mm, va in m.where_],
           "index": sorted((sp.index, sp.key, sp.slot, sp.size, sp.owner, sp.refs)
                           for sp in m._stored_pages())}
    dev.pool.check()
    return out


def run_both(pages, ops=None, batch=None, **params):
    """Run the reference and the compiled path on the same pages; return (reference, compiled)
    and how many batches the compiled path took."""
    ps = page_set(pages)
    runs = []
    taken = []
    for compiled in (False, True):
        m = make("patent_claim1", **params)
        m.compiled = compiled
        m.fast_min_pages = 1
        if batch:
            m.fast_batch = batch
        orig = m._fast_batch

        def counted(*a, _orig=orig, **k):
            taken.append(1)
            return _orig(*a, **k)
        m._fast_batch = counted
        if ops is None:
            m.run(Workload(ps))
        else:
            machine, _mms, where = m.setup(Workload(ps))
            for op, i, v in ops:
                mm, va = where[i]
                if op == "swapout":
                    machine.swap.swap_out([where[j] for j in range(i, min(len(where), i + v))])
                elif op == "fault":
                    assert mm.read(va) == m.expected_[(mm.pid, va)]
                elif op == "write":
                    m.write(mm, va + (v % 512) * 8, bytes([v]) * 8)
                else:
                    mm.zap(va)
                    m.expected_[(mm.pid, va)] = bytes(PAGE_SIZE)
            machine.swap.swap_out(list(where))
            m.finish()
        runs.append(m)
    return runs[0], runs[1], len(taken)


READINGS = [
    {},
    {"large_branch": "raw"}, {"large_branch": "literal"}, {"large_branch": "raw", "predetermined_size": 2048},
    {"large_branch": "literal", "predetermined_size": "half-page"},
    {"large_branch": "literal", "hash_input": "page-in-pass", "predetermined_size": 2048},
    {"hash_input": "page-in-pass"}, {"hash_input": "page-in-pass", "large_branch": "compressed", "predetermined_size": 2048},
    {"predetermined_size": "three-quarter-page"}, {"predetermined_size": "half-page"}, {"predetermined_size": 2000},
    {"predetermined_size": 3000}, {"predetermined_size": 5000}, {"predetermined_size": 3700},
    {"mapping": "slot-remap"}, {"mapping": "pte-frame"}, {"mapping": "slot-remap", "predetermined_size": 2048},
    {"mapping": "pte-frame", "predetermined_size": 2048},
    {"second_space": "separate-device"}, {"second_space": "separate-device", "mapping": "pte-frame"},
    {"identity": "hash-only"}, {"identity": "hash-only", "hash": "weak"}, {"identity": "full", "hash": "weak"},
    {"identity": "hash-only", "hash": "weak", "mapping": "slot-remap"},
    {"same_filled": True}, {"same_filled": True, "mapping": "pte-frame"},
    {"hash": "jhash"}, {"hash": "xxhash32", "large_branch": "raw", "predetermined_size": 2048},
    {"algo": "kernel-lz4"}, {"algo": "kernel-lzo", "predetermined_size": 2048, "large_branch": "raw"},
    {"algo": "kernel-lz4", "mapping": "slot-remap", "large_branch": "literal", "equal": "smaller"},
]


def assert_same(ref, fast, taken):
    assert taken > 0                                  # the compiled path ran
    a, b = state(ref), state(fast)
    for key in a:
        assert a[key] == b[key], key
    assert ref.verified_readback_ == fast.verified_readback_


@pytest.mark.parametrize("params", READINGS, ids=[",".join(f"{k}={v}" for k, v in p.items()) or "default"
                                                   for p in READINGS])
def test_compiled_path_decides_and_stores_as_the_python_path(params):
    pages, _exact = crafted_pages(params.get("algo", "kernel-lzo-rle"))
    real = real_pages()
    mixed = np.concatenate([np.frombuffer(b"".join(pages), np.uint8).reshape(-1, PAGE_SIZE), real])
    ref, fast, taken = run_both(mixed, batch=97, **params)      # several batches: entries of earlier ones probed
    assert_same(ref, fast, taken)
    if params.get("identity") != "hash-only" or params.get("hash") != "weak":
        assert fast.verified_readback_ and fast.pages_merged_ > 0


@pytest.mark.parametrize("equal", ["larger", "smaller"])
@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize("algo", ["kernel-lzo-rle", "kernel-lz4"])
def test_a_page_exactly_the_predetermined_size(equal, delta, algo):
    pages, exact = crafted_pages(algo)
    ref, fast, taken = run_both(pages, predetermined_size=exact + delta, equal=equal, algo=algo)
    assert_same(ref, fast, taken)
    if delta == 0:                                    # the exact page went where the reading sends it
        p = prefix_page(2500, seed=2500)
        i = next(i for i, q in enumerate(pages) if q == p)
        mm, va = fast.where_[i]
        assert fast.decisions_[(mm.pid, va)].branch == ("small" if equal == "smaller" else "large")


def test_one_batch_of_real_memory_as_the_benchmark_runs_it():
    ref, fast, taken = run_both(real_pages(3))
    assert_same(ref, fast, taken)
    assert fast.pages_merged_ >= 2 * 400 and taken == 1


def test_small_swap_outs_take_the_python_path():
    m = make("patent_claim1")
    calls = []
    m._swap_out_fast = lambda *a: calls.append(a)
    m.run(Workload(page_set([TEXT, TEXT])))
    assert calls == [] and m.pages_merged_ == 1       # fewer than fast_min_pages


def test_a_listener_or_a_mem_limit_takes_the_python_path():
    from engine.events import EventBus
    seen = []
    bus = EventBus()
    bus.subscribe(lambda e: seen.append(e.kind))
    m = make("patent_claim1")
    m.fast_min_pages = 1
    m._swap_out_fast = lambda *a: pytest.fail("compiled path with a listener")
    m.run(Workload(page_set([TEXT] * 3)), bus=bus)
    assert seen.count("dedup.share") == 2
    m = make("patent_claim1", mem_limit=1 << 20)
    m.fast_min_pages = 1
    m._swap_out_fast = lambda *a: pytest.fail("compiled path under mem_limit")
    m.run(Workload(page_set([TEXT] * 3)))
    assert m.pages_merged_ == 2


OPS = st.lists(st.tuples(st.sampled_from(["swapout", "fault", "write", "zap"]), st.integers(0, 59),
                         st.integers(1, 40)), max_size=25)


@pytest.mark.parametrize("params", [{}, {"mapping": "slot-remap"}, {"mapping": "pte-frame"},
                                    {"mapping": "pte-frame", "predetermined_size": 2048, "large_branch": "raw"},
                                    {"same_filled": True, "identity": "hash-only"},
                                    {"hash": "weak", "mapping": "slot-remap", "predetermined_size": 2048}],
                         ids=["default", "slot-remap", "pte-frame", "pte-frame-raw", "same-filled-hash-only",
                              "weak-slot-remap"])
@settings(max_examples=20, deadline=None)
@given(ops=OPS)
def test_swap_outs_between_faults_writes_and_unmaps_match_the_python_path(params, ops):
    pages, _exact = crafted_pages()
    pages = (pages + [TEXT, TEXT[::-1], incompressible(9)] * 2)[:60]
    ref, fast, taken = run_both(pages, ops=ops, batch=16, **params)
    assert_same(ref, fast, taken)
    assert fast.verified_readback_
    for mm, va in fast.where_:                        # fault everything back: the store empties
        assert mm.read(va) == fast.expected_[(mm.pid, va)]
    assert sum(fast.swapdev.swap_map) == 0 and fast.device.pool.total_pages() == 0
    assert fast.device.mm_stat()["orig_data_size"] == 0


def test_decisions_read_as_a_mapping():
    ps = page_set([TEXT, TEXT, incompressible(3), bytes(PAGE_SIZE)] * 20)
    m = make("patent_claim1")
    m.fast_min_pages = 1
    m.run(Workload(ps))
    d = m.decisions_
    assert len(d) == 80 and list(d) == [(mm.pid, va) for mm, va in m.where_]
    first = (m.where_[0][0].pid, m.where_[0][1])
    assert d[first] == ("small", "stored", None) and d.get((0, 0)) is None
    assert d[(m.where_[4][0].pid, m.where_[4][1])] == ("small", "shared", first)
    assert isinstance(PatentClaim1.compiled, bool)
