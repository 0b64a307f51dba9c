"""Compiled ksmd scan: ``ksm_do_scan`` over compact, array-backed state (numba).

This is the fast path of :class:`engine.ksm.Ksmd` for a whole full scan when the unstable
index uses the page's own content hash and the daemon is a plain ``Ksmd`` (not a subclass such
as the 2.6.32 model). It follows the Python model step by step
(``_scan_get_next``, ``_get_next_rmap_item``, ``_should_skip``, ``_cmp_and_merge_page``, the
stable-tree walk with its chain handling, ``_unstable_search_insert``, the merges and the
counters), so every counter, every rmap_item, the stable tree's exact shape and every PTE
come out the same. Tests hold the two paths against each other.

State, while the fast path owns it (:class:`KsmArrays`):

* **rmap_items**: one row per item (``I``): the next item of its mm's address-sorted list,
  its slot, address, oldchecksum, age, remaining_skips, the unstable flag with its seqnr low
  byte and content key, the stable node it hangs on, its links in that node's hlist and in
  the unstable index's bucket, and its page's index in the current scan's visit list.
* **stable nodes** (``N``): one row per KSM page (a dup when it belongs to a chain) or chain:
  the kpfn's frame row, red-black links and colour (``lib/rbtree.c``'s rebalancing, as
  :mod:`engine.rbtree`), ``rmap_hlist_len`` (``STABLE_NODE_CHAIN`` for a chain), the hlist,
  the chain's dups list (head first) and ``chain_prune_time``.
* **frames** (``F``): one row per page frame the scan has seen or a stable node names: PageKsm,
  the stable node it belongs to, mapcount, pins, freed, its XXH64 and its 4096 bytes (one
  ``uint8`` row of a single array, compared 8 bytes at a time; the order is ``memcmp``'s).
* the unstable tree is an open-addressing index from the content hash to a bucket of items,
  built afresh for each full scan, exactly as the Python model's index (a match still needs
  all 4096 bytes equal).

The memory model itself is :mod:`engine.mm`'s (its page tables and frame table are arrays of
their own). Before each full scan the Python side lists the pages the walk will visit (mm,
address, pfn), read from each VMA's page-table columns at once, and refreshes the frame rows
(PageKsm, mapcount, pins and the cached hashes read from the machine's frame table by pfn in
one step); the compiled scan then records every change it makes to PTEs and frames
(write-protect and mark PageKsm, ``replace_page``, the KSM zero page, ``break_cow``) in order,
and the Python side replays them through :class:`engine.mm.Machine`, so the model ends as the
Python path leaves it. Nothing else runs during a full scan, so the order is the same. When
someone listens on the event bus, the scan's events go into the same log, and are emitted
between the replayed changes in the Python path's order (a listener sees every event; the
memory model it could read meanwhile is the replay's, the counters are the scan's final ones).
The rmap_items and stable nodes become objects again (exactly) whenever anything other than a
whole full scan needs them (:meth:`KsmArrays.to_objects`).

Content changes of a frame are found through its cached hash (the frame table's ``_hashed``
flag and ``_hash``): every write clears it (``Frame.write``), and a row whose frame's hash differs from the hash of the bytes it holds is
copied again. The Python model relies on the same invariant for its cached checksums.
"""
from __future__ import annotations

import operator

import numpy as np
from numba import njit

from .hashes import xxh64_at

PAGE_SIZE = 4096
WORDS = PAGE_SIZE // 8
PREFIX = 16                     # words of each page also kept in a compact array
STABLE_NODE_CHAIN = -1024
ZERO_CHECKSUM = 0x32D8BBDB
SEQNR_MASK = 0xFF

# rmap_item columns
(I_NEXT, I_SLOT, I_ADDR, I_OLDCK, I_AGE, I_SKIPS, I_UNST, I_SEQ, I_HEAD, I_UKEY, I_HNEXT, I_HPREV,
 I_UNEXT, I_UPREV, I_INTREE, I_VIS, I_UBKT) = range(17)
I_COLS = 17
# stable node columns
(N_FRAME, N_LEFT, N_RIGHT, N_PARENT, N_RED, N_HLEN, N_HFIRST, N_HLAST, N_HCOUNT, N_CHAIN, N_DFIRST,
 N_DLAST, N_DCOUNT, N_DNEXT, N_DPREV, N_PRUNE, N_LIVE) = range(17)
N_COLS = 17
# frame columns
F_KSM, F_NODE, F_MAPCOUNT, F_PINS, F_FREED, F_HASH, F_SRC, F_DROW = range(8)
F_COLS = 8
# per-slot columns
S_HEAD, S_RMAP, S_MERGING, S_ZERO = range(4)
S_COLS = 4
# counters and scalars
(C_SCANNED, C_SHARED, C_SHARING, C_UNSHARED, C_SKIPPED, C_RMAP, C_CHAINS, C_DUPS, C_ZERO, C_HASHED,
 C_COMPARES, C_NOW, C_SEQNR, C_ROOT, C_GEN, C_NACT, C_IFREE, C_INEXT, C_NFREE, C_NNEXT, C_EVENTS,
 C_CUR_S, C_CUR_J, C_CUR_PREV, C_CUR_CNT) = range(25)
C_COLS = 25
#: visits per call of the compiled scan on a large page set; the page set's pages the scan read
#: are released from the process between calls (they are read again from the file if needed)
SEGMENT = 1 << 16
# parameters
P_PAGES_TO_SCAN, P_SLEEP, P_MAXSHARE, P_USE_ZERO, P_SMART, P_PRUNE_MS = range(6)
P_COLS = 6
# recorded changes to the memory model, replayed in order by the Python side, and (when
# someone listens) the events of the scan, emitted in the same order: one log
A_KSM_WP, A_REPLACE, A_BREAK_COW, A_ZERO = 1, 2, 3, 4
(E_ITEM_NEW, E_ITEM_FREE, E_CHECKSUM, E_UNSTABLE, E_MERGE_STABLE, E_MERGE_UNSTABLE, E_ZERO, E_CHAIN, E_DUP,
 E_STALE) = range(10, 20)
ACT_COLS = 5
# a visit's frame after the scan changed it to something without a row
V_NEW = -2        # the private copy made by break_cow
V_ZERO = -3       # the shared zero page (use_zero_pages)


# ---- page contents -------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _first_diff(wa, wb, start):
    """Index of the first 8-byte word from ``start`` where two pages differ (WORDS if none),
    64 bytes a step."""
    z = np.uint64(0)
    i = start
    while i < WORDS:
        if ((wa[i] ^ wb[i]) | (wa[i + 1] ^ wb[i + 1]) | (wa[i + 2] ^ wb[i + 2]) | (wa[i + 3] ^ wb[i + 3])
                | (wa[i + 4] ^ wb[i + 4]) | (wa[i + 5] ^ wb[i + 5]) | (wa[i + 6] ^ wb[i + 6])
                | (wa[i + 7] ^ wb[i + 7])) != z:
            for w in range(i, i + 8):
                if wa[w] != wb[w]:
                    return w
        i += 8
    return WORDS


@njit(cache=True, nogil=True)
def _word_order(x, y):
    """memcmp order of two different little-endian 8-byte words: -1 or 1."""
    m = np.uint64(0xFF)
    for k in range(8):
        sh = np.uint64(8 * k)
        bx = (x >> sh) & m
        by = (y >> sh) & m
        if bx != by:
            return -1 if bx < by else 1
    return 0


@njit(cache=True, nogil=True)
def _words(W, WS, F, a):
    """Frame row a's bytes as 512 words: its own copy, or its page of the source page set."""
    return WS[F[a, F_DROW]] if F[a, F_SRC] else W[F[a, F_DROW]]


@njit(cache=True, nogil=True)
def page_cmp(W, WS, PW, F, a, b):
    """``memcmp`` of frame rows a and b: -1, 0 or 1. The first PREFIX words come from the
    compact copy ``PW`` (the stable tree's pages' prefixes stay in cache), the rest from
    the pages."""
    pa = PW[a]
    pb = PW[b]
    for i in range(PREFIX):
        if pa[i] != pb[i]:
            return _word_order(pa[i], pb[i])
    wa = _words(W, WS, F, a)
    wb = _words(W, WS, F, b)
    w = _first_diff(wa, wb, PREFIX)
    if w == WORDS:
        return 0
    return _word_order(wa[w], wb[w])


@njit(cache=True, nogil=True)
def page_eq(W, WS, F, a, b):
    return _first_diff(_words(W, WS, F, a), _words(W, WS, F, b), 0) == WORDS


