"""Seeded random scenarios, model against the live kernel: synthetic mixes in several
processes, COW and write traces, chains under small max_page_sharing, zero pages, smart
scan; zram with discards, overwrites, compaction and mem_limit. (A run of these found the
chain counters off by two before the stable tree became a real red-black tree.)"""
import random

import pytest

from engine.pages import PageSet
from engine.scenario import KsmScenario, ZramScenario, diff_ksm, diff_stats
from engine.workloads.synthetic import generate

pytestmark = pytest.mark.kernel
SEEDS = [1, 7, 13, 21, 34, 55]


def scenario(seed):
    rng = random.Random(seed)
    mix = rng.choice(["android-swap", "identical-vms", "all-unique"])
    n = rng.choice([300, 1000, 2000])
    arr, man = generate(mix, n, seed)
    return rng, n, PageSet.from_bytes(arr.tobytes()), man


@pytest.mark.parametrize("seed", SEEDS)
def test_random_ksm(live_ksm, seed):
    rng, n, ps, man = scenario(seed)
    trace = [(rng.randint(1, 4), rng.randrange(n), rng.randrange(0, 4000), bytes([rng.randrange(256)]) * 8)
             for _ in range(20)]
    sc = KsmScenario(ps, man if rng.random() < 0.7 else None, use_zero_pages=rng.random() < 0.5,
                     max_page_sharing=rng.choice([2, 3, 8, 256]), smart_scan=rng.choice([0, 1]),
                     cow=sorted(rng.sample(range(n), n // 10)), trace=trace)
    kernel = sc.run_kernel()
    assert diff_ksm(sc.run_model(follow=kernel), kernel, sc.smart_scan) == []


@pytest.mark.parametrize("algo", ["kernel-lzo-rle", "kernel-lzo", "kernel-lz4"])
@pytest.mark.parametrize("seed", SEEDS)
def test_random_zram(live_zram, seed, algo):
    rng, n, ps, _ = scenario(seed)
    sc = ZramScenario(ps, discard=sorted(rng.sample(range(n), n // 3)), overwrite=rng.sample(range(n), n // 5),
                      overwrite_with=ps, compact=rng.random() < 0.7, mem_limit=rng.choice([0, 0, 1 << 20]),
                      algo=algo, io_pages=rng.choice([1, 8, 256]))
    assert diff_stats(sc.run_model(), sc.run_kernel()) == []
