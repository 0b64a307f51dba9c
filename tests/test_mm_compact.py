"""The address-space model in arrays (issue #13): the page table is dense arrays per VMA, the
frame table arrays per machine, and ``Pte`` / ``Frame`` are views of one row made on access.
These tests hold the views' semantics (they write through, compare by pfn, the zero page is one
object, a VMA split keeps its rows) and the memory a placed page costs."""
from __future__ import annotations

import gc
import mmap
import tracemalloc

import pytest

from engine.ksm import Ksmd
from engine.mm import PAGE_SIZE, Frame, Machine, Pte
from engine.pages import PageSet
from engine.swap import SwapDevice, select_candidates
from tests.pagesets import text_pages

#: the bound per placed page: PTE row (35 bytes) + frame row (29 bytes) is 64, plus array slack
#: (66.3 measured). The model before arrays (a Frame and a Pte object, a dict entry and a list
#: entry per page) measured 373 bytes per page here.
BYTES_PER_PAGE = 80


class _Store:
    """A plain store behind the swap device: keeps each slot's bytes (no policy of its own)."""

    def __init__(self):
        self.slots = {}

    def store_pages(self, pages, slots):
        for i, s in enumerate(slots):
            self.slots[s] = bytes(pages[i])
        return []

    def load(self, slot):
        return self.slots[slot]

    def slot_free_notify(self, slot):
        del self.slots[slot]


