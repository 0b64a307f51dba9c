"""Model vs the live zram0 on the same pages and operations: every mm_stat/io_stat field equal."""
import random

import pytest

from engine.pages import PAGE_SIZE
from engine.scenario import ZramScenario, diff_stats
from tests import pagesets

pytestmark = pytest.mark.kernel


def assert_same(sc: ZramScenario):
    model = sc.run_model()
    kernel = sc.run_kernel()
    assert diff_stats(model, kernel) == [], (model.to_dict(), kernel.to_dict())
    return model


@pytest.mark.parametrize("name", ["text", "same", "random", "ladder", "mixed"])
def test_store_only(live_zram, name):
    ps = {"text": lambda: pagesets.text_pages(400, distinct=7), "same": pagesets.same_filled_pages,
          "random": lambda: pagesets.random_pages(300), "ladder": pagesets.ladder_pages,
          "mixed": pagesets.mixed_pages}[name]()
    m = assert_same(ZramScenario(ps))
    if name == "ladder":       # the ladder really crosses the huge threshold
        assert 0 < m.mm_stat["huge_pages"] < len(ps)


def test_real_process_memory(live_zram, real_pages):
    m = assert_same(ZramScenario(real_pages))
    assert m.mm_stat["orig_data_size"] == len(real_pages) * PAGE_SIZE


def test_discards_overwrites_compaction(live_zram, real_pages):
    n = len(real_pages)
    rng = random.Random(4)
    discard = sorted(rng.sample(range(n), n // 3))
    overwrite = rng.sample(range(n + 50), 200)           # some beyond the stored range
    sc = ZramScenario(real_pages, discard=discard, overwrite=overwrite,
                      overwrite_with=pagesets.mixed_pages(), compact=True)
    m = assert_same(sc)
    assert m.mm_stat["pages_compacted"] > 0


def test_compaction_after_sparse_frees(live_zram):
    ps = pagesets.mixed_pages()
    sc = ZramScenario(ps, discard=list(range(0, len(ps), 2)) + list(range(1, len(ps), 6)), compact=True)
    m = assert_same(sc)
    assert m.mm_stat["pages_compacted"] > 0


@pytest.mark.parametrize("limit", [64 * 1024, 1 << 20])
def test_mem_limit(live_zram, real_pages, limit):
    sc = ZramScenario(real_pages, mem_limit=limit)
    m = assert_same(sc)
    assert m.io_stat["failed_writes"] > 0


def test_read_back_equals_written(live_zram):
    from engine.kernel.zram0 import KernelZram
    ps = pagesets.mixed_pages()
    sc = ZramScenario(ps, discard=list(range(0, 300, 3)), overwrite=[5, 6, 7],
                      overwrite_with=pagesets.text_pages(3, 3))
    dev = sc.model()
    sc.apply(dev)
    with KernelZram(sc.disksize, "lz4") as k:
        sc.apply(k)
        for i in range(len(ps)):
            assert k.read_page(i) == dev.read_page(i), i