@njit(cache=True, nogil=True)
def page_is_zero(W, WS, F, a):
    wa = _words(W, WS, F, a)
    z = np.uint64(0)
    for i in range(WORDS):
        if wa[i] != z:
            return False
    return True


@njit(cache=True, nogil=True)
def xxh64_pages(flat, idx, out):
    """XXH64 (seed 0) of pages ``idx`` of a page set's bytes ``flat``: the checksums of a
    scan's new pages in one batch."""
    for i in range(idx.shape[0]):
        out[i] = xxh64_at(flat, idx[i] * PAGE_SIZE, PAGE_SIZE, np.uint64(0))


# ---- red-black tree over node rows (lib/rbtree.c, as engine.rbtree) ------------------------
@njit(cache=True, nogil=True)
def _change_child(N, C, old, new, parent):
    if parent == -1:
        C[C_ROOT] = new
    elif N[parent, N_LEFT] == old:
        N[parent, N_LEFT] = new
    else:
        N[parent, N_RIGHT] = new


@njit(cache=True, nogil=True)
def _rotate_set_parents(N, C, old, new, red):
    parent = N[old, N_PARENT]
    N[new, N_PARENT] = parent
    N[new, N_RED] = N[old, N_RED]
    N[old, N_PARENT] = new
    N[old, N_RED] = red
    _change_child(N, C, old, new, parent)


@njit(cache=True, nogil=True)
def _sides(right):
    """The child-link columns (this side, the other side) for the right side when ``right``,
    else for the left: the one place where left and right are told apart."""
    if right:
        return N_RIGHT, N_LEFT
    return N_LEFT, N_RIGHT


@njit(cache=True, nogil=True)
def _set_parent_black(N, n, parent):
    if n != -1:
        N[n, N_PARENT] = parent
        N[n, N_RED] = 0


@njit(cache=True, nogil=True)
def rb_link(N, C, node, parent, left):
    N[node, N_LEFT] = -1
    N[node, N_RIGHT] = -1
    N[node, N_PARENT] = parent
    N[node, N_RED] = 1
    if parent == -1:
        C[C_ROOT] = node
    else:
        N[parent, N_LEFT if left else N_RIGHT] = node
    _insert_color(N, C, node)


@njit(cache=True, nogil=True)
def _insert_color(N, C, node):
    """``rb_insert_color``'s rebalancing, its two mirror halves as one: ``side`` is the column
    of the child link on the side where ``parent`` hangs from ``gparent``, ``other`` the
    opposite one (left and right swap places, nothing else changes)."""
    parent = N[node, N_PARENT]
    while True:
        if parent == -1:
            N[node, N_RED] = 0
            return
        if not N[parent, N_RED]:
            return
        gparent = N[parent, N_PARENT]
        side, other = _sides(N[gparent, N_RIGHT] == parent)
        tmp = N[gparent, other]                         # the uncle
        if tmp != -1 and N[tmp, N_RED]:                 # case 1: red uncle, flip colours
            N[tmp, N_RED] = 0
            N[parent, N_RED] = 0
            node = gparent
            parent = N[node, N_PARENT]
            N[node, N_RED] = 1
            continue
        tmp = N[parent, other]
        if node == tmp:                                 # case 2: node is the inner child,
            tmp = N[node, side]                         # rotate it up over parent
            N[parent, other] = tmp
            N[node, side] = parent
            _set_parent_black(N, tmp, parent)
            N[parent, N_PARENT] = node
            N[parent, N_RED] = 1
            parent = node
            tmp = N[node, other]
        N[gparent, side] = tmp                          # case 3: rotate parent up over gparent
        N[parent, other] = gparent
        _set_parent_black(N, tmp, gparent)
        _rotate_set_parents(N, C, gparent, parent, 1)
        return


@njit(cache=True, nogil=True)
def rb_replace(N, C, victim, new):
    parent = N[victim, N_PARENT]
    left = N[victim, N_LEFT]
    right = N[victim, N_RIGHT]
    N[new, N_LEFT] = left
    N[new, N_RIGHT] = right
    N[new, N_PARENT] = parent
    N[new, N_RED] = N[victim, N_RED]
    if left != -1:
        N[left, N_PARENT] = new
    if right != -1:
        N[right, N_PARENT] = new
    _change_child(N, C, victim, new, parent)
    N[victim, N_LEFT] = -1
    N[victim, N_RIGHT] = -1
    N[victim, N_PARENT] = -1


@njit(cache=True, nogil=True)
def rb_erase(N, C, node):
    """``rb_erase``: a node with one child or none gives its place and colour to that child
    (on either side); one with two children to its in-order successor, whose right child
    takes the successor's old place. Rebalances where a black node left without a stand-in."""
    left = N[node, N_LEFT]
    right = N[node, N_RIGHT]
    rebalance = -1
    if left == -1 or right == -1:
        child = right if left == -1 else left
        parent = N[node, N_PARENT]
        _change_child(N, C, node, child, parent)
        if child != -1:
            N[child, N_PARENT] = parent
            N[child, N_RED] = N[node, N_RED]
        elif not N[node, N_RED]:
            rebalance = parent
    else:
        successor = parent = right      # parent: where the successor's right child goes
        tmp = N[right, N_LEFT]
        while tmp != -1:
            parent = successor
            successor = tmp
            tmp = N[tmp, N_LEFT]
        child2 = N[successor, N_RIGHT]
        if successor != right:
            N[parent, N_LEFT] = child2
            N[successor, N_RIGHT] = right
            N[right, N_PARENT] = successor
        N[successor, N_LEFT] = left
        N[left, N_PARENT] = successor
        grand = N[node, N_PARENT]
        _change_child(N, C, node, successor, grand)
        if child2 != -1:
            N[child2, N_PARENT] = parent
            N[child2, N_RED] = 0
        elif not N[successor, N_RED]:
            rebalance = parent
        N[successor, N_PARENT] = grand
        N[successor, N_RED] = N[node, N_RED]
    N[node, N_LEFT] = -1
    N[node, N_RIGHT] = -1
    N[node, N_PARENT] = -1
    if rebalance != -1:
        _erase_color(N, C, rebalance)


@njit(cache=True, nogil=True)
def _erase_color(N, C, parent):
    """``rb_erase``'s rebalancing after a black node left ``parent``'s subtree, its two mirror
    halves as one: ``side`` is the column of the child link on the side that lost the black
    node (``node``, -1 at first), ``other`` the sibling's."""
    node = -1
    while True:
        side, other = _sides(N[parent, N_RIGHT] == node)
        sibling = N[parent, other]
        if N[sibling, N_RED]:                           # case 1: red sibling, rotate it up
            tmp1 = N[sibling, side]
            N[parent, other] = tmp1
            N[sibling, side] = parent
            N[tmp1, N_PARENT] = parent
            N[tmp1, N_RED] = 0
            _rotate_set_parents(N, C, parent, sibling, 1)
            sibling = tmp1
        tmp1 = N[sibling, other]
        if tmp1 == -1 or not N[tmp1, N_RED]:
            tmp2 = N[sibling, side]
            if tmp2 == -1 or not N[tmp2, N_RED]:        # case 2: black nephews, recolour
                N[sibling, N_RED] = 1
                if N[parent, N_RED]:
                    N[parent, N_RED] = 0
                else:
                    node = parent
                    parent = N[node, N_PARENT]
                    if parent != -1:
                        continue
                return
            tmp1 = N[tmp2, other]                       # case 3: inner nephew red,
            N[sibling, side] = tmp1                     # rotate it up over sibling
            N[tmp2, other] = sibling
            N[parent, other] = tmp2
            _set_parent_black(N, tmp1, sibling)
            tmp1 = sibling
            sibling = tmp2
        tmp2 = N[sibling, side]                         # case 4: outer nephew red,
        N[parent, other] = tmp2                         # rotate sibling up over parent
        N[sibling, side] = parent
        N[tmp1, N_PARENT] = sibling
        N[tmp1, N_RED] = 0
        if tmp2 != -1:
            N[tmp2, N_PARENT] = parent
        _rotate_set_parents(N, C, parent, sibling, 0)
        return


# ---- allocation ----------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _take_row(L, C, FREE, NEXT, LINK):
    """A row of ``L``: the head of its free list (``C[FREE]``, linked through column ``LINK``),
    else the first row never used (``C[NEXT]``); -1 when all are in use."""
    r = C[FREE]
    if r != -1:
        C[FREE] = L[r, LINK]
        return r
    r = C[NEXT]
    if r >= L.shape[0]:
        return -1
    C[NEXT] = r + 1
    return r


