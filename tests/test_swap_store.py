"""The store behind the swap device: zram-level mechanisms drive a run, and their device is the
swap backend itself (``engine.swap.SwapStore``), so a page goes down the chain once and the
store says which pages it refused."""
from __future__ import annotations

from engine.mechanisms import Workload, make
from engine.pages import PAGE_SIZE
from engine.swap import SwapStore
from engine.zram import ZramDevice
from tests.pagesets import random_pages


def test_zram_level_mechanisms_put_their_device_behind_swap():
    wl = Workload(random_pages(8))
    for name in ("upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm"):
        m = make(name)
        m.setup(wl)
        assert m.swapdev.backend is m.device, name
        assert isinstance(m.device, SwapStore), name
        assert not hasattr(m, "swap_out_pages"), name          # the driver is not in the way


def test_store_pages_returns_what_it_refused():
    """Incompressible pages under a limit of 3 pool pages: each takes a whole page, so pages 0-2
    fit and every later one is refused; with 2-page I/Os the rest of a refused I/O is not
    stored either, and is returned with it."""
    pages = random_pages(6).array
    dev = ZramDevice(16 * PAGE_SIZE, "lz4", mem_limit=3 * PAGE_SIZE)
    assert dev.store_pages(pages, [0, 1, 2, 3, 4, 5]) == [3, 4, 5]
    assert dev.mm_stat()["orig_data_size"] == 3 * PAGE_SIZE
    assert dev.io_stat()["failed_writes"] == 3
    # slots 10.. with 2-page I/Os: (10, 11) refused at 10 -> 11 skipped, and so on
    dev2 = ZramDevice(16 * PAGE_SIZE, "lz4", mem_limit=3 * PAGE_SIZE)
    assert dev2.store_pages(pages, [0, 1, 2, 3, 4, 5], io_pages=2) == [3, 4, 5]
    assert dev2.io_stat()["failed_writes"] == 2           # one per refused I/O: (2,3) at 3, (4,5) at 4
    assert [dev.read_page(i) for i in range(3)] == [pages[i].tobytes() for i in range(3)]
    assert dev.read_page(3) == bytes(PAGE_SIZE)


def test_a_refused_page_stays_resident_and_its_slot_comes_back():
    """Through the whole chain: pages the store refuses keep their frames, their slots are
    free again, and every page still reads back."""
    ps = random_pages(6)
    m = make("upstream_zram", mem_limit=3 * PAGE_SIZE, algo="lz4")
    m.run(Workload(ps))
    assert m.verified_readback_
    mm = m.machine.mms[0]
    swapped = [va for va, pte in sorted(mm.ptes.items()) if pte.frame is None]
    resident = [va for va, pte in sorted(mm.ptes.items()) if pte.frame is not None]
    assert len(swapped) == 3 and len(resident) == 3
    used = {mm.ptes[va].swp for va in swapped}
    assert used == {0, 1, 2}
    assert sorted(m.swapdev._free) == [3, 4, 5]           # refused slots given back
    assert m.device.io_stat()["failed_writes"] == 3
