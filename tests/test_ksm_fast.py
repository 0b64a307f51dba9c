"""The compiled KSM scan (engine/_ksm_fast.py) against the Python path it follows: the same
operations on two machines, one daemon compiled and one not, must leave every counter, every
ksm_stat, every rmap_item, the stable tree's exact shape (nodes, colours, chains, dups, hlists)
and every PTE and frame the same."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import Recorder
from engine.ksm import Ksmd
from engine.mm import Machine
from engine.pages import PAGE_SIZE, PageSet, default_pages_path
from engine.rbtree import RBTree, RbNode


def _nkey(node):
    if node is None:
        return None
    if node.is_chain:
        return ("chain", tuple(d.frame.pfn for d in node.dups))
    return node.frame.pfn


def state(m, k, mms):
    """Everything the scan can change, in plain values (node identities by their kpfn)."""
    tree = k.stable                      # the compiled path gives its arrays back as objects here
    c = k.counters()
    out = {"counters": c, "stat": [k.ksm_stat(mm) for mm in mms],
           "work": (k.pages_hashed, k.compares, k.now_ms, k.seqnr, k.rmap_items),
           "machine": (m.frames_allocated, m.cow_faults, m.cow_ksm, m._next_pfn),
           "slots": [s.mm.pid for s in k.slots]}
    ptes = []
    for mm in mms:
        for a in sorted(mm.ptes):
            p = mm.ptes[a]
            f = p.frame
            fk = None if f is None else ("zero" if f is m.zero_frame else
                                          (f.pfn, f.ksm, f.mapcount, f.freed, _nkey(f.stable_node) if f.ksm else None))
            ptes.append((mm.pid, a, fk, p.writable, p.ksm_zero))
    out["ptes"] = ptes
    nodes = []
    for n in tree:
        nodes.append((_nkey(n), n.rb_red, _nkey(n.rb_parent), _nkey(n.rb_left), _nkey(n.rb_right),
                      n.rmap_hlist_len, n.prune_time if n.is_chain else None,
                      [(i.mm.pid, i.address) for i in n.hlist],
                      [(_nkey(d), d.rmap_hlist_len, [(i.mm.pid, i.address) for i in d.hlist], _nkey(d.chain))
                       for d in (n.dups or [])]))
    out["tree"] = nodes
    if tree.root is not None:
        tree.check()
    items = []
    for s in k.slots:
        it = s.next
        while it is not None:
            items.append((s.mm.pid, it.address, it.oldchecksum, it.age, it.remaining_skips, it.unstable, it.seq,
                          _nkey(it.head), it.ukey if it.unstable else None))
            it = it.next
    out["items"] = items
    return out


def pair(pages, nproc=1, listen=False, **kw):
    """Two identical machines with the pages in ``nproc`` processes, made mergeable; the first
    daemon compiled, the second the Python reference. ``listen``: a Recorder on each bus
    (``m.recorder``)."""
    out = []
    for compiled in (True, False):
        m = Machine()
        if listen:
            m.recorder = Recorder()
            m.bus.subscribe(m.recorder)
        kw2 = {"pages_to_scan": 10 ** 6, "smart_scan": False}
        kw2.update(kw)
        k = Ksmd(m, compiled=compiled, **kw2)
        mms = []
        per = -(-len(pages) // nproc)
        for p in range(nproc):
            chunk = pages[p * per:(p + 1) * per]
            if not chunk:
                continue
            [mm] = m.place_pages(PageSet.from_pages(chunk), base=0x7F0000000000 + p * 0x100000000)
            v = mm.vmas[0]
            k.madvise_mergeable(mm, v.start, v.end - v.start)
            mms.append(mm)
        k.set_run(1)
        out.append((m, k, mms))
    return out


def same(a, b):
    sa, sb = state(*a), state(*b)
    for key in sa:
        assert sa[key] == sb[key], key


def scan_both(a, b, n=1):
    for _ in range(n):
        a[1].full_scan()
        b[1].full_scan()
        assert a[1].counters() == b[1].counters()
        assert [a[1].ksm_stat(mm) for mm in a[2]] == [b[1].ksm_stat(mm) for mm in b[2]]


def test_the_compiled_path_runs():
    a, b = pair([b"*" * PAGE_SIZE] * 10)
    scan_both(a, b, 2)
    assert a[1]._fast is not None and a[1]._fast.active          # the arrays hold the state
    assert b[1]._fast is None
    assert a[1].counters()["pages_sharing"] == 9
    same(a, b)


def test_page_set_views_are_read_in_place():
    """Frames that are unwritten views of the page set are compared in place (no copy of
    their bytes); a written frame gets a copy of its own, and the results stay the Python path's."""
    pages = real_pages()[:200] + [b"v" * PAGE_SIZE] * 8
    a, b = pair(pages)
    scan_both(a, b, 2)
    fa = a[1]._fast
    if getattr(a[2][0].ptes[a[2][0].vmas[0].start].frame, "source", None) is None:
        pytest.skip("frames here hold their own bytes (no Frame.source)")
    assert fa.dnext == 0 and fa.src_ps is not None
    for (m, k, mms) in (a, b):
        for addr in sorted(mms[0].ptes)[:20]:
            mms[0].write(addr + 100, b"written")
    scan_both(a, b, 3)
    assert 0 < fa.dnext <= 20 + 8
    same(a, b)