@njit(cache=True, nogil=True)
def _alloc_node(N, C):
    n = _take_row(N, C, C_NFREE, C_NNEXT, N_DNEXT)
    if n == -1:
        raise RuntimeError("ksm: stable node rows exhausted")     # the caller's bound is wrong
    N[n, N_FRAME] = -1
    N[n, N_LEFT] = -1
    N[n, N_RIGHT] = -1
    N[n, N_PARENT] = -1
    N[n, N_RED] = 0
    N[n, N_HLEN] = 0
    N[n, N_HFIRST] = -1
    N[n, N_HLAST] = -1
    N[n, N_HCOUNT] = 0
    N[n, N_CHAIN] = -1
    N[n, N_DFIRST] = -1
    N[n, N_DLAST] = -1
    N[n, N_DCOUNT] = 0
    N[n, N_DNEXT] = -1
    N[n, N_DPREV] = -1
    N[n, N_PRUNE] = 0
    N[n, N_LIVE] = 1
    return n


@njit(cache=True, nogil=True)
def _free_node(N, C, n):
    N[n, N_LIVE] = 0
    N[n, N_DNEXT] = C[C_NFREE]
    C[C_NFREE] = n


@njit(cache=True, nogil=True)
def _alloc_item(I, C):
    it = _take_row(I, C, C_IFREE, C_INEXT, I_NEXT)
    if it == -1:
        raise RuntimeError("ksm: rmap_item rows exhausted")
    for c in range(I_COLS):
        I[it, c] = 0
    I[it, I_NEXT] = -1
    I[it, I_HEAD] = -1
    I[it, I_HNEXT] = -1
    I[it, I_HPREV] = -1
    I[it, I_UNEXT] = -1
    I[it, I_UPREV] = -1
    I[it, I_INTREE] = -1
    I[it, I_VIS] = -1
    I[it, I_UBKT] = -1
    return it


@njit(cache=True, nogil=True)
def _free_item(I, S, C, ACT, it):
    _ev(ACT, C, E_ITEM_FREE, I[it, I_SLOT], I[it, I_ADDR], 0, 0)
    C[C_RMAP] -= 1
    S[I[it, I_SLOT], S_RMAP] -= 1
    I[it, I_SLOT] = -1
    I[it, I_NEXT] = C[C_IFREE]
    C[C_IFREE] = it


# ---- lists: a node's hlist (items), a chain's dups, an unstable bucket ------------------------
# Each list is doubly linked through two columns (next, prev) of its members' rows; its
# first and last member are kept wherever the list's owner keeps them, so the two helpers
# take them and return them as they are after the change.
@njit(cache=True, nogil=True)
def _list_append(L, x, NEXT, PREV, first, last):
    """Link row ``x`` of ``L`` at the tail; returns the new (first, last)."""
    L[x, PREV] = last
    L[x, NEXT] = -1
    if last == -1:
        first = x
    else:
        L[last, NEXT] = x
    return first, x


@njit(cache=True, nogil=True)
def _list_unlink(L, x, NEXT, PREV, first, last):
    """Unlink row ``x`` of ``L``; returns the new (first, last)."""
    p = L[x, PREV]
    q = L[x, NEXT]
    if p == -1:
        first = q
    else:
        L[p, NEXT] = q
    if q == -1:
        last = p
    else:
        L[q, PREV] = p
    L[x, PREV] = -1
    L[x, NEXT] = -1
    return first, last


@njit(cache=True, nogil=True)
def _hlist_append(I, N, node, it):
    N[node, N_HFIRST], N[node, N_HLAST] = _list_append(I, it, I_HNEXT, I_HPREV,
                                                       N[node, N_HFIRST], N[node, N_HLAST])
    N[node, N_HCOUNT] += 1


@njit(cache=True, nogil=True)
def _hlist_unlink(I, N, node, it):
    N[node, N_HFIRST], N[node, N_HLAST] = _list_unlink(I, it, I_HNEXT, I_HPREV,
                                                       N[node, N_HFIRST], N[node, N_HLAST])
    N[node, N_HCOUNT] -= 1


@njit(cache=True, nogil=True)
def _dup_unlink(N, chain, dup):
    N[chain, N_DFIRST], N[chain, N_DLAST] = _list_unlink(N, dup, N_DNEXT, N_DPREV,
                                                         N[chain, N_DFIRST], N[chain, N_DLAST])
    N[chain, N_DCOUNT] -= 1


@njit(cache=True, nogil=True)
def _dup_push_front(N, chain, dup):
    first = N[chain, N_DFIRST]
    N[dup, N_DPREV] = -1
    N[dup, N_DNEXT] = first
    if first == -1:
        N[chain, N_DLAST] = dup
    else:
        N[first, N_DPREV] = dup
    N[chain, N_DFIRST] = dup
    N[chain, N_DCOUNT] += 1


@njit(cache=True, nogil=True)
def _mix(key):
    x = np.uint64(key)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    return x


@njit(cache=True, nogil=True)
def _ht_slot(HK, HU, key, create):
    """The index's slot for ``key``; -1 when absent and not ``create``."""
    mask = np.uint64(HK.shape[0] - 1)
    i = np.int64(_mix(key) & mask)
    while HU[i]:
        if HK[i] == key:
            return i
        i = (i + 1) & (HK.shape[0] - 1)
    if not create:
        return -1
    HU[i] = 1
    HK[i] = key
    return i


# ---- ksm.c ---------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _candidate(N, P, node, offset):
    if node == -1:
        return False
    h = N[node, N_HLEN]
    return h > 0 and h + offset < P[P_MAXSHARE]


@njit(cache=True, nogil=True)
def _remove_node_from_stable_tree(I, N, F, S, C, ACT, node):
    n = N[node, N_HCOUNT]
    if n:
        C[C_SHARING] -= n - 1
        C[C_SHARED] -= 1
        it = N[node, N_HFIRST]
        while it != -1:
            nxt = I[it, I_HNEXT]
            S[I[it, I_SLOT], S_MERGING] -= 1
            I[it, I_HEAD] = -1
            I[it, I_HNEXT] = -1
            I[it, I_HPREV] = -1
            it = nxt
    N[node, N_HLEN] -= n
    N[node, N_HFIRST] = -1
    N[node, N_HLAST] = -1
    N[node, N_HCOUNT] = 0
    _ev(ACT, C, E_STALE, N[node, N_FRAME], n, 0, 0)
    chain = N[node, N_CHAIN]
    if chain != -1:
        _dup_unlink(N, chain, node)
        N[node, N_CHAIN] = -1
        C[C_DUPS] -= 1
    else:
        rb_erase(N, C, node)
    _free_node(N, C, node)


@njit(cache=True, nogil=True)
def _get_folio(I, N, F, S, C, ACT, node):
    f = N[node, N_FRAME]
    if F[f, F_FREED] or F[f, F_NODE] != node:
        _remove_node_from_stable_tree(I, N, F, S, C, ACT, node)
        return -1
    return f


@njit(cache=True, nogil=True)
def _free_chain(N, C, chain):
    rb_erase(N, C, chain)
    C[C_CHAINS] -= 1
    _free_node(N, C, chain)


@njit(cache=True, nogil=True)
def _dup_any(N, C, node):
    if N[node, N_HLEN] != STABLE_NODE_CHAIN:
        return node
    if N[node, N_DCOUNT] == 0:
        _free_chain(N, C, node)
        return -1
    return N[node, N_DFIRST]


@njit(cache=True, nogil=True)
def _chain(I, N, F, S, C, P, ACT, node, prune):
    """``__stable_node_chain``: (dup or -1, node after a possible collapse, frame or -1)."""
    if N[node, N_HLEN] != STABLE_NODE_CHAIN:
        if _candidate(N, P, node, 0):
            return node, node, _get_folio(I, N, F, S, C, ACT, node)
        return -1, node, -1
    if not prune or C[C_NOW] < N[node, N_PRUNE] + P[P_PRUNE_MS]:
        prune = False
    else:
        N[node, N_PRUNE] = C[C_NOW]
    found = -1
    found_len = 0
    tree_frame = -1
    dup = N[node, N_DFIRST]
    while dup != -1:
        nxt = N[dup, N_DNEXT]
        f = _get_folio(I, N, F, S, C, ACT, dup)
        if f != -1:
            if found == -1 or (_candidate(N, P, dup, 0) and (not _candidate(N, P, found, 0)
                                                            or N[dup, N_HLEN] > found_len)):
                found = dup
                found_len = N[dup, N_HLEN]
                tree_frame = f
                if not prune and _candidate(N, P, found, 0):
                    break
        dup = nxt
    if found != -1:
        if N[node, N_DCOUNT] == 1:
            rb_replace(N, C, node, found)
            N[found, N_CHAIN] = -1
            N[found, N_DNEXT] = -1
            N[found, N_DPREV] = -1
            N[node, N_DFIRST] = -1
            N[node, N_DLAST] = -1
            N[node, N_DCOUNT] = 0
            C[C_CHAINS] -= 1
            C[C_DUPS] -= 1
            _free_node(N, C, node)
            node = found
        elif N[node, N_DFIRST] != found and _candidate(N, P, found, 1):
            _dup_unlink(N, node, found)
            _dup_push_front(N, node, found)
    return found, node, tree_frame


