"""Model vs the live zram0 on the same pages and operations: every mm_stat/io_stat field equal,
for each of the kernel's three backends (lzo-rle, lzo, lz4), with and without mem_limit, with
one page or several per request."""
import random

import pytest

from engine.pages import PAGE_SIZE
from engine.scenario import ZramScenario, diff_stats
from tests import pagesets

pytestmark = pytest.mark.kernel

ALGOS = ["kernel-lzo-rle", "kernel-lzo", "kernel-lz4"]
#: random prefixes whose compressed lengths straddle the huge threshold (3625) for each backend
#: (LZO's literal skipping moves its lengths in steps of about 110 bytes, LZ4's in 4)
LADDER = {"kernel-lzo-rle": (3400, 3660), "kernel-lzo": (3300, 3560), "kernel-lz4": (3540, 3720)}


def assert_same(sc: ZramScenario):
    model = sc.run_model()
    kernel = sc.run_kernel()
    assert diff_stats(model, kernel) == [], (sc.algo, sc.io_pages, model.to_dict(), kernel.to_dict())
    assert model.comp_algorithm == kernel.comp_algorithm == sc.comp_algorithm
    return model


def test_model_default_is_the_kernels_default(live_zram):
    from engine.compress import DEFAULT_COMPRESSOR, get_compressor
    from engine.kernel.zram0 import KernelZram
    with KernelZram(16 * PAGE_SIZE, "lz4") as k:
        assert k.default_algo == get_compressor(DEFAULT_COMPRESSOR).kernel_name == "lzo-rle"
        assert k.stats().comp_algorithm == "lz4"


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("name", ["text", "same", "random", "ladder", "mixed"])
def test_store_only(live_zram, name, algo):
    ps = {"text": lambda: pagesets.text_pages(400, distinct=7), "same": pagesets.same_filled_pages,
          "random": lambda: pagesets.random_pages(300), "ladder": lambda: pagesets.ladder_pages(*LADDER[algo]),
          "mixed": pagesets.mixed_pages}[name]()
    m = assert_same(ZramScenario(ps, algo=algo))
    if name == "ladder":       # the ladder really crosses the huge threshold
        assert 0 < m.mm_stat["huge_pages"] < len(ps)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("io_pages", [1, 8, 256])
def test_real_process_memory(live_zram, real_pages, algo, io_pages):
    m = assert_same(ZramScenario(real_pages, algo=algo, io_pages=io_pages))
    assert m.mm_stat["orig_data_size"] == len(real_pages) * PAGE_SIZE


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("io_pages", [1, 8])
def test_discards_overwrites_compaction(live_zram, real_pages, algo, io_pages):
    n = len(real_pages)
    rng = random.Random(4)
    discard = sorted(rng.sample(range(n), n // 3)) + list(range(n // 2, n // 2 + 40))
    overwrite = rng.sample(range(n + 50), 200) + list(range(10, 60))    # some beyond the stored range
    sc = ZramScenario(real_pages, algo=algo, discard=discard, overwrite=overwrite,
                      overwrite_with=pagesets.mixed_pages(), compact=True, io_pages=io_pages)
    m = assert_same(sc)
    assert m.mm_stat["pages_compacted"] > 0


@pytest.mark.parametrize("algo", ALGOS)
def test_compaction_after_sparse_frees(live_zram, algo):
    ps = pagesets.mixed_pages()
    sc = ZramScenario(ps, algo=algo, discard=list(range(0, len(ps), 2)) + list(range(1, len(ps), 6)), compact=True)
    m = assert_same(sc)
    assert m.mm_stat["pages_compacted"] > 0


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("io_pages", [1, 8, 256])
@pytest.mark.parametrize("limit", [64 * 1024, 1 << 20])
def test_mem_limit(live_zram, real_pages, limit, io_pages, algo):
    sc = ZramScenario(real_pages, algo=algo, mem_limit=limit, io_pages=io_pages)
    m = assert_same(sc)
    assert m.io_stat["failed_writes"] > 0
    if io_pages > 1:           # a refused page ends its request: fewer pages tried, fewer refusals
        one = ZramScenario(real_pages, algo=algo, mem_limit=limit).run_model()
        assert m.io_stat["failed_writes"] < one.io_stat["failed_writes"]
        assert m.mm_stat["orig_data_size"] < one.mm_stat["orig_data_size"]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("io_pages,limit", [(1, 0), (8, 1 << 20), (256, 1 << 20)])
def test_read_back_equals_written(live_zram, real_pages, algo, io_pages, limit):
    """Slot by slot, the kernel holds what the model holds: the same pages stored, refused and
    skipped (a skipped or refused slot reads back as zeros, or as its earlier content)."""
    from engine.kernel.zram0 import KernelZram
    ps = pagesets.mixed_pages()
    sc = ZramScenario(ps, algo=algo, discard=list(range(0, 300, 3)), overwrite=[5, 6, 7, 700, 701],
                      overwrite_with=pagesets.text_pages(3, 3), mem_limit=limit, io_pages=io_pages)
    dev = sc.model()
    sc.apply(dev)
    with KernelZram(sc.disksize, sc.comp_algorithm, mem_limit=limit, io_pages=io_pages) as k:
        sc.apply(k)
        for i in range(len(ps)):
            assert k.read_page(i) == dev.read_page(i), i
    if limit:                  # the case really has refused pages and skipped rest-of-request pages
        from engine.zram import ZramDevice
        probe = ZramDevice(sc.disksize, algo, mem_limit=limit)
        probe.write_pages(ps, io_pages=io_pages)
        assert probe.io_stat()["failed_writes"] > 0 and probe.last_skipped
