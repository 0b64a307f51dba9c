"""Compiled offline steps: Romanov's zram merge (2022) and zsmalloc fold (2023), with the frees
and overwrites that follow them, over the array form of the slot table and the pool
(``engine._zram_fast``), in machine code (numba).

These are the fast paths of ``engine.mechanisms.zram_merge.ZramMergeDevice`` and
``engine.mechanisms.zsmalloc_fold.FoldingZsPool``. They follow the Python paths of those
classes (the reference) step by step, so results, counters, work and every byte are identical.

Merge (``merge_pass``): slots 0..N-1 in order, skipping empty and same-filled slots; the slot's
compressed object is hashed where it lies (copied out first when it spans two page frames),
with XXH64 by default;
the temporary table has N buckets, each a singly linked list of slot numbers (``bhead``,
``bnext``), newest first; a candidate with the same handle or another size is skipped; the
others are compared byte for byte (the candidate's object is read in place: no object a bucket
names is freed or written during a pass). The per-device tree of shared handles is one row per
handle id (``M``): the count of slots pointing at the handle (0: no node), and the XOR of the
numbers of the MERGED slots pointing at it, which names the last one when one is left.

Fold (``fold_pass``): per size class (largest first), the zspages of groups 1..11 (the head of
each list first) are isolated one by one and their objects visited in address order; each
object's compared bytes (the posted code's ``class.size`` bytes after the header, or exactly
the payload) are hashed into ``objs_inuse`` buckets and compared with the earlier unmatched
objects of the bucket, newest first. An unmatched object's compared bytes could change later
only in their last 8 bytes (the next slot's first word, rewritten when that object is folded
and freed), so those 8 bytes are kept with the bucket entry, as the posted code's copy keeps
them. A fold node is a list of handle ids in the order they joined (the first one is the handle
named in the object's header); per handle id: its node, and the links of that list.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import _zram_fast as F
from ._zram_fast import (C_HUGE, C_INUSE, C_OBJS, C_PPZ, C_SIZE, D_COMPR, D_HUGE, D_STORED, END_LINK,
                         GROUP_EMPTY, GROUP_FULL, P_LIVE, P_NFREE_H, PAGE_SIZE, Z_CLS, Z_FREE, Z_HUGEH, Z_INUSE,
                         Z_NEXT, ZRAM_HUGE, ZRAM_SAME)
from .compress._unaligned import read64
from .hashes import _jhash, xxh64_at

ZRAM_MERGED = 8
ZS_HANDLE_SIZE = 8

# hash functions the compiled steps run (by name, as engine.hashes names them)
HASH_XXH64, HASH_XXH32, HASH_JHASH, HASH_WEAK = range(4)
HASH_KINDS = {"xxhash64": HASH_XXH64, "xxhash32": HASH_XXH32, "jhash": HASH_JHASH, "weak": HASH_WEAK}

# work counters (W)
W_HASHED, W_HASHED_BYTES, W_COMPARES, W_COMPARED_BYTES = range(4)
W_COLS = 4
# merge counters (MD): pages_merged, saved bytes
MD_MERGED, MD_SAVED = range(2)
# merge tree rows (M), one per handle id
M_CNT, M_XOR = range(2)
# fold: per handle id (FH): its node, the next and previous handle of that node's list
FH_NODE, FH_NEXT, FH_PREV = range(3)
# fold: per node (N): handles, first (header) and last handle id
N_CNT, N_HEAD, N_TAIL = range(3)
# fold scalars (FS): next unused node id, free node ids stacked, live nodes, handles in nodes
FS_NEXT, FS_NFREE, FS_LIVE, FS_HANDLES = range(4)
FS_COLS = 4


@njit(cache=True, nogil=True, inline="always")
def _hash(kind, buf, start, n):
    """The hash of ``buf[start:start + n]``."""
    if kind == HASH_XXH64:
        return xxh64_at(buf, start, n, np.uint64(0))
    if kind == HASH_XXH32:
        return xxh64_at(buf, start, n, np.uint64(0)) & np.uint64(0xFFFFFFFF)
    if kind == HASH_JHASH:
        return np.uint64(_jhash(buf[start:start + n], 0))
    return np.uint64(0)


@njit(cache=True, nogil=True, inline="always")
def _equal_at(a, pa, b, pb, n):
    """memcmp(a + pa, b + pb, n) == 0, 8 bytes at a time."""
    p = 0
    while p + 8 <= n:
        if read64(a, pa + p) != read64(b, pb + p):
            return False
        p += 8
    while p < n:
        if a[pa + p] != b[pb + p]:
            return False
        p += 1
    return True


@njit(cache=True, nogil=True, inline="always")
def _object_bytes(pool, hid, n, scratch):
    """Where the ``n`` payload bytes of object ``hid`` can be read: (array, start) -- the page
    frame itself when the object lies in one, else a copy in ``scratch``."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    zs = H[hid, 0]
    c = Z[zs, Z_CLS]
    off = H[hid, 1] * C[c, C_SIZE] + (0 if C[c, C_HUGE] else ZS_HANDLE_SIZE)
    o = off & 4095
    if o + n <= PAGE_SIZE:
        return A[ZP[zs, off >> 12]], o
    F.read_object(pool, hid, n, scratch)
    return scratch, 0