def test_bytes_per_placed_page_is_a_few_table_columns():
    n = 1 << 18                                    # 256 Ki pages: 1 GiB of page set, never touched
    buf = mmap.mmap(-1, n * PAGE_SIZE)             # anonymous: untouched pages are not memory
    ps = PageSet(buf, name="anon")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        m = Machine()
        [mm] = m.place_pages(ps)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_page = (after - before) / n
    assert len(mm.ptes) == n and m.frames_allocated == n
    print(f"{per_page:.1f} bytes per placed page")
    assert per_page <= BYTES_PER_PAGE, f"{per_page:.1f} bytes per placed page"
    # and the model is whole: first, last and a middle page map views of their own pages
    base = mm.vmas[0].start
    for i in (0, n // 2 + 7, n - 1):
        f = mm.ptes[base + i * PAGE_SIZE].frame
        assert f.source == (ps, i) and f.mapcount == 1 and not f.ksm
    del f, mm, m, ps
    gc.collect()
    buf.close()


def test_pte_view_writes_through_to_the_vma_arrays():
    ps = text_pages(4, distinct=4)
    m = Machine()
    [mm] = m.place_pages(ps)
    vma = mm.vmas[0]
    a = vma.start + 2 * PAGE_SIZE
    p1, p2 = mm.ptes[a], mm.ptes[a]
    assert isinstance(p1, Pte) and p1 is not p2
    assert p1.writable and vma._wr[2] == 1
    p1.writable = False
    assert not p2.writable and vma._wr[2] == 0 and not mm.ptes[a].writable
    p1.atime = 12345
    assert p2.atime == 12345 and vma._atime[2] == 12345
    # a PTE the placement made: frame pfn in the array, births in placement order
    assert [vma._birth[i] for i in range(4)] == [1, 2, 3, 4]
    assert p2.frame.pfn == vma._pfn[2] and p2.swp is None and vma._swp[2] == -1
    p1.frame = None
    p1.swp = 7
    assert p2.frame is None and not p2.present and p2.swp == 7 and vma._pfn[2] == -1 and vma._swp[2] == 7
    # the column accessor is a copy (kept safely while the table changes)
    col = vma.column("_swp")
    assert col.tolist() == [-1, -1, 7, -1]
    p1.swp = 8
    assert col[2] == 7 and vma.column("_swp")[2] == 8 and vma.rows().tolist() == [0, 1, 2, 3]


def test_frame_views_compare_by_pfn_and_write_through_the_frame_table():
    ps = text_pages(3, distinct=3)
    m = Machine()
    [mm] = m.place_pages(ps)
    a = mm.vmas[0].start
    f, g = mm.ptes[a].frame, mm.ptes[a].frame
    h = mm.ptes[a + PAGE_SIZE].frame
    assert isinstance(f, Frame) and f is not g and f == g and hash(f) == hash(g) and f != h
    assert f != None and len({f, g, h}) == 2         # == with None must be False
    other = Machine()
    [omm] = other.place_pages(ps)
    assert omm.ptes[a].frame.pfn == f.pfn and omm.ptes[a].frame != f      # same pfn, another machine
    f.mapcount += 2
    f.pins = 1
    f.ksm = True
    assert g.mapcount == 3 and g.pins == 1 and g.ksm and g.refcount == 4 and m._mapcount[f.pfn] == 3
    node = object()
    f.stable_node = node
    assert g.stable_node is node and m._stable_nodes == {f.pfn: node}
    g.stable_node = None
    assert f.stable_node is None and not m._stable_nodes
    # the cached hash is cleared by a write through any view
    x = f.content_hash()
    assert g._hash == x
    h.write(0, b"abc")
    assert mm.read(a + PAGE_SIZE, 3) == b"abc" and not h.is_view and mm.ptes[a + PAGE_SIZE].frame._data is not None
    g.write(0, b"z")
    assert f._hash is None and f.content_hash() != x


def test_zero_page_is_one_object():
    m = Machine()
    mm = m.new_mm()
    mm.mmap(0x10000000, 4 * PAGE_SIZE)
    assert mm.read(0x10000000 + PAGE_SIZE, 8) == bytes(8)          # a read fault maps the zero page
    assert mm.ptes[0x10000000 + PAGE_SIZE].frame is m.zero_frame
    assert m.frame(0) is m.zero_frame and m.frame(0x1000) is not m.zero_frame
    assert not mm.ptes[0x10000000 + PAGE_SIZE].writable
    mm.write(0x10000000 + PAGE_SIZE, b"x")                           # COW off the zero page
    f = mm.ptes[0x10000000 + PAGE_SIZE].frame
    assert f is not m.zero_frame and f.pfn == 0x1000 and f.mapcount == 1
    assert m.zero_frame.data == bytes(PAGE_SIZE)


def test_page_table_is_a_mapping_in_address_order():
    m = Machine()
    mm = m.new_mm()
    mm.mmap(0x30000000, 2 * PAGE_SIZE)
    mm.mmap(0x10000000, 8 * PAGE_SIZE)
    for a in (0x30000000 + PAGE_SIZE, 0x10000000 + 5 * PAGE_SIZE, 0x10000000):
        mm.write(a, b"w")
    want = [0x10000000, 0x10000000 + 5 * PAGE_SIZE, 0x30000000 + PAGE_SIZE]
    assert list(mm.ptes) == want and sorted(mm.ptes) == want and len(mm.ptes) == 3
    assert [a for a, _p in mm.ptes.items()] == want and len(list(mm.ptes.values())) == 3
    assert 0x10000000 in mm.ptes and 0x10000000 + PAGE_SIZE not in mm.ptes
    assert mm.ptes.get(0x10000000 + 1) is None and mm.ptes.get(0x20000000) is None     # unaligned, unmapped
    with pytest.raises(KeyError):
        mm.ptes[0x10000000 + PAGE_SIZE]
    mm.zap(0x10000000 + 5 * PAGE_SIZE)
    assert list(mm.ptes) == [0x10000000, 0x30000000 + PAGE_SIZE] and len(mm.ptes) == 2
    assert mm.read(0x10000000 + 5 * PAGE_SIZE, 2) == b"\0\0"        # zapped: zeros (the zero page again)
    assert mm.vmas[0]._addrs == [0x10000000, 0x10000000 + 5 * PAGE_SIZE]


def test_vma_split_keeps_the_rows_with_their_pages():
    ps = text_pages(10, distinct=10)
    m = Machine()
    [mm] = m.place_pages(ps)
    base = mm.vmas[0].start
    before = {a: (p.frame.pfn, p.atime, p.birth, p.writable) for a, p in mm.ptes.items()}
    Ksmd(m).madvise_mergeable(mm, base + 3 * PAGE_SIZE, 4 * PAGE_SIZE)   # splits [3, 7) out
    assert [(v.start - base) // PAGE_SIZE for v in mm.vmas] == [0, 3, 7]
    assert [v.npages for v in mm.vmas] == [3, 4, 3] and [len(v._pfn) for v in mm.vmas] == [3, 4, 3]
    assert [v.mergeable for v in mm.vmas] == [False, True, False]
    after = {a: (p.frame.pfn, p.atime, p.birth, p.writable) for a, p in mm.ptes.items()}
    assert after == before and len(mm.ptes) == 10
    assert [mm.read(base + i * PAGE_SIZE) for i in range(10)] == [ps[i] for i in range(10)]
    assert mm.find_vma(base + 3 * PAGE_SIZE) is mm.vmas[1] and mm.find_vma(base + 2 * PAGE_SIZE) is mm.vmas[0]


def test_a_freed_frame_gives_its_bytes_back_and_swap_out_reads_the_tables():
    ps = text_pages(6, distinct=6)
    m = Machine()
    [mm] = m.place_pages(ps)
    SwapDevice(m, _Store(), 16)
    base = mm.vmas[0].start
    mm.write(base + PAGE_SIZE, b"written")
    wpfn = mm.ptes[base + PAGE_SIZE].frame.pfn
    assert wpfn in m._own
    shared = mm.ptes[base].frame
    m.replace_page(mm, base + 2 * PAGE_SIZE, shared, writable=False)   # page 0's frame mapped twice
    pairs = select_candidates(m, 1.0, "lru")
    # private pages only (not the frame mapped twice), least recently accessed first (page 1 was written)
    assert [va for _mm, va in pairs] == [base + i * PAGE_SIZE for i in (3, 4, 5, 1)]
    assert m.swap.swap_out(pairs) == 4
    assert wpfn not in m._own and m.frame(wpfn).freed
    assert mm.read(base + PAGE_SIZE) == b"written" + ps[1][7:]
    assert [mm.read(base + i * PAGE_SIZE) for i in (0, 2, 3, 4, 5)] == [ps[i] for i in (0, 0, 3, 4, 5)]
    assert m.frames_allocated == 6 - 1 - 4 + 4          # page 2's own frame freed; 4 out, 4 back in