@njit(cache=True, nogil=True)
def _walk(I, N, F, S, C, P, ACT, W, WS, PW, page, prune):
    """The stable-tree walk of ``stable_tree_search`` / ``stable_tree_insert``: (node, dup,
    -1, 0) on a match, else (-1, -1, parent, left) where a new node would be linked."""
    while True:
        parent = -1
        left = False
        n = C[C_ROOT]
        restart = False
        while n != -1:
            dup, n, tree_frame = _chain(I, N, F, S, C, P, ACT, n, prune)
            if dup == -1:
                anyn = _dup_any(N, C, n)
                if anyn == -1:
                    restart = True
                    break
                tree_frame = _get_folio(I, N, F, S, C, ACT, anyn)
            if tree_frame == -1:
                restart = True
                break
            C[C_COMPARES] += 1
            c = page_cmp(W, WS, PW, F, page, tree_frame)
            if c == 0:
                return n, dup, -1, False
            parent = n
            left = c < 0
            n = N[n, N_LEFT if left else N_RIGHT]
        if not restart:
            return -1, -1, parent, left


@njit(cache=True, nogil=True)
def _stable_tree_search(I, N, F, S, C, P, ACT, W, WS, PW, page):
    if F[page, F_KSM] and F[page, F_NODE] != -1:
        return page
    node, dup, _p, _l = _walk(I, N, F, S, C, P, ACT, W, WS, PW, page, True)
    if node == -1 or dup == -1 or not _candidate(N, P, dup, 0):
        return -1
    return _get_folio(I, N, F, S, C, ACT, dup)


@njit(cache=True, nogil=True)
def _stable_tree_insert(I, N, F, S, C, P, ACT, W, WS, PW, kframe):
    node, _dup, parent, left = _walk(I, N, F, S, C, P, ACT, W, WS, PW, kframe, False)
    new = _alloc_node(N, C)
    N[new, N_FRAME] = kframe
    if node == -1:
        rb_link(N, C, new, parent, left)
    else:
        if N[node, N_HLEN] != STABLE_NODE_CHAIN:
            chain = _alloc_node(N, C)
            N[chain, N_HLEN] = STABLE_NODE_CHAIN
            N[chain, N_PRUNE] = C[C_NOW]
            rb_replace(N, C, node, chain)
            _dup_push_front(N, chain, node)
            N[node, N_CHAIN] = chain
            C[C_CHAINS] += 1
            C[C_DUPS] += 1
            _ev(ACT, C, E_CHAIN, N[node, N_FRAME], 0, 0, 0)
            node = chain
        _dup_push_front(N, node, new)
        N[new, N_CHAIN] = node
        C[C_DUPS] += 1
        _ev(ACT, C, E_DUP, kframe, N[node, N_DCOUNT], 0, 0)
    F[kframe, F_NODE] = new
    return new


@njit(cache=True, nogil=True)
def _stable_tree_append(I, N, S, C, it, node):
    N[node, N_HLEN] += 1
    I[it, I_HEAD] = node
    _hlist_append(I, N, node, it)
    if N[node, N_HCOUNT] > 1:
        C[C_SHARING] += 1
    else:
        C[C_SHARED] += 1
    S[I[it, I_SLOT], S_MERGING] += 1


@njit(cache=True, nogil=True)
def _remove_from_tree(I, N, F, S, C, ACT, HF, HL, it):
    node = I[it, I_HEAD]
    if node != -1:
        if _get_folio(I, N, F, S, C, ACT, node) == -1:
            return
        _hlist_unlink(I, N, node, it)
        if N[node, N_HCOUNT] > 0:
            C[C_SHARING] -= 1
        else:
            C[C_SHARED] -= 1
        S[I[it, I_SLOT], S_MERGING] -= 1
        N[node, N_HLEN] -= 1
        I[it, I_HEAD] = -1
    elif I[it, I_UNST]:
        if I[it, I_INTREE] == C[C_GEN]:
            b = I[it, I_UBKT]
            HF[b], HL[b] = _list_unlink(I, it, I_UNEXT, I_UPREV, HF[b], HL[b])
            I[it, I_INTREE] = -1
        C[C_UNSHARED] -= 1
        I[it, I_UNST] = 0


@njit(cache=True, nogil=True)
def _log(ACT, C, kind, a, b, c, d):
    k = C[C_NACT]
    if k >= ACT.shape[0]:
        raise RuntimeError("ksm: change log full")
    ACT[k, 0] = kind
    ACT[k, 1] = a
    ACT[k, 2] = b
    ACT[k, 3] = c
    ACT[k, 4] = d
    C[C_NACT] = k + 1


@njit(cache=True, nogil=True)
def _act(ACT, C, kind, j, arg):
    _log(ACT, C, kind, j, arg, 0, 0)


@njit(cache=True, nogil=True)
def _ev(ACT, C, kind, a, b, c, d):
    """An event for the listeners (logged only while someone listens)."""
    if C[C_EVENTS]:
        _log(ACT, C, kind, a, b, c, d)


@njit(cache=True, nogil=True)
def _put_frame(F, f):
    F[f, F_MAPCOUNT] -= 1
    if F[f, F_MAPCOUNT] == 0:
        F[f, F_FREED] = 1


@njit(cache=True, nogil=True)
def _merge_one_page(I, N, F, S, C, W, WS, VF, ACT, HF, HL, it, page, kpage):
    """``try_to_merge_with_ksm_page`` + ``try_to_merge_one_page`` (the VMA and PTE checks
    hold inside a scan: nothing else changes the mapping meanwhile)."""
    j = I[it, I_VIS]
    if page != kpage:
        if F[page, F_PINS] != 0:
            return False
        if kpage == -1:
            F[page, F_KSM] = 1
            _act(ACT, C, A_KSM_WP, j, 0)
        else:
            C[C_COMPARES] += 1
            if not page_eq(W, WS, F, page, kpage):
                return False
            _act(ACT, C, A_REPLACE, j, kpage)
            F[kpage, F_MAPCOUNT] += 1
            VF[j] = kpage
            _put_frame(F, page)
    _remove_from_tree(I, N, F, S, C, ACT, HF, HL, it)
    return True


@njit(cache=True, nogil=True)
def _unstable_search_insert(I, F, C, ACT, VF, W, WS, HK, HU, HF, HL, it, page, key):
    b = _ht_slot(HK, HU, key, False)
    if b != -1:
        t = HF[b]
        while t != -1:
            tp = VF[I[t, I_VIS]]
            if tp < 0:
                return -1, -1
            if tp == page:
                return -1, -1
            C[C_COMPARES] += 1
            if page_eq(W, WS, F, tp, page):
                return t, tp
            t = I[t, I_UNEXT]
    else:
        b = _ht_slot(HK, HU, key, True)
        HF[b] = -1
        HL[b] = -1
    I[it, I_UNST] = 1
    I[it, I_SEQ] = C[C_SEQNR] & SEQNR_MASK
    I[it, I_UKEY] = key
    I[it, I_INTREE] = C[C_GEN]
    I[it, I_UBKT] = b
    HF[b], HL[b] = _list_append(I, it, I_UNEXT, I_UPREV, HF[b], HL[b])
    C[C_UNSHARED] += 1
    _ev(ACT, C, E_UNSTABLE, I[it, I_VIS], 0, 0, 0)
    return -1, -1


