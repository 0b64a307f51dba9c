"""KSM model vs the live ksmd on the same pages: every counter and ksm_stat field equal."""
import pytest

from engine.pages import PAGE_SIZE, PageSet
from engine.scenario import KsmScenario, diff_ksm
from engine.workloads.manifest import Manifest
from tests import pagesets

pytestmark = pytest.mark.kernel


def assert_same(sc: KsmScenario) -> dict:
    kernel = sc.run_kernel()
    model = sc.run_model(follow=kernel)
    assert diff_ksm(model, kernel, sc.smart_scan) == [], (model, kernel)
    # the model's own convergence rule stops where the kernel's did, with the same writes
    alone = sc.run_model()
    assert alone["full_scans_at"] == kernel["full_scans_at"] and alone["writes"] == kernel["writes"]
    return kernel


@pytest.mark.parametrize("n,mps", [(10, 256), (257, 256), (300, 256), (1000, 256), (40, 8)])
def test_identical_pages_and_chains(live_ksm, n, mps):
    k = assert_same(KsmScenario(PageSet.from_pages([b"*" * PAGE_SIZE] * n), max_page_sharing=mps))
    # a chain exists once one content needs more than one KSM page (a lone remainder stays unshared)
    assert k["ksm"]["stable_node_chains"] == (1 if n > mps and n % mps != 1 else 0)


@pytest.mark.parametrize("use_zero_pages", [False, True])
def test_zero_pages(live_ksm, use_zero_pages):
    pages = [bytes(PAGE_SIZE)] * 20 + [b"z" * PAGE_SIZE] * 5
    k = assert_same(KsmScenario(PageSet.from_pages(pages), use_zero_pages=use_zero_pages, cow=[0, 1, 21]))
    assert (k["ksm"]["ksm_zero_pages"] > 0) == use_zero_pages


def test_cow_writes(live_ksm):
    ps = pagesets.text_pages(120, distinct=4)
    assert_same(KsmScenario(ps, cow=list(range(0, 120, 3)), max_page_sharing=16))


def test_several_processes_share_content(live_ksm):
    ps = pagesets.text_pages(90, distinct=5)
    man = Manifest(source="test", processes=[{"pid": p, "comm": f"p{p}"} for p in (1, 2, 3)],
                   pid=[1 + i % 3 for i in range(90)],
                   vaddr=[0x7F0000000000 + (i // 3) * PAGE_SIZE for i in range(90)],
                   region=["[anon]"] * 90)
    k = assert_same(KsmScenario(ps, manifest=man, cow=[4, 5, 6]))
    assert all(p["ksm_merging_pages"] > 0 for p in k["processes"])


def test_real_process_memory(live_ksm, real_pages):
    k = assert_same(KsmScenario(real_pages))
    assert k["ksm"]["pages_sharing"] > 0


def test_real_memory_with_zero_pages_and_cow(live_ksm, real_pages):
    assert_same(KsmScenario(real_pages, use_zero_pages=True, cow=list(range(0, len(real_pages), 11))))


def test_smart_scan_sum_is_stable(live_ksm):
    assert_same(KsmScenario(pagesets.mixed_pages(), smart_scan=1))


def test_trace_of_writes_over_time(live_ksm):
    ps = pagesets.text_pages(60, distinct=3)
    trace = [(1, 0, 0, b"volatile"), (2, 0, 0, b"again!!!"), (3, 5, 100, b"x" * 8), (3, 6, 100, b"x" * 8),
             (5, 7, 4000, b"\0" * 96)]
    k = assert_same(KsmScenario(ps, trace=trace, cow=[10, 11]))
    assert [w[0] for w in k["writes"]][:5] == [1, 2, 3, 3, 5]