# -- zram merge ---------------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def merge_slot_free(pool, zflags, zhandle, zsize, D, M, MD, posted, index):
    """``zram_free_page`` of the merge series (``ZramMergeDevice.slot_free``)."""
    fl = zflags[index]
    if not (fl & ZRAM_MERGED):
        F.slot_free(pool, zflags, zhandle, zsize, D, index)
        return
    size = zsize[index]
    hid = F._hid_of(zhandle[index])
    c = M[hid, M_CNT]
    cnt = (c if c > 0 else 1) - 1
    freed = cnt <= 0
    if fl & ZRAM_HUGE:
        D[D_HUGE] -= 1
    M[hid, M_XOR] ^= index
    if freed:
        M[hid, M_CNT] = 0
        M[hid, M_XOR] = 0
        F.zs_free(pool, hid)
    else:
        M[hid, M_CNT] = cnt
        MD[MD_SAVED] -= size
    if posted:
        D[D_COMPR] -= size                  # the merge subtracted it already: counted twice
        MD[MD_MERGED] -= 1                  # also for the surviving slot
    else:
        if freed:
            D[D_COMPR] -= size
        else:
            MD[MD_MERGED] -= 1
        if cnt == 1:                        # one sharer left: an ordinary slot again
            other = M[hid, M_XOR]
            M[hid, M_CNT] = 0
            M[hid, M_XOR] = 0
            zflags[other] &= ~ZRAM_MERGED
    D[D_STORED] -= 1
    zflags[index] = 0
    zhandle[index] = 0
    zsize[index] = 0


@njit(cache=True, nogil=True)
def merge_free_slots(pool, zflags, zhandle, zsize, D, M, MD, posted, indexes):
    for i in range(indexes.shape[0]):
        merge_slot_free(pool, zflags, zhandle, zsize, D, M, MD, posted, indexes[i])


@njit(cache=True, nogil=True, inline="always")
def _merge_free_step(pool, zflags, zhandle, zsize, D, ctx, index):
    M, MD, posted = ctx
    merge_slot_free(pool, zflags, zhandle, zsize, D, M, MD, posted, index)


@njit(cache=True, nogil=True)
def merge_store_batch(pool, pages, out, lengths, sflags, fills, indexes, start, j0, io_end, use_io,
                      zflags, zhandle, zsize, D, failed_out, skipped_out, M, MD, posted):
    """``engine._zram_fast.store_loop`` with the merge series' free of an overwritten slot."""
    return F.store_loop(pool, pages, out, lengths, sflags, fills, indexes, start, j0, io_end, use_io,
                        zflags, zhandle, zsize, D, failed_out, skipped_out, _merge_free_step, (M, MD, posted))