@njit(cache=True, nogil=True)
def _cmp_and_merge_page(I, N, F, S, C, P, W, WS, PW, VF, ACT, HK, HU, HF, HL, it):
    j = I[it, I_VIS]
    page = VF[j]
    node = F[page, F_NODE] if F[page, F_KSM] else -1
    key = F[page, F_HASH]
    if node != -1:
        if I[it, I_HEAD] == node:
            return
    else:
        _remove_from_tree(I, N, F, S, C, ACT, HF, HL, it)
        C[C_HASHED] += 1
        checksum = key & 0xFFFFFFFF
        changed = I[it, I_OLDCK] != checksum
        _ev(ACT, C, E_CHECKSUM, j, checksum, 1 if changed else 0, 0)
        if changed:
            I[it, I_OLDCK] = checksum
            return
        if P[P_USE_ZERO] and checksum == ZERO_CHECKSUM:
            # merge_with_ksm_zero_page (the VMA check holds inside a scan)
            C[C_COMPARES] += 1
            if page_is_zero(W, WS, F, page):
                _act(ACT, C, A_ZERO, j, 0)
                _put_frame(F, page)
                VF[j] = V_ZERO
                C[C_ZERO] += 1
                S[I[it, I_SLOT], S_ZERO] += 1
                _ev(ACT, C, E_ZERO, j, page, 0, 0)
                return
    kpage = _stable_tree_search(I, N, F, S, C, P, ACT, W, WS, PW, page)
    if kpage == page and I[it, I_HEAD] == node:
        return
    _remove_from_tree(I, N, F, S, C, ACT, HF, HL, it)
    if kpage != -1:
        if _merge_one_page(I, N, F, S, C, W, WS, VF, ACT, HF, HL, it, page, kpage):
            _stable_tree_append(I, N, S, C, it, F[kpage, F_NODE])
            _ev(ACT, C, E_MERGE_STABLE, j, kpage, page, 0)
        return
    t, tree_page = _unstable_search_insert(I, F, C, ACT, VF, W, WS, HK, HU, HF, HL, it, page, key)
    if t == -1:
        return
    if not _merge_one_page(I, N, F, S, C, W, WS, VF, ACT, HF, HL, it, page, -1):
        return
    if not _merge_one_page(I, N, F, S, C, W, WS, VF, ACT, HF, HL, t, tree_page, page):
        # break_cow: the page made KSM above gets a private copy again
        _act(ACT, C, A_BREAK_COW, j, 0)
        _put_frame(F, page)
        VF[j] = V_NEW
        return
    snode = _stable_tree_insert(I, N, F, S, C, P, ACT, W, WS, PW, page)
    _stable_tree_append(I, N, S, C, t, snode)
    _stable_tree_append(I, N, S, C, it, snode)
    _ev(ACT, C, E_MERGE_UNSTABLE, j, I[t, I_VIS], tree_page, page)


@njit(cache=True, nogil=True)
def _should_skip(I, N, F, S, C, ACT, HF, HL, it, frame):
    if F[frame, F_KSM]:
        return False
    age = I[it, I_AGE]
    if age != 255:
        I[it, I_AGE] = age + 1
    if age < 3:
        return False
    if not I[it, I_SKIPS]:
        I[it, I_SKIPS] = 1 if age <= 3 else 2 if age <= 5 else 4 if age <= 8 else 8
        return False
    C[C_SKIPPED] += 1
    I[it, I_SKIPS] -= 1
    _remove_from_tree(I, N, F, S, C, ACT, HF, HL, it)
    return True


@njit(cache=True, nogil=True)
def _first(I, S, fid, prev):
    return S[fid, S_HEAD] if prev == -1 else I[prev, I_NEXT]


@njit(cache=True, nogil=True)
def _set_next(I, S, fid, prev, it):
    if prev == -1:
        S[fid, S_HEAD] = it
    else:
        I[prev, I_NEXT] = it


@njit(cache=True, nogil=True)
def full_scan(I, N, F, S, C, P, W, WS, PW, SL, VA, VF, ACT, HK, HU, HF, HL, j_stop):
    """One full scan over the visit list (``SL``: per slot in order, its row and the range
    of its pages in ``VA``/``VF``): the page walk with its rmap_item list, smart scan and
    ``cmp_and_merge_page`` for each page; ``now`` advances by ``sleep_millisecs`` after
    every ``pages_to_scan`` pages, as the batches of ``ksm_do_scan`` do.

    The scan stops before visit ``j_stop`` (the cursor kept in ``C``) and goes on from there
    at the next call; returns True once the scan is complete."""
    s = C[C_CUR_S]
    j = C[C_CUR_J]
    prev = C[C_CUR_PREV]
    cnt = C[C_CUR_CNT]
    while s < SL.shape[0]:
        fid = SL[s, 0]
        hi = SL[s, 2]
        while j < hi:
            if j >= j_stop:
                C[C_CUR_S] = s
                C[C_CUR_J] = j
                C[C_CUR_PREV] = prev
                C[C_CUR_CNT] = cnt
                return False
            addr = VA[j]
            # get_next_rmap_item: free the items of vanished pages, reuse or link one
            it = _first(I, S, fid, prev)
            found = -1
            while it != -1:
                a = I[it, I_ADDR]
                if a == addr:
                    found = it
                    break
                if a > addr:
                    break
                nxt = I[it, I_NEXT]
                _set_next(I, S, fid, prev, nxt)
                _remove_from_tree(I, N, F, S, C, ACT, HF, HL, it)
                _free_item(I, S, C, ACT, it)
                it = nxt
            if found == -1:
                found = _alloc_item(I, C)
                I[found, I_SLOT] = fid
                I[found, I_ADDR] = addr
                I[found, I_NEXT] = _first(I, S, fid, prev)
                _set_next(I, S, fid, prev, found)
                C[C_RMAP] += 1
                S[fid, S_RMAP] += 1
                _ev(ACT, C, E_ITEM_NEW, j, 0, 0, 0)
            prev = found
            I[found, I_VIS] = j
            if not (P[P_SMART] and _should_skip(I, N, F, S, C, ACT, HF, HL, found, VF[j])):
                _cmp_and_merge_page(I, N, F, S, C, P, W, WS, PW, VF, ACT, HK, HU, HF, HL, found)
                C[C_SCANNED] += 1
                cnt += 1
                if cnt == P[P_PAGES_TO_SCAN]:
                    cnt = 0
                    C[C_NOW] += P[P_SLEEP]
            j += 1
        # remove_trailing_rmap_items
        it = _first(I, S, fid, prev)
        _set_next(I, S, fid, prev, -1)
        while it != -1:
            nxt = I[it, I_NEXT]
            _remove_from_tree(I, N, F, S, C, ACT, HF, HL, it)
            _free_item(I, S, C, ACT, it)
            it = nxt
        s += 1
        prev = -1
        if s < SL.shape[0]:
            j = SL[s, 1]
    C[C_NOW] += P[P_SLEEP]          # the batch in which the scan ends
    C[C_CUR_S] = 0
    C[C_CUR_J] = 0
    C[C_CUR_PREV] = -1
    C[C_CUR_CNT] = 0
    return True


# ==== the Python side: state in arrays, the visit list, the replay, conversions ==============
class _NoFrame:
    """What a free frame row holds: counts as freed, never visited."""
    __slots__ = ()
    pfn = -1
    mapcount = 0
    pins = 0
    freed = True
    ksm = False
    _hash = None
    stable_node = None


_NOFRAME = _NoFrame()
_get_hash = operator.attrgetter("_hash")
_get_ksm = operator.attrgetter("ksm")
_get_mapcount = operator.attrgetter("mapcount")
_get_pins = operator.attrgetter("pins")
_get_frame = operator.attrgetter("frame")
_HASH_UNSET = np.int64(-0x7FFFFFFFFFFFFFFF)     # a frame row whose bytes are not loaded yet
_NO_SOURCE = np.zeros((1, WORDS), np.uint64)