def real_pages():
    ps = PageSet.open(default_pages_path())
    return [bytes(ps.page(i)) for i in range(len(ps))]


@pytest.mark.parametrize("kw", [{}, {"use_zero_pages": True}, {"max_page_sharing": 2},
                                {"smart_scan": True}, {"pages_to_scan": 37, "sleep_millisecs": 50,
                                                       "stable_node_chains_prune_millisecs": 100,
                                                       "max_page_sharing": 3}])
def test_real_pages_scan_by_scan(kw):
    pages = real_pages()
    a, b = pair(pages, nproc=3, **kw)
    scan_both(a, b, 6)
    same(a, b)
    # writes between scans: some pages change, some merged pages are written (COW), some zapped
    for (m, k, mms) in (a, b):
        for j, mm in enumerate(mms):
            addrs = sorted(mm.ptes)
            for i in range(0, len(addrs), 7):
                mm.write(addrs[i] + 8 * (i % 500), bytes([i % 256, j]))
            for i in range(3, len(addrs), 29):
                mm.zap(addrs[i])
    scan_both(a, b, 4)
    same(a, b)


def test_chains_prune_collapse_and_stale_dups():
    """Many identical pages with a small max_page_sharing make a chain of dups; COW writes
    empty some dups (stale), the prune walk drops them and a last dup collapses the chain."""
    pages = [b"*" * PAGE_SIZE] * 40 + [bytes([i]) * PAGE_SIZE for i in range(1, 30)] + [b"*" * PAGE_SIZE] * 9
    a, b = pair(pages, nproc=2, max_page_sharing=4, sleep_millisecs=500,
                stable_node_chains_prune_millisecs=1000)
    scan_both(a, b, 3)
    assert a[1].stable_node_chains == 1 and a[1].stable_node_dups > 5
    same(a, b)
    for rnd in range(4):
        for (m, k, mms) in (a, b):
            for mm in mms:
                for n, addr in enumerate(sorted(mm.ptes)):
                    f = mm.ptes[addr].frame
                    if f is not None and f.ksm and (n + rnd) % 3:
                        mm.write(addr, b"#" * (rnd + 1))
        scan_both(a, b, 3)
        same(a, b)


def test_unmerge_remerge_run2_and_exit():
    pages = [b"a" * PAGE_SIZE] * 30 + [bytes(PAGE_SIZE)] * 12 + [b"b" * PAGE_SIZE] * 5
    a, b = pair(pages, nproc=3, use_zero_pages=True, max_page_sharing=8)
    scan_both(a, b, 3)
    same(a, b)
    for (m, k, mms) in (a, b):
        v = mms[0].vmas[0]
        k.madvise_unmergeable(mms[0], v.start, v.end - v.start)
    scan_both(a, b, 2)
    same(a, b)
    for (m, k, mms) in (a, b):
        v = mms[0].vmas[0]
        k.madvise_mergeable(mms[0], v.start, v.end - v.start)
        k.exit_mm(mms[2])
    scan_both(a, b, 3)
    same(a, b)
    for (m, k, mms) in (a, b):
        k.set_run(2)
        k.set_run(1)
    scan_both(a, b, 3)
    same(a, b)


def test_pinned_page_breaks_the_provisional_merge():
    """A pinned page first in the unstable tree: the page merged provisionally is broken
    again (break_cow), on both paths, with the same frames allocated."""
    a, b = pair([b"*" * PAGE_SIZE] * 3)
    for (m, k, mms) in (a, b):
        mms[0].pin(mms[0].vmas[0].start)
    scan_both(a, b, 3)
    same(a, b)
    assert a[0].cow_ksm > 0
    for (m, k, mms) in (a, b):
        mms[0].unpin(mms[0].vmas[0].start)
    scan_both(a, b, 2)
    same(a, b)