@njit(cache=True, nogil=True)
def merge_pass(pool, zflags, zhandle, zsize, D, M, MD, W, kind, bhead, bnext, cur, tmp):
    """``zram_do_scan``: one offline pass over every slot; returns the merges made."""
    n = zflags.shape[0]
    nn = np.uint64(n)
    for b in range(n):
        bhead[b] = -1
    merges = 0
    for index in range(n):
        size = zsize[index]
        if size == 0 or (zflags[index] & ZRAM_SAME):
            continue
        handle = zhandle[index]
        hid = F._hid_of(handle)
        buf, bs = _object_bytes(pool, hid, size, cur)
        b = np.int64(_hash(kind, buf, bs, size) % nn)
        W[W_HASHED] += 1
        W[W_HASHED_BYTES] += size
        merged = False
        e = bhead[b]
        while e >= 0:                                   # newest first
            cand = e
            e = bnext[e]
            ch = zhandle[cand]
            if ch == handle or zsize[cand] != size:
                continue
            W[W_COMPARES] += 1
            W[W_COMPARED_BYTES] += size
            chid = F._hid_of(ch)
            cbuf, cbs = _object_bytes(pool, chid, size, tmp)
            if not _equal_at(buf, bs, cbuf, cbs, size):
                continue
            if M[hid, M_CNT] > 1:
                continue                                # the current slot's handle is already shared
            # repoint the slot at the candidate's handle, free its own object
            zhandle[index] = ch
            if zflags[index] & ZRAM_MERGED:             # it leaves its old handle's sharers
                M[hid, M_XOR] ^= index
            F.zs_free(pool, hid)
            c = M[chid, M_CNT]
            M[chid, M_CNT] = (c if c > 0 else 1) + 1
            D[D_COMPR] -= size
            if not (zflags[cand] & ZRAM_MERGED):
                M[chid, M_XOR] ^= cand
            M[chid, M_XOR] ^= index
            zflags[index] |= ZRAM_MERGED
            zflags[cand] |= ZRAM_MERGED
            MD[MD_MERGED] += 1
            MD[MD_SAVED] += size
            merges += 1
            merged = True
            break
        if not merged:
            bnext[index] = bhead[b]
            bhead[b] = index
    return merges


# -- zsmalloc fold ------------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _header(pool, zs, idx):
    """The handle id named by the object at (zs, idx) (its header, or the huge zspage's
    handle); -1 when the slot is free."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    c = Z[zs, Z_CLS]
    if C[c, C_HUGE]:
        return Z[zs, Z_HUGEH]
    w = F._word_at(ZP, A64, zs, idx * C[c, C_SIZE])
    if (w & np.uint64(1)) == 0:
        return -1
    return F._hid_of(w)


@njit(cache=True, nogil=True, inline="always")
def _set_header(pool, zs, idx, hid):
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    c = Z[zs, Z_CLS]
    if C[c, C_HUGE]:
        Z[zs, Z_HUGEH] = hid
    else:
        F._set_word(ZP, A64, zs, idx * C[c, C_SIZE], F.handle_of(hid) | np.uint64(1))


@njit(cache=True, nogil=True, inline="always")
def _obj_free(pool, zs, idx):
    """``obj_free`` on an isolated zspage (its fullness group is fixed at put-back)."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    c = Z[zs, Z_CLS]
    if C[c, C_HUGE]:
        Z[zs, Z_HUGEH] = -1
    else:
        head = Z[zs, Z_FREE]
        link = np.uint64(END_LINK) if head < 0 else np.uint64(head) << np.uint64(1)
        F._set_word(ZP, A64, zs, idx * C[c, C_SIZE], link)
    Z[zs, Z_FREE] = idx
    Z[zs, Z_INUSE] -= 1
    C[c, C_INUSE] -= 1


@njit(cache=True, nogil=True, inline="always")
def _node_new(FH, N, NF, FS):
    if FS[FS_NFREE] > 0:
        FS[FS_NFREE] -= 1
        nid = NF[FS[FS_NFREE]]
    else:
        nid = FS[FS_NEXT]
        FS[FS_NEXT] += 1
    N[nid, N_CNT] = 0
    N[nid, N_HEAD] = -1
    N[nid, N_TAIL] = -1
    FS[FS_LIVE] += 1
    return nid


@njit(cache=True, nogil=True, inline="always")
def _node_drop(FH, N, NF, FS, nid):
    N[nid, N_CNT] = 0
    N[nid, N_HEAD] = -1
    N[nid, N_TAIL] = -1
    NF[FS[FS_NFREE]] = nid
    FS[FS_NFREE] += 1
    FS[FS_LIVE] -= 1


@njit(cache=True, nogil=True, inline="always")
def _node_append(FH, N, FS, nid, hid):
    t = N[nid, N_TAIL]
    FH[hid, FH_NODE] = nid
    FH[hid, FH_NEXT] = -1
    FH[hid, FH_PREV] = t
    if t >= 0:
        FH[t, FH_NEXT] = hid
    else:
        N[nid, N_HEAD] = hid
    N[nid, N_TAIL] = hid
    N[nid, N_CNT] += 1
    FS[FS_HANDLES] += 1