def _grow(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` with room for ``rows`` rows (doubling). The new rows are zeros from ``np.zeros``,
    so memory is committed only as rows are used: capacity reserved for a scan's worst case
    costs nothing until it is needed."""
    if a.shape[0] >= rows:
        return a
    n = max(rows, 2 * a.shape[0], 64)
    b = np.zeros((n,) + a.shape[1:], a.dtype)
    b[:a.shape[0]] = a
    return b


def _frame_bytes(f):
    buf = getattr(f, "buffer", None)
    return np.frombuffer(buf() if buf is not None else f.data, np.uint8, PAGE_SIZE)


class KsmArrays:
    """A :class:`~engine.ksm.Ksmd`'s rmap_items and stable tree in arrays, and the frames the
    scan reads. ``active`` while the arrays (not the objects) hold the daemon's state."""

    def __init__(self):
        self.active = False
        self.I = np.zeros((0, I_COLS), np.int64)
        self.N = np.zeros((0, N_COLS), np.int64)
        self.F = np.zeros((0, F_COLS), np.int64)
        self.data = np.zeros((0, PAGE_SIZE), np.uint8)
        self.PW = np.zeros((0, PREFIX), np.uint64)
        self.S = np.zeros((0, S_COLS), np.int64)
        self.C = np.zeros(C_COLS, np.int64)
        self.P = np.zeros(P_COLS, np.int64)
        self.dfree: list = []         # free rows of ``data`` (frames' own copies)
        self.dnext = 0
        self.src_ps = None            # the page set whose pages view frames are read from in place
        self.fobj: list = []          # frame row -> Frame (or _NOFRAME)
        self.frow: dict = {}          # pfn -> frame row
        self.ffree: list = []         # free frame rows
        self.nfid = 0
        self.C[C_IFREE] = self.C[C_NFREE] = -1
        # the last scan's visit list, reused while the same frames are visited unchanged
        self._last_frames = self._last_hs = self._last_va = None
        self._last_rows = self._last_va_a = None

    # -- frame rows ------------------------------------------------------------------------
    def _new_row(self, f) -> int:
        if self.ffree:
            r = self.ffree.pop()
            self.fobj[r] = f
        else:
            r = len(self.fobj)
            self.fobj.append(f)
            self.F = _grow(self.F, r + 1)
            self.PW = _grow(self.PW, r + 1)
        self.frow[f.pfn] = r
        self.F[r, F_NODE] = -1
        self.F[r, F_HASH] = _HASH_UNSET
        self.F[r, F_SRC] = 0
        self.F[r, F_DROW] = -1
        return r

    def _source_of(self, srcs: list):
        """The page set frames are read from in place: the first one seen with its pages mapped."""
        if self.src_ps is None:
            for sv in srcs:
                if sv is not None and getattr(sv[0], "array", None) is not None:
                    self.src_ps = sv[0]
                    break
        return self.src_ps

    def _hash_frames(self, fs: list) -> list:
        """``Frame.content_hash()`` of each frame: those that are views of the source page set
        hashed in one compiled batch (and the value cached on the frame, as content_hash
        does), the others by the frame itself."""
        srcs = [getattr(f, "source", None) for f in fs]
        ps = self._source_of(srcs)
        out = [None] * len(fs)
        vi = [i for i, sv in enumerate(srcs) if sv is not None and sv[0] is ps]
        if vi:
            # a segment at a time, each released after it is hashed, so a large page set is
            # never resident as a whole (the scan releases its segments the same way)
            flat = ps.array.reshape(-1)
            for lo in range(0, len(vi), SEGMENT):
                part = vi[lo:lo + SEGMENT]
                hv = np.empty(len(part), np.uint64)
                xxh64_pages(flat, np.array([srcs[i][1] for i in part], np.int64), hv)
                for i, h in zip(part, hv.tolist()):
                    out[i] = fs[i]._hash = h
                if len(vi) > SEGMENT:
                    ps.release()
        for i, f in enumerate(fs):
            if out[i] is None:
                out[i] = f.content_hash()
        return out

    def _add_rows(self, fs: list, hs: list) -> list:
        """Rows for new frames ``fs`` (hashes ``hs``), their bytes loaded: the views of the
        source page set in one step, the others one by one."""
        n = len(fs)
        take = min(n, len(self.ffree))
        rows = [self.ffree.pop() for _ in range(take)]
        start = len(self.fobj)
        rows.extend(range(start, start + n - take))
        self.fobj.extend([_NOFRAME] * (n - take))
        self.F = _grow(self.F, start + n - take)
        self.PW = _grow(self.PW, start + n - take)
        fobj, frow = self.fobj, self.frow
        for r, f in zip(rows, fs):
            fobj[r] = f
            frow[f.pfn] = r
        ra = np.array(rows, np.int64)
        F = self.F
        F[ra, F_NODE] = -1
        F[ra, F_SRC] = 0
        F[ra, F_DROW] = -1
        F[ra, F_HASH] = _HASH_UNSET
        srcs = [getattr(f, "source", None) for f in fs]
        ps = self._source_of(srcs)
        vi = [i for i, sv in enumerate(srcs) if sv is not None and sv[0] is ps]
        if vi:
            idx = np.array([srcs[i][1] for i in vi], np.int64)
            rv = ra[vi]
            F[rv, F_SRC] = 1
            F[rv, F_DROW] = idx
            arr = ps.array
            for lo in range(0, len(vi), SEGMENT):     # a segment at a time, released (as above)
                self.PW[rv[lo:lo + SEGMENT]] = np.ascontiguousarray(
                    arr[idx[lo:lo + SEGMENT], :8 * PREFIX]).view(np.uint64)
                if len(vi) > SEGMENT:
                    ps.release()
            F[rv, F_HASH] = np.array([hs[i] for i in vi], np.uint64).view(np.int64)
        if len(vi) < n:
            isview = set(vi)
            for i in range(n):
                if i not in isview:
                    self._load(rows[i], fs[i], hs[i])
        return rows

    def _drop_copy(self, r: int) -> None:
        if not self.F[r, F_SRC] and self.F[r, F_DROW] >= 0:
            self.dfree.append(int(self.F[r, F_DROW]))
        self.F[r, F_SRC] = 0
        self.F[r, F_DROW] = -1

    def _load(self, r: int, f, h: int) -> None:
        """Point row r at frame f's bytes: the page of its page set while it is an unwritten
        view of the page set the arrays read from (no copy), else a copy of its own."""
        src = getattr(f, "source", None)
        if src is not None and self.src_ps is None and getattr(src[0], "array", None) is not None:
            self.src_ps = src[0]
        if src is not None and src[0] is self.src_ps:
            self._drop_copy(r)
            self.F[r, F_SRC] = 1
            self.F[r, F_DROW] = src[1]
            self.PW[r] = self.src_ps.array[src[1], :8 * PREFIX].view(np.uint64)
        else:
            d = int(self.F[r, F_DROW])
            if self.F[r, F_SRC] or d < 0:
                self.F[r, F_SRC] = 0
                if self.dfree:
                    d = self.dfree.pop()
                else:
                    d = self.dnext
                    self.dnext += 1
                    self.data = _grow(self.data, d + 1)
                self.F[r, F_DROW] = d
            self.data[d] = _frame_bytes(f)
            self.PW[r] = self.data[d, :8 * PREFIX].view(np.uint64)
        self.F[r, F_HASH] = np.uint64(h).view(np.int64)

    def _row_of(self, f) -> int:
        r = self.frow.get(f.pfn)
        if r is None or self.fobj[r] != f:
            r = self._new_row(f)
        h = f.content_hash()
        if self.F[r, F_HASH] != np.uint64(h).view(np.int64):
            self._load(r, f, h)
        return r

    def _recycle_rows(self) -> None:
        """Free the rows of freed frames that no live stable node names."""
        n = len(self.fobj)
        if not n:
            return
        fobj = self.fobj
        freed = np.fromiter((f.freed and f is not _NOFRAME for f in fobj), bool, n)
        if not freed.any():
            return
        nn = int(self.C[C_NNEXT])
        live = self.N[:nn, N_LIVE] == 1
        refs = self.N[:nn, N_FRAME][live]
        freed[refs[refs >= 0]] = False
        for r in np.flatnonzero(freed).tolist():
            del self.frow[fobj[r].pfn]
            fobj[r] = _NOFRAME
            self._drop_copy(r)
            self.F[r, F_NODE] = -1
            self.F[r, F_HASH] = _HASH_UNSET
            self.ffree.append(r)

    def _fid(self, slot) -> int:
        if slot.fid < 0:
            slot.fid = self.nfid
            self.nfid += 1
            self.S = _grow(self.S, self.nfid)
            self.S[slot.fid, S_HEAD] = -1
        return slot.fid

    # -- objects -> arrays -----------------------------------------------------------------
    def from_objects(self, k) -> None:
        """Take the daemon's rmap_items and stable tree into the arrays (between full scans)."""
        C = self.C
        C[C_INEXT] = C[C_NNEXT] = 0
        C[C_IFREE] = C[C_NFREE] = -1
        nodes = []
        nid = {}
        for node in k._stable:
            nid[id(node)] = len(nodes)
            nodes.append(node)
            if node.dups:
                for d in node.dups:
                    nid[id(d)] = len(nodes)
                    nodes.append(d)
        items = []
        iid = {}
        for slot in k.slots:
            self._fid(slot)
            it = slot.next
            while it is not None:
                iid[id(it)] = len(items)
                items.append((slot, it))
                it = it.next
        for slot, it in items:
            h = it.head
            if h is not None and id(h) not in nid:        # a node outside the tree (defensive)
                nid[id(h)] = len(nodes)
                nodes.append(h)
        self.N = N = _grow(np.zeros((0, N_COLS), np.int64), len(nodes) + 64)
        self.I = I = _grow(np.zeros((0, I_COLS), np.int64), len(items) + 64)

        def ix(o, m):
            return -1 if o is None else m[id(o)]

        for x, node in enumerate(nodes):
            N[x, N_FRAME] = -1 if node.frame is None else self._row_of(node.frame)
            N[x, N_LEFT] = ix(node.rb_left, nid)
            N[x, N_RIGHT] = ix(node.rb_right, nid)
            N[x, N_PARENT] = ix(node.rb_parent, nid)
            N[x, N_RED] = 1 if node.rb_red else 0
            N[x, N_HLEN] = node.rmap_hlist_len
            N[x, N_CHAIN] = ix(node.chain, nid)
            N[x, N_PRUNE] = node.prune_time
            N[x, N_LIVE] = 1
            N[x, N_DNEXT] = N[x, N_DPREV] = -1
            N[x, N_DFIRST] = N[x, N_DLAST] = -1
            N[x, N_HFIRST] = N[x, N_HLAST] = -1
        for x, node in enumerate(nodes):
            if node.dups:
                ids = [nid[id(d)] for d in node.dups]
                N[x, N_DFIRST], N[x, N_DLAST], N[x, N_DCOUNT] = ids[0], ids[-1], len(ids)
                for a, b in zip(ids, ids[1:]):
                    N[a, N_DNEXT] = b
                    N[b, N_DPREV] = a
            hl = [iid[id(i)] for i in node.hlist]
            N[x, N_HCOUNT] = len(hl)
            if hl:
                N[x, N_HFIRST], N[x, N_HLAST] = hl[0], hl[-1]
        for x, (slot, it) in enumerate(items):
            I[x, I_NEXT] = ix(it.next, iid)
            I[x, I_SLOT] = slot.fid
            I[x, I_ADDR] = it.address
            I[x, I_OLDCK] = it.oldchecksum
            I[x, I_AGE] = it.age
            I[x, I_SKIPS] = it.remaining_skips
            I[x, I_UNST] = 1 if it.unstable else 0
            I[x, I_SEQ] = it.seq
            I[x, I_HEAD] = ix(it.head, nid)
            I[x, I_UKEY] = np.uint64(it.ukey).view(np.int64)
            I[x, I_HNEXT] = I[x, I_HPREV] = -1
            I[x, I_UNEXT] = I[x, I_UPREV] = I[x, I_INTREE] = I[x, I_VIS] = I[x, I_UBKT] = -1
        for x, node in enumerate(nodes):
            hl = [iid[id(i)] for i in node.hlist]
            for a, b in zip(hl, hl[1:]):
                I[a, I_HNEXT] = b
                I[b, I_HPREV] = a
        for slot in k.slots:
            self.S[slot.fid, S_HEAD] = ix(slot.next, iid)
            slot.next = None
        C[C_INEXT] = len(items)
        C[C_NNEXT] = len(nodes)
        C[C_ROOT] = ix(k._stable.root, nid)
        for r, f in enumerate(self.fobj):
            if f is not _NOFRAME:
                self.F[r, F_NODE] = nid.get(id(f.stable_node), -1) if f.stable_node is not None else -1
        k._stable.root = None
        k.unstable = {}
        self.active = True

    # -- arrays -> objects -----------------------------------------------------------------
    def to_objects(self, k) -> None:
        """Give the daemon its rmap_items and stable tree back as objects, exactly."""
        from .ksm import RmapItem, StableNode
        I, N, F, C = self.I, self.N, self.F, self.C
        nn = int(C[C_NNEXT])
        nobj = {}
        for x in range(nn):
            if N[x, N_LIVE]:
                fr = int(N[x, N_FRAME])
                nobj[x] = StableNode(self.fobj[fr] if fr >= 0 else None)
        for x, node in nobj.items():
            row = N[x].tolist()
            node.rb_left = nobj.get(row[N_LEFT])
            node.rb_right = nobj.get(row[N_RIGHT])
            node.rb_parent = nobj.get(row[N_PARENT])
            node.rb_red = bool(row[N_RED])
            node.rmap_hlist_len = row[N_HLEN]
            node.chain = nobj.get(row[N_CHAIN])
            node.prune_time = row[N_PRUNE]
            if row[N_HLEN] == STABLE_NODE_CHAIN:
                dups = []
                d = row[N_DFIRST]
                while d != -1:
                    dups.append(nobj[d])
                    d = int(N[d, N_DNEXT])
                node.dups = dups
        iobj = {}
        for slot in k.slots:
            prev = slot
            x = int(self.S[slot.fid, S_HEAD]) if slot.fid >= 0 else -1
            while x != -1:
                row = I[x].tolist()
                it = RmapItem(slot.mm, row[I_ADDR])
                it.oldchecksum = row[I_OLDCK]
                it.age = row[I_AGE]
                it.remaining_skips = row[I_SKIPS]
                it.unstable = bool(row[I_UNST])
                it.seq = row[I_SEQ]
                it.head = nobj.get(row[I_HEAD])
                it.ukey = int(np.int64(row[I_UKEY]).view(np.uint64))
                iobj[x] = it
                prev.next = it
                prev = it
                x = row[I_NEXT]
            prev.next = None
            if slot.fid >= 0:
                self.S[slot.fid, S_HEAD] = -1
        for x, node in nobj.items():
            hl = {}
            i = int(N[x, N_HFIRST])
            while i != -1:
                hl[iobj[i]] = None
                i = int(I[i, I_HNEXT])
            node.hlist = hl
        k._stable.root = nobj.get(int(C[C_ROOT]))
        for r, f in enumerate(self.fobj):
            if f is _NOFRAME:
                continue
            x = int(F[r, F_NODE])
            f.stable_node = nobj[x] if x in nobj and N[x, N_FRAME] == r else None
        k.unstable = {}
        self.active = False

    def has_items(self, slot) -> bool:
        return slot.fid >= 0 and self.S[slot.fid, S_HEAD] != -1

    def stable_node_count(self) -> int:
        """Stable nodes in the tree: chains and their dups, and plain nodes."""
        nn = int(self.C[C_NNEXT])
        return int((self.N[:nn, N_LIVE] == 1).sum())

    # -- one full scan ---------------------------------------------------------------------
    def scan(self, k) -> None:
        """One full scan of ``k`` (the cursor is at the head of the mm list)."""
        from .mm import VM_MERGEABLE, Frame
        if not self.active:
            self.from_objects(k)
        m = k.machine
        zero = m.zero_frame
        sl = []
        va = []
        vmm = []
        pfns = []
        drops = []
        for slot in k.slots:
            fid = self._fid(slot)
            mm = slot.mm
            lo = len(va)
            if mm.exiting:
                drops.append(slot)
            else:
                address = 0
                for vma in mm.vmas:
                    if not vma.flags & VM_MERGEABLE:
                        continue
                    if address < vma.start:
                        address = vma.start
                    if not vma.anon_vma:
                        address = vma.end
                        continue
                    # the present pages of the VMA's page table, not the zero page
                    rows = vma.rows()
                    if len(rows):
                        pf = np.frombuffer(vma._pfn, np.int64)[rows]
                        keep = pf > 0
                        va.extend((rows[keep] * PAGE_SIZE + vma.start).tolist())
                        pfns.extend(pf[keep].tolist())
                        del pf
                    address = vma.end
                if address == 0:
                    drops.append(slot)
            vmm.append((mm, lo, len(va)))
            sl.append((fid, lo, len(va)))
        npages = len(va)
        # frame rows: free those of freed frames now and then, give new frames a row, reload
        # the bytes of frames written since (their hash changed); skipped when the scan visits
        # the same frames with the same hashes as the last one
        if len(self.fobj) - len(self.ffree) > 2 * npages + int(self.C[C_NNEXT]) + 1024:
            self._recycle_rows()
        # the frames' cached hashes, read from the machine's frame table in one step
        pa = np.array(pfns, np.int64)
        hv = m.frame_column("_hash")[pa]
        hok = m.frame_column("_hashed")[pa]
        last = self._last_frames
        if last is not None and np.array_equal(pa, last) and np.array_equal(hv, self._last_hs[0]) \
                and np.array_equal(hok, self._last_hs[1]) and va == self._last_va:
            rows_a, va_a = self._last_rows, self._last_va_a
        else:
            frames = [Frame(m, p) for p in pfns]
            hs = [h if ok else None for h, ok in zip(hv.tolist(), hok.tolist())]
            frow = self.frow
            rows = [frow.get(f.pfn, -1) for f in frames]
            nh = [i for i, h in enumerate(hs) if h is None]
            if nh:
                for i, h in zip(nh, self._hash_frames([frames[i] for i in nh])):
                    hs[i] = h
            missing = [i for i, r in enumerate(rows) if r < 0]
            if missing:
                for i, r in zip(missing, self._add_rows([frames[i] for i in missing], [hs[i] for i in missing])):
                    rows[i] = r
            rows_a = np.array(rows, np.int64)
            h64 = np.array(hs, np.uint64).view(np.int64)
            for i in np.flatnonzero(self.F[rows_a, F_HASH] != h64).tolist():
                self._load(rows[i], frames[i], hs[i])
            va_a = np.array(va, np.int64)
            del frames
            self._last_frames, self._last_va = pa, va
            self._last_hs = (m.frame_column("_hash")[pa], m.frame_column("_hashed")[pa])
            self._last_rows, self._last_va_a = rows_a, va_a
        F = self.F
        fobj = self.fobj
        if npages:
            F[rows_a, F_KSM] = m.frame_column("_ksm")[pa]
            F[rows_a, F_MAPCOUNT] = m.frame_column("_mapcount")[pa]
            F[rows_a, F_PINS] = m.frame_column("_pins")[pa]
            F[rows_a, F_FREED] = 0
        nn = int(self.C[C_NNEXT])
        for r in self.N[:nn, N_FRAME][(self.N[:nn, N_LIVE] == 1) & (self.N[:nn, N_FRAME] >= 0)].tolist():
            f = fobj[r]
            F[r, F_KSM], F[r, F_MAPCOUNT], F[r, F_PINS], F[r, F_FREED] = f.ksm, f.mapcount, f.pins, f.freed
        # capacity for whatever this scan can add
        self.I = _grow(self.I, int(self.C[C_INEXT]) + npages + 1)
        # a scan adds at most one stable node per page: a new KSM page needs an unstable-tree
        # match of two pages that were in no tree this scan (and may bring one chain node)
        self.N = _grow(self.N, int(self.C[C_NNEXT]) + npages + 2)
        events = bool(k.bus.enabled)
        nlog = 2 * npages + 2
        if events:          # at most 8 entries a page, plus the items freed and the nodes found stale
            nlog = 10 * npages + int(self.C[C_INEXT]) + int(self.C[C_NNEXT]) + 16
        act = np.zeros((nlog, ACT_COLS), np.int64)
        hcap = 1 << max(4, (2 * npages + 2).bit_length())
        HK = np.zeros(hcap, np.int64)
        HU = np.zeros(hcap, np.uint8)
        HF = np.full(hcap, -1, np.int64)
        HL = np.full(hcap, -1, np.int64)
        # counters in, the scan, counters out
        C, S, P = self.C, self.S, self.P
        (C[C_SCANNED], C[C_SHARED], C[C_SHARING], C[C_UNSHARED], C[C_SKIPPED], C[C_RMAP], C[C_CHAINS],
         C[C_DUPS], C[C_ZERO], C[C_HASHED], C[C_COMPARES], C[C_NOW], C[C_SEQNR]) = (
            k.pages_scanned, k.pages_shared, k.pages_sharing, k.pages_unshared, k.pages_skipped, k.rmap_items,
            k.stable_node_chains, k.stable_node_dups, k.ksm_zero_pages, k.pages_hashed, k.compares, k.now_ms,
            k.seqnr)
        C[C_GEN] += 1
        C[C_NACT] = 0
        C[C_EVENTS] = 1 if events else 0
        P[:] = (k.pages_to_scan, k.sleep_millisecs, k.max_page_sharing, int(k.use_zero_pages),
                int(k.smart_scan), k.stable_node_chains_prune_millisecs)
        for slot in k.slots:
            mm = slot.mm
            S[slot.fid, S_RMAP:] = (mm.ksm_rmap_items, mm.ksm_merging_pages, mm.ksm_zero_pages)
        VF = rows_a.copy()
        src = None if self.src_ps is None else self.src_ps.array
        if src is None and self.src_ps is not None and (F[:len(fobj), F_SRC] == 1).any():
            raise RuntimeError("ksm: the page set the frames are views of was closed")
        WS = _NO_SOURCE if src is None else src.view(np.uint64)
        C[C_CUR_S] = C[C_CUR_J] = C[C_CUR_CNT] = 0
        C[C_CUR_PREV] = -1
        SLa = np.array(sl, np.int64).reshape(-1, 3)
        W = self.data.view(np.uint64)
        if src is None or npages <= SEGMENT:
            full_scan(self.I, self.N, F, S, C, P, W, WS, self.PW, SLa, va_a, VF, act, HK, HU, HF, HL, npages)
        else:
            # a large page set: the pages read in place are released after each segment, so the
            # process does not keep the whole set resident (the tree's pages are read again)
            stop = 0
            while True:
                stop += SEGMENT
                done = full_scan(self.I, self.N, F, S, C, P, W, WS, self.PW, SLa, va_a, VF, act, HK, HU, HF, HL,
                                 stop)
                self.src_ps.release()
                if done:
                    break
        WS = src = None
        (k.pages_scanned, k.pages_shared, k.pages_sharing, k.pages_unshared, k.pages_skipped, k.rmap_items,
         k.stable_node_chains, k.stable_node_dups, k.ksm_zero_pages, k.pages_hashed, k.compares,
         k.now_ms) = C[:C_SEQNR].tolist()
        for slot in k.slots:
            mm = slot.mm
            mm.ksm_rmap_items, mm.ksm_merging_pages, mm.ksm_zero_pages = S[slot.fid, S_RMAP:].tolist()
        # replay the changes to the memory model in order, with the events between them
        nact = int(C[C_NACT])
        if nact:
            owner = np.empty(npages, np.int64)
            for x, (_mm, lo, hi) in enumerate(vmm):
                owner[lo:hi] = x
            if events:
                from . import ksm as K
                emit = k.bus.emit
                pid_of = {slot.fid: slot.mm.pid for slot in k.slots}
            for kind, j, arg, x, y in act[:nact].tolist():
                if kind < E_ITEM_NEW:
                    mm = vmm[owner[j]][0]
                    a = va[j]
                    if kind == A_KSM_WP:
                        pte = mm.ptes[a]
                        pte.frame.ksm = True
                        pte.writable = False
                    elif kind == A_REPLACE:
                        m.replace_page(mm, a, fobj[arg], writable=False)
                    elif kind == A_BREAK_COW:
                        m.unshare(mm, a)
                    else:
                        m.replace_page(mm, a, zero, writable=False, ksm_zero=True)
                elif kind == E_ITEM_FREE:
                    emit(K.RmapItemFreed(pid_of[j], arg))
                elif kind == E_STALE:
                    emit(K.StableNodeStale(fobj[j].pfn, arg))
                elif kind == E_CHAIN:
                    emit(K.StableChainCreated(fobj[j].pfn))
                elif kind == E_DUP:
                    emit(K.StableDupCreated(fobj[j].pfn, arg))
                else:
                    pid = vmm[owner[j]][0].pid
                    a = va[j]
                    if kind == E_ITEM_NEW:
                        emit(K.RmapItemCreated(pid, a))
                    elif kind == E_CHECKSUM:
                        emit(K.ChecksumComputed(pid, a, arg, bool(x)))
                    elif kind == E_UNSTABLE:
                        emit(K.UnstableInsert(pid, a))
                    elif kind == E_MERGE_STABLE:
                        emit(K.PagesMerged(fobj[arg].pfn, "stable_hit", ((pid, a, fobj[x].pfn),), PAGE_SIZE))
                    elif kind == E_MERGE_UNSTABLE:
                        emit(K.PagesMerged(fobj[y].pfn, "unstable_match",
                                           ((vmm[owner[arg]][0].pid, va[arg], fobj[x].pfn), (pid, a, fobj[y].pfn)),
                                           PAGE_SIZE))
                    else:
                        emit(K.ZeroPageMerged(pid, a, fobj[arg].pfn))
        for slot in drops:
            k._drop_slot(slot)
