"""Compiled swap-out of the claimed method (``engine.mechanisms.patent_claim1``), in batches.

The fast path of :class:`~engine.mechanisms.patent_claim1.PatentClaim1` when nobody listens
for events. It decides exactly what the page-by-page Python path decides, in three steps:

1. :func:`prepare_claim`, on all cores (no GIL, ranges of a batch handed to worker threads):
   the same-filled test where the reading adds it, the compression of each page with the
   kernel's compressor (a cleared scratch table per page, so a page's block does not depend on
   its neighbours), the size branch of its compressed length, and the hash values the reading
   takes of it: the first hash value (of the compressed bytes, or of the page in the pass) and,
   in the larger branch, the third (of the compressed form, or of the raw page);
2. :func:`decide`, one page at a time and in order: the probe of the branch's hash index (one
   chain of entries per hash value, in the order they were stored, as the Python path's lists),
   skipping and dropping entries whose resident frame was freed, the confirmation of a match by
   comparing the stored bytes (the compressed bytes in the smaller branch, the raw page
   otherwise) or by the hash alone, and on a miss a new index entry;
3. :func:`store_pages`, in order: what ``zram_write_page`` does for each stored page (the
   compressed block, or the whole page in the larger branch and under zram's huge rule, through
   ``zs_malloc`` into the pool's arrays), and under ``mapping=slot-remap`` a new slot on the
   found page's handle.

Pages stored by the same batch are compared with their bytes in the batch's buffers, which are
the bytes the pool receives; entries from earlier batches with the bytes they hold in the pool
(or in their resident frame), gathered before the loop.

The hashes are compiled too: XXH64 (seed 0, ``engine.hashes.xxh64``; ``xxhash32`` is its
low 32 bits, as :mod:`engine.hashes`), the kernel's ``jhash`` (``engine.hashes._jhash``) and
``weak`` (0). The tests check each against the library or the Python function on every page.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit, types
from numba.typed import Dict

from . import _zram_fast as F
from .compress import _lz4_kernel as LZ4
from .compress import _lzo_kernel as LZO
from .compress._unaligned import read64 as _read64
from .hashes import _jhash
from .hashes import xxh64 as _xxh64

PAGE_SIZE = 4096

#: hash kinds (``HASH_KINDS[name]``)
H_XXH64, H_XXH32, H_JHASH, H_WEAK = 0, 1, 2, 3
HASH_KINDS = {"xxhash64": H_XXH64, "xxhash32": H_XXH32, "jhash": H_JHASH, "weak": H_WEAK}
#: what a hash value is taken over: nothing, the compressed bytes, the raw page
NONE, COMPRESSED, RAW = 0, 1, 2
#: decisions per page
ACT_STORED, ACT_SHARED, ACT_SAME = 0, 1, 2


@njit(cache=True, nogil=True)
def hash_bytes(kind, a, n):
    """The hash ``kind`` of the first ``n`` bytes of ``a`` (as engine.hashes gives it)."""
    if kind == H_WEAK:
        return np.uint64(0)
    if kind == H_JHASH:
        return np.uint64(_jhash(a[:n], 0))
    h = _xxh64(a, n, np.uint64(0))
    if kind == H_XXH32:
        h = h & np.uint64(0xFFFFFFFF)
    return h


@njit(cache=True, nogil=True)
def hash_rows(kind, rows, lengths, out):
    """``out[i]`` = hash ``kind`` of ``rows[i, :lengths[i]]`` (for the tests and callers)."""
    for i in range(rows.shape[0]):
        out[i] = hash_bytes(kind, rows[i], lengths[i])


@njit(cache=True, nogil=True)
def prepare_claim(pages, lo, hi, detect_same, use_lzo, param, size, equal_smaller, hkind, first_of, third_of,
                  sflags, fills, lengths, out, big, hc, hr):
    """Rows ``lo..hi``: same-filled test (``detect_same``), compression (LZO/LZO-RLE with ``rle
    = param`` when ``use_lzo``, else LZ4 with acceleration ``param``), the branch (``big`` 1:
    the larger), and the hash values the reading takes: ``first_of`` (COMPRESSED or RAW) always,
    ``third_of`` (NONE, COMPRESSED or RAW) in the larger branch; ``hc`` over the compressed
    bytes, ``hr`` over the raw page (0 where not taken)."""
    words = pages.view(np.uint64)
    dct = np.empty(LZO.D_SIZE, np.uint16)
    table = np.empty(1 << LZ4.HASH_LOG, np.uint16)
    for i in range(lo, hi):
        hc[i] = 0
        hr[i] = 0
        big[i] = 0
        if detect_same and F._same_filled_row(words[i]):
            sflags[i] = 1
            fills[i] = words[i, 0]
            lengths[i] = 0
            continue
        sflags[i] = 0
        fills[i] = 0
        if use_lzo:
            n = LZO.compress_block(pages[i], out[i], dct, param != 0)
        else:
            n = LZ4.compress_block(pages[i], out[i], table, param)
        lengths[i] = n
        large = not (n < size or (n == size and equal_smaller))
        big[i] = 1 if large else 0
        want_c = first_of == COMPRESSED or (large and third_of == COMPRESSED)
        want_r = first_of == RAW or (large and third_of == RAW)
        if want_c:
            hc[i] = hash_bytes(hkind, out[i], n)
        if want_r:
            hr[i] = hash_bytes(hkind, pages[i], PAGE_SIZE)


@njit(cache=True, nogil=True, inline="always")
def _same_bytes(a, b, n):
    """``a[:n] == b[:n]``, 8 bytes at a time (C-contiguous uint8 rows)."""
    j = 0
    while j + 8 <= n:
        if _read64(a, j) != _read64(b, j):
            return False
        j += 8
    while j < n:
        if a[j] != b[j]:
            return False
        j += 1
    return True


@njit(cache=True, nogil=True)
def decide(pool, pages, out, lengths, sflags, big, probe, skey, identity_full, hugecls,
           n_old, o_big, o_key, o_size, o_hid, o_frow, o_stale, o_frames,
           act, ent, e_big, e_key, e_size, e_row, purged):
    """Decide every page of a prepared batch, in order (see the module's docstring).

    Entries ``0..n_old`` are the index's entries from earlier batches (``o_*``: branch, hash
    value, stored size, zsmalloc handle id, the row of ``o_frames`` holding their resident
    frame's page or -1, whether that frame is freed), already in their chains' order; their
    stored bytes are read from the pool's arrays. New entries get ids from ``n_old``; ``e_*`` give their branch, hash value,
    stored size and batch row. Per page: ``act`` (ACT_*), ``ent`` (the entry stored, or found).
    Returns (entries in all, compares, bytes compared, entries purged into ``purged``)."""
    k = pages.shape[0]
    cap = n_old + k
    nxt = np.full(cap, -1, np.int64)
    alive = np.ones(cap, np.uint8)
    scratch = np.empty(PAGE_SIZE, np.uint8)
    heads_s = Dict.empty(key_type=types.uint64, value_type=types.int64)
    tails_s = Dict.empty(key_type=types.uint64, value_type=types.int64)
    heads_l = Dict.empty(key_type=types.uint64, value_type=types.int64)
    tails_l = Dict.empty(key_type=types.uint64, value_type=types.int64)
    for e in range(n_old):                              # chains in the order the lists hold them
        e_big[e] = o_big[e]
        e_key[e] = o_key[e]
        e_size[e] = o_size[e]
        e_row[e] = -1
        heads = heads_l if o_big[e] else heads_s
        tails = tails_l if o_big[e] else tails_s
        kk = o_key[e]
        if kk in tails:
            nxt[tails[kk]] = e
        else:
            heads[kk] = e
        tails[kk] = e
    ne = n_old
    npurged = 0
    compares = 0
    bcompared = 0
    for i in range(k):
        if sflags[i]:
            act[i] = ACT_SAME
            ent[i] = -1
            continue
        large = big[i] != 0
        heads = heads_l if large else heads_s
        tails = tails_l if large else tails_s
        clen = lengths[i]
        found = -1
        kk = probe[i]
        prev = -1
        e = heads[kk] if kk in heads else -1
        while e >= 0:
            nx = nxt[e]
            if e < n_old and o_stale[e]:                # its last mapper let go: a stale entry
                alive[e] = 0
                purged[npurged] = e
                npurged += 1
                if prev >= 0:
                    nxt[prev] = nx
                else:
                    if nx >= 0:
                        heads[kk] = nx
                    else:
                        del heads[kk]
                if nx < 0:
                    if prev >= 0:
                        tails[kk] = prev
                    else:
                        del tails[kk]
                e = nx
                continue
            compares += 1
            if identity_full:
                if e < n_old:
                    if o_frow[e] >= 0:                  # the resident frame's page
                        equal = _same_bytes(o_frames[o_frow[e]], pages[i], PAGE_SIZE)
                        bcompared += PAGE_SIZE
                    elif large or o_size[e] == PAGE_SIZE:   # stored whole
                        F.read_object(pool, o_hid[e], PAGE_SIZE, scratch)
                        equal = _same_bytes(scratch, pages[i], PAGE_SIZE)
                        bcompared += PAGE_SIZE
                    else:                               # the stored compressed bytes
                        equal = False
                        if o_size[e] == clen:
                            F.read_object(pool, o_hid[e], clen, scratch)
                            equal = _same_bytes(scratch, out[i], clen)
                        bcompared += clen
                else:
                    r = e_row[e]
                    if large or e_size[e] == PAGE_SIZE:
                        equal = _same_bytes(pages[r], pages[i], PAGE_SIZE)
                        bcompared += PAGE_SIZE
                    else:
                        equal = lengths[r] == clen and _same_bytes(out[r], out[i], clen)
                        bcompared += clen
            else:
                equal = True
            if equal:
                found = e
                break
            prev = e
            e = nx
        if found >= 0:
            act[i] = ACT_SHARED
            ent[i] = found
            continue
        e = ne
        ne += 1
        e_big[e] = big[i]
        e_key[e] = skey[i]
        e_size[e] = PAGE_SIZE if (large or clen >= hugecls) else clen
        e_row[e] = i
        kk = skey[i]
        if kk in tails:
            nxt[tails[kk]] = e
        else:
            heads[kk] = e
        tails[kk] = e
        act[i] = ACT_STORED
        ent[i] = e
    return ne, compares, bcompared, npurged


@njit(cache=True, nogil=True)
def store_pages(pool, pages, out, lengths, sflags, fills, big, act, ent, slot_of_page, e_slot, remap, j0,
                zflags, zhandle, zsize, D):
    """Store the batch's pages in order, from row ``j0``, with zram's own compiled steps
    (``engine._zram_fast``): same-filled pages as their fill word, stored pages as
    ``zram_write_page`` would (the larger branch whole, as ``store_uncompressed``), and under
    ``remap`` each shared page as a new slot on the found page's handle. No ``mem_limit`` here
    (the caller takes the Python path under one). Returns (status, row) as
    ``_zram_fast.store_batch`` (``ST_GROW``: grow the pool's arrays and resume at that row, not
    yet touched)."""
    CR = pool[2]
    k = pages.shape[0]
    none = np.zeros(1, np.int64)
    for j in range(j0, k):
        idx = slot_of_page[j]
        a = act[j]
        if a == ACT_SAME:
            F.slot_free(pool, zflags, zhandle, zsize, D, idx)
            F.slot_set_same(zflags, zhandle, D, idx, fills[j])
            continue
        if a == ACT_SHARED:
            if remap:                                   # share_slot: no allocation, counted once
                src = e_slot[ent[j]]
                n = zsize[src]
                value = zhandle[src]
                F.slot_free(pool, zflags, zhandle, zsize, D, idx)
                F.slot_set_object(zflags, zhandle, zsize, D, idx, value, n, n == PAGE_SIZE, False)
            continue
        if big[j]:                                      # store_uncompressed: the whole page
            n, huge = PAGE_SIZE, True
        else:
            n, huge = F.object_size(D, lengths[j])
        if not F._room_for(pool, CR[n]):
            return F.ST_GROW, j
        if not big[j]:
            D[F.D_WORKC] += 1                           # write_page's compression (not store_uncompressed)
        hid = F.store_object(pool, D, pages[j] if huge else out[j], n, j, none, False, none)
        if zflags[idx] or zsize[idx]:
            F.slot_free(pool, zflags, zhandle, zsize, D, idx)
        F.slot_set_object(zflags, zhandle, zsize, D, idx, F.handle_of(hid), n, huge, True)
    return F.ST_DONE, k


_EXECUTOR = None


def workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def executor():
    """Worker threads for :func:`prepare_claim` (one per usable core, made once per process:
    a child made by fork() has none of its parent's threads and makes its own)."""
    global _EXECUTOR
    if _EXECUTOR is None or _EXECUTOR[0] != os.getpid():
        from concurrent.futures import ThreadPoolExecutor
        _EXECUTOR = (os.getpid(), ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="claim-prepare"))
    return _EXECUTOR[1]