@njit(cache=True, nogil=True, inline="always")
def _node_unlink(FH, N, FS, hid):
    nid = FH[hid, FH_NODE]
    nx = FH[hid, FH_NEXT]
    pv = FH[hid, FH_PREV]
    if pv >= 0:
        FH[pv, FH_NEXT] = nx
    else:
        N[nid, N_HEAD] = nx
    if nx >= 0:
        FH[nx, FH_PREV] = pv
    else:
        N[nid, N_TAIL] = pv
    FH[hid, FH_NODE] = -1
    FH[hid, FH_NEXT] = -1
    FH[hid, FH_PREV] = -1
    N[nid, N_CNT] -= 1
    FS[FS_HANDLES] -= 1
    return nid


@njit(cache=True, nogil=True, inline="always")
def fold_zs_free(pool, FH, N, NF, FS, hid):
    """``zs_free`` with folding (``FoldingZsPool.free``): a handle that shares its object with
    others is released alone; the last one frees the object."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    if hid < FH.shape[0] and FH[hid, FH_NODE] >= 0:
        nid = _node_unlink(FH, N, FS, hid)
        if N[nid, N_CNT] > 0:
            zs = H[hid, 0]
            idx = H[hid, 1]
            H[hid, 0] = -1
            H[hid, 1] = -1
            HF[P[P_NFREE_H]] = hid
            P[P_NFREE_H] += 1
            P[P_LIVE] -= 1
            if _header(pool, zs, idx) == hid:          # keep the header naming a live handle
                _set_header(pool, zs, idx, N[nid, N_HEAD])
            return
        _node_drop(FH, N, NF, FS, nid)
    F.zs_free(pool, hid)


@njit(cache=True, nogil=True, inline="always")
def fold_slot_free(pool, zflags, zhandle, zsize, D, FH, N, NF, FS, index):
    """``zram_slot_free`` over a folding pool."""
    fl = zflags[index]
    size = zsize[index]
    if not (fl & ZRAM_SAME) and size == 0:
        return
    if fl & ZRAM_HUGE:
        D[D_HUGE] -= 1
    if fl & ZRAM_SAME:
        D[F.D_SAME] -= 1
    else:
        fold_zs_free(pool, FH, N, NF, FS, F._hid_of(zhandle[index]))
        D[D_COMPR] -= size
    D[D_STORED] -= 1
    zflags[index] = 0
    zhandle[index] = 0
    zsize[index] = 0


@njit(cache=True, nogil=True)
def fold_free_slots(pool, zflags, zhandle, zsize, D, FH, N, NF, FS, indexes):
    for i in range(indexes.shape[0]):
        fold_slot_free(pool, zflags, zhandle, zsize, D, FH, N, NF, FS, indexes[i])


@njit(cache=True, nogil=True, inline="always")
def _fold_free_step(pool, zflags, zhandle, zsize, D, ctx, index):
    FH, N, NF, FS = ctx
    fold_slot_free(pool, zflags, zhandle, zsize, D, FH, N, NF, FS, index)


@njit(cache=True, nogil=True)
def fold_store_batch(pool, pages, out, lengths, sflags, fills, indexes, start, j0, io_end, use_io,
                     zflags, zhandle, zsize, D, failed_out, skipped_out, FH, N, NF, FS):
    """``engine._zram_fast.store_loop`` over a folding pool (an overwritten slot's handle may
    share its object)."""
    return F.store_loop(pool, pages, out, lengths, sflags, fills, indexes, start, j0, io_end, use_io,
                        zflags, zhandle, zsize, D, failed_out, skipped_out, _fold_free_step, (FH, N, NF, FS))


@njit(cache=True, nogil=True, inline="always")
def _window(pool, zs, idx, posted, RS, hdr, scratch):
    """The bytes the fold compares for the object at (zs, idx): (array, start, length) -- in
    its page frame where they lie in one, else copied into ``scratch``. Huge: the whole slot.
    Posted: ``class.size`` bytes after the header (past the zspage's end: zeros). Corrected:
    the payload (its ``zs_malloc`` length, ``RS``)."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    c = Z[zs, Z_CLS]
    size = C[c, C_SIZE]
    off = idx * size
    if C[c, C_HUGE]:
        n = size
    elif posted:
        off += ZS_HANDLE_SIZE
        n = size
    else:
        off += ZS_HANDLE_SIZE
        n = RS[hdr]
    end = C[c, C_PPZ] * PAGE_SIZE
    o = off & 4095
    if o + n <= PAGE_SIZE and off + n <= end:
        return A[ZP[zs, off >> 12]], o, n
    avail = min(n, end - off)
    done = 0
    while done < avail:
        f = ZP[zs, off >> 12]
        o = off & 4095
        m = min(avail - done, PAGE_SIZE - o)
        scratch[done:done + m] = A[f, o:o + m]
        done += m
        off += m
    for p in range(avail, n):
        scratch[p] = 0
    return scratch, 0, n


@njit(cache=True, nogil=True)
def fold_pass(pool, FH, N, NF, FS, RS, classes, posted, kind, W, bhead, e_zs, e_idx, e_len, e_word, e_next,
              order, cur, tmp, out):
    """``zs_fold`` over every class in ``classes`` (largest index first). ``out``: pages freed,
    objects folded."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    pages_freed = 0
    folded_objs = 0
    for ci in range(classes.shape[0]):
        c = classes[ci]
        nb = C[c, C_INUSE]
        if nb == 0:
            continue
        nbu = np.uint64(nb)
        huge = C[c, C_HUGE] != 0
        snap = posted and not huge
        objs = C[c, C_OBJS]
        for b in range(nb):
            bhead[b] = -1
        nent = 0
        nz = 0
        for g in range(GROUP_EMPTY + 1, GROUP_FULL + 1):   # each list from its head
            s = CH[c, g]
            while s >= 0:
                order[nz] = s
                nz += 1
                s = Z[s, Z_NEXT]
        freed = 0
        for oi in range(nz):
            zs = order[oi]
            F._list_remove(CH, Z, zs)                       # isolate while folding
            for idx in range(objs):
                h = _header(pool, zs, idx)
                if h < 0:
                    continue
                buf, bs, n = _window(pool, zs, idx, posted, RS, h, cur)
                b = np.int64(_hash(kind, buf, bs, n) % nbu)
                W[W_HASHED] += 1
                W[W_HASHED_BYTES] += n
                e = bhead[b]
                hit = -1
                while e >= 0:                               # newest first
                    W[W_COMPARES] += 1
                    W[W_COMPARED_BYTES] += n
                    if e_len[e] == n:
                        if snap:                            # the last 8 bytes as they were
                            if read64(buf, bs + n - 8) == np.uint64(e_word[e]):
                                cbuf, cbs, _ = _window(pool, e_zs[e], e_idx[e], posted, RS, -1, tmp)
                                if _equal_at(buf, bs, cbuf, cbs, n - 8):
                                    hit = e
                                    break
                        else:
                            cbuf, cbs, _ = _window(pool, e_zs[e], e_idx[e], posted, RS,
                                                   _header(pool, e_zs[e], e_idx[e]), tmp)
                            if _equal_at(buf, bs, cbuf, cbs, n):
                                hit = e
                                break
                    e = e_next[e]
                if hit < 0:
                    e_zs[nent] = zs
                    e_idx[nent] = idx
                    e_len[nent] = n
                    e_word[nent] = np.int64(read64(buf, bs + n - 8)) if snap else 0
                    e_next[nent] = bhead[b]
                    bhead[b] = nent
                    nent += 1
                    continue
                # fold (zs, idx) into the candidate: repoint its handle, count the sharers
                czs = e_zs[hit]
                cidx = e_idx[hit]
                chdr = _header(pool, czs, cidx)
                own = FH[h, FH_NODE]
                if own >= 0:
                    _node_unlink(FH, N, FS, h)
                cn = FH[chdr, FH_NODE]
                if cn < 0:
                    cn = _node_new(FH, N, NF, FS)
                    _node_append(FH, N, FS, cn, chdr)
                _node_append(FH, N, FS, cn, h)
                H[h, 0] = czs
                H[h, 1] = cidx
                if own >= 0 and N[own, N_CNT] > 0:
                    _set_header(pool, zs, idx, N[own, N_HEAD])
                else:
                    if own >= 0:
                        _node_drop(FH, N, NF, FS, own)
                    _obj_free(pool, zs, idx)
                folded_objs += 1
            g = F._group_of(Z[zs, Z_INUSE], objs)           # put back: the head of its group
            F._list_push(CH, Z, zs, g)
            if g == GROUP_EMPTY:
                F._free_zspage(pool, zs)
                freed += C[c, C_PPZ]
        pages_freed += freed
    out[0] = pages_freed
    out[1] = folded_objs


@njit(cache=True, nogil=True)
def fold_saved(pool, FH, N, FS, RS):
    """Bytes not stored thanks to folding: per node, (handles - 1) x the payload length of the
    handle its object's header names (``FoldingZsPool.saved``)."""
    total = 0
    for nid in range(FS[FS_NEXT]):
        cnt = N[nid, N_CNT]
        if cnt > 0:
            total += (cnt - 1) * RS[N[nid, N_HEAD]]
    return total