def test_switching_between_paths_mid_run():
    """Python-path batches (do_scan) in the middle of compiled full scans: the state moves
    between arrays and objects exactly."""
    pages = real_pages()[:300] + [b"x" * PAGE_SIZE] * 20
    a, b = pair(pages, nproc=2, pages_to_scan=50, max_page_sharing=5)
    scan_both(a, b, 2)
    for (m, k, mms) in (a, b):
        k.do_scan()                      # half a batch into the next scan, by the Python path
        k.full_scan()                    # the rest of it (Python path: the cursor is mid-scan)
    scan_both(a, b, 2)
    same(a, b)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["write", "scan", "unmerge", "merge", "zap", "pin", "batch"]),
                          st.integers(0, 15), st.integers(0, 3)), max_size=40),
       st.booleans(), st.booleans(), st.integers(2, 4), st.sampled_from([10 ** 6, 1, 3, 7]), st.booleans())
def test_random_operations_agree(ops, zero, smart, mps, pages_to_scan, listen):
    """Random writes, scans, Python-path batches, unmerge/merge, zaps and pins on both paths;
    small batches advance the clock so that chains are pruned within a scan. With listeners,
    both buses get the same events in the same order."""
    pages = [bytes([i % 3]) * PAGE_SIZE for i in range(16)]
    a, b = pair(pages, nproc=2, listen=listen, use_zero_pages=zero, smart_scan=smart, max_page_sharing=mps,
                pages_to_scan=pages_to_scan, sleep_millisecs=10, stable_node_chains_prune_millisecs=30)
    for op, i, v in ops:
        for (m, k, mms) in (a, b):
            mm = mms[i % len(mms)]
            base = mm.vmas[0].start
            addr = base + (i // 2) * PAGE_SIZE
            if op == "write":
                mm.write(addr + v, bytes([v]))
            elif op == "scan":
                k.full_scan()
            elif op == "unmerge":
                k.madvise_unmergeable(mm, base, 8 * PAGE_SIZE)
            elif op == "merge":
                k.madvise_mergeable(mm, base, 8 * PAGE_SIZE)
            elif op == "zap":
                mm.zap(addr)
            elif op == "pin":
                if mm.ptes.get(addr) is not None and mm.ptes[addr].frame is not None and \
                        mm.ptes[addr].frame.pins:
                    mm.unpin(addr)
                else:
                    mm.pin(addr)
            else:
                k.do_scan(v + 1)
        assert a[1].counters() == b[1].counters()
    scan_both(a, b, 2)
    same(a, b)
    if listen:
        assert a[0].recorder.events == b[0].recorder.events


def test_events_are_the_python_paths():
    """With listeners the compiled scan still runs, and emits every event of the Python path,
    fields and order included (checksums, rmap_items created and freed, unstable inserts,
    merges of both kinds with their repointed PTEs, chains, dups, stale nodes, zero pages,
    the COW fault of a broken merge, full scans)."""
    pages = real_pages()[:300] + [b"*" * PAGE_SIZE] * 30 + [bytes(PAGE_SIZE)] * 6
    a, b = pair(pages, nproc=2, listen=True, max_page_sharing=4, use_zero_pages=True, pages_to_scan=50,
                sleep_millisecs=300, stable_node_chains_prune_millisecs=1000)
    for (m, k, mms) in (a, b):
        mms[0].pin(sorted(mms[0].ptes)[0])
    scan_both(a, b, 3)
    for rnd in range(2):
        for (m, k, mms) in (a, b):
            for mm in mms:
                for n, addr in enumerate(sorted(mm.ptes)):
                    f = mm.ptes[addr].frame
                    # round 0: every KSM page loses all its mappers (stale nodes); then some pages
                    if f is not None and ((rnd == 0 and f.ksm) or (n + rnd) % 4 == 0):
                        mm.write(addr, b"#" * (rnd + 1))
        scan_both(a, b, 3)
    assert a[1]._fast is not None and a[1]._fast.active
    ea, eb = a[0].recorder.events, b[0].recorder.events
    assert ea == eb
    kinds = {e.kind for e in ea}
    for kind in ("ksm.checksum", "ksm.rmap_item_created", "ksm.rmap_item_freed", "ksm.unstable_insert",
                 "ksm.merge", "ksm.chain_created", "ksm.dup_created", "ksm.stable_node_stale",
                 "ksm.zero_page_merge", "ksm.full_scan", "mm.cow_fault"):
        assert kind in kinds, kind
    same(a, b)


def test_compiled_rbtree_matches_lib_rbtree():
    """The array red-black tree (insert at the walk's leaf, erase, replace) against
    engine.rbtree on the same random sequence: the same shape and colours."""
    from engine import _ksm_fast as F
    Node = RbNode
    rng = np.random.default_rng(5)
    t = RBTree()
    N = np.zeros((600, F.N_COLS), np.int64)
    C = np.zeros(F.C_COLS, np.int64)
    C[F.C_ROOT] = -1
    objs = {}
    keys = {}
    for step in range(1500):
        if objs and rng.random() < 0.4:
            x = int(rng.choice(list(objs)))
            if rng.random() < 0.2:                      # replace by a new node with the same key
                y = max(list(objs) + [-1]) + 1 if len(objs) < 500 else None
                if y is not None and y < 600:
                    n = Node(objs[x].key)
                    t.replace(objs[x], n)
                    F.rb_replace(N, C, x, y)
                    del objs[x]
                    objs[y] = n
                    keys[y] = keys.pop(x)
                    continue
            t.erase(objs.pop(x))
            F.rb_erase(N, C, x)
            keys.pop(x)
        else:
            key = int(rng.integers(0, 10 ** 6))
            x = next(i for i in range(600) if i not in objs)
            # the walk: both trees find the same leaf
            parent, left, n = None, False, t.root
            while n is not None:
                parent, left = n, key < n.key
                n = n.rb_left if left else n.rb_right
            p = -1 if parent is None else next(i for i, o in objs.items() if o is parent)
            node = Node(key)
            t.link(node, parent, left)
            F.rb_link(N, C, x, p, left)
            objs[x] = node
            keys[x] = key
        ident = {id(o): i for i, o in objs.items()}

        def ix(o, ident=ident):
            return -1 if o is None else ident[id(o)]
        assert ix(t.root) == C[F.C_ROOT]
        for i, o in objs.items():
            assert (ix(o.rb_left), ix(o.rb_right), ix(o.rb_parent), int(o.rb_red)) == \
                (N[i, F.N_LEFT], N[i, F.N_RIGHT], N[i, F.N_PARENT], N[i, F.N_RED]), step
    t.check()


def test_batch_checksums_are_xxh64():
    """The compiled batch of checksums equals the xxhash package's XXH64 (and so
    Frame.content_hash) on real pages."""
    import xxhash

    from engine._ksm_fast import xxh64_pages
    ps = PageSet.open(default_pages_path())
    idx = np.arange(len(ps), dtype=np.int64)[::-1].copy()
    out = np.empty(len(idx), np.uint64)
    xxh64_pages(ps.array.reshape(-1), idx, out)
    assert out.tolist() == [xxhash.xxh64_intdigest(bytes(ps.page(int(i)))) for i in idx]


@pytest.mark.parametrize("kw", [{"use_zero_pages": True, "cow": list(range(0, 762, 11))},
                                {"max_page_sharing": 3, "smart_scan": 1,
                                 "trace": [(1, 0, 0, b"volatile"), (2, 5, 100, b"x" * 8), (4, 7, 4000, b"\0" * 96)]}])
def test_scenario_results_equal_the_python_path(monkeypatch, kw):
    """KsmScenario on real pages (what the kernel fidelity tests compare with the live ksmd):
    the same convergence points, writes, counters and ksm_stat with and without the compiled scan."""
    from engine.scenario import KsmScenario
    ps = PageSet.open(default_pages_path())
    sc = KsmScenario(ps, **kw)
    fast = sc.run_model()
    monkeypatch.setattr(Ksmd, "_fast_ok", lambda self: False)
    slow = sc.run_model()
    assert fast == slow


def test_segmented_scan_releases_the_page_set(monkeypatch):
    """On a large page set the compiled scan runs in segments and releases the file's pages
    between them: the same results as one segment and as the Python path, on the memory-mapped
    embedded page set (released for real) and with writes, chains and listeners."""
    import engine._ksm_fast as KF
    from engine.scenario import KsmScenario
    ps = PageSet.open(default_pages_path())
    released = []
    real_release = PageSet.release

    def counting_release(self, *a):
        released.append(a)
        return real_release(self, *a)
    monkeypatch.setattr(PageSet, "release", counting_release)
    monkeypatch.setattr(KF, "SEGMENT", 97)
    sc = KsmScenario(ps, max_page_sharing=3, use_zero_pages=True, cow=list(range(0, len(ps), 13)))
    seg = sc.run_model()
    assert len(released) >= len(ps) // 97
    monkeypatch.setattr(KF, "SEGMENT", 1 << 16)
    assert sc.run_model() == seg
    monkeypatch.setattr(Ksmd, "_fast_ok", lambda self: False)
    assert sc.run_model() == seg
    monkeypatch.undo()
    monkeypatch.setattr(KF, "SEGMENT", 5)
    pages = real_pages()[:150] + [b"*" * PAGE_SIZE] * 20
    a, b = pair(pages, nproc=2, listen=True, max_page_sharing=4, pages_to_scan=7, sleep_millisecs=100,
                stable_node_chains_prune_millisecs=300)
    scan_both(a, b, 3)
    for (m, k, mms) in (a, b):
        for addr in sorted(mms[1].ptes)[::3]:
            mms[1].write(addr, b"s")
    scan_both(a, b, 3)
    same(a, b)
    assert a[0].recorder.events == b[0].recorder.events
