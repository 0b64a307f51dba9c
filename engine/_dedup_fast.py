"""Compiled write path of zram inline dedup (Joonsoo Kim 2017), in machine code (numba).

The fast path of :class:`engine.mechanisms.zram_dedup.ZramDedupDevice` (nobody listens on the
event bus, the kernel's backends). It follows the Python path, which stays the reference, step
by step, so every decision, counter and byte read back is the same:

* per page, in the worker threads (no state is read): the same-filled test, the 32-bit
  checksum of the uncompressed page (``jhash(page, 4096, 0)`` as posted, or the low 32 bits of
  XXH64 as the later ports; a checksum the model cannot compile is computed in Python before
  the batch is handed out), and the compression, *speculatively*: a page is compressed ahead
  only when no page with its checksum (modulo a 4 Mi-entry filter) was prepared before, since
  the others are most likely duplicates. A page whose guess was wrong is compressed on the
  storing thread when its lookup misses. Which pages were compressed ahead changes nothing
  but the time taken: a page compresses to the same bytes wherever it is compressed;
* then one page at a time, in order, what the kernel's ``zram_write_page`` with dedup does:
  the checksum is looked up *before* compressing (``zram_dedup_find``); every entry with an
  equal checksum, newest first (``compare="all"``; only the newest with ``"first"``), is read
  from the pool, decompressed unless it was stored whole, and compared with the page in full.
  On a match the slot points at that entry (refcount + 1, ``dup_data_size`` + its length;
  no compression, no allocation, no ``mem_limit`` check). Otherwise the page's compressed
  form is stored as zram stores it (``engine._zram_fast``: class, ``zs_malloc``, the object
  write, ``mem_used_max``, ``mem_limit`` with the rest of a refused I/O skipped) and gets a
  new entry.

The work counted is the kernel's, whatever the model computed ahead: a page hashed is one
that reached the lookup (not one skipped with its refused I/O), a compression is one per
lookup that missed (a duplicate's speculative compression is not counted), a decompression
and a compare one per candidate tried.

State in arrays: the slot table holds, for a stored object, its entry's id (``zram_entry``
row); the entry table ``E`` (handle id, length, checksum, refcount, and the links of its hash
chain); a stack of free entry rows; and the hash index as bucket heads (a power of two at
least the device's page count) with doubly linked chains in which an entry is inserted at the
head, so the entries of one checksum are met newest first, as the kernel's trees give them.
The bucket count is the model's own (the kernel's ``hash_size`` buckets are trees ordered by
checksum, which only changes how long a lookup takes, not what it finds);
``ZramDedup.metadata_bytes`` keeps counting the kernel's buckets.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import _zram_fast as F
from .compress import _lz4_kernel as LZ4
from .compress import _lzo_kernel as LZO
from .compress._unaligned import read32, read64
from .hashes import JHASH_INITVAL, _jhash_final, _jhash_mix, jhash_bytes, xxh64

PAGE_SIZE = 4096
ZRAM_SAME = F.ZRAM_SAME
ZRAM_HUGE = F.ZRAM_HUGE

# entry table columns (E)
E_HID, E_LEN, E_CSUM, E_REF, E_NEXT, E_PREV = range(6)
E_COLS = 6
# dedup scalars (DD)
DD_DUP, DD_ENTRIES, DD_NFREE, DD_NEXT, DD_RUNS = range(5)
DD_COLS = 5
# work counters (W), in the order of engine.mechanisms.base.Work
W_HASHED, W_BYTES_HASHED, W_COMPARES, W_BYTES_COMPARED, W_COMPRESSIONS, W_DECOMPRESSIONS = range(6)
W_COLS = 6
# how the checksum is computed
HASH_JHASH, HASH_XXH, HASH_ZERO, HASH_GIVEN = range(4)
#: entries of the filter that decides which pages are compressed ahead
SEEN_SIZE = 1 << 22
#: a store loop status: a stored object did not decompress to a page
ST_CORRUPT = 3

_M32 = 0xFFFFFFFF


def bucket_count(num_pages: int) -> int:
    """Hash chains of the model's index: a power of two, at least the page count (1024..2**22)."""
    n = 1024
    while n < num_pages and n < (1 << 22):
        n <<= 1
    return n


# -- checksums ---------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def jhash_pages2(x, y):
    """``jhash(x, 4096, 0)`` and ``jhash(y, 4096, 0)`` at once, with ``engine.hashes``' own
    rounds (``_jhash_mix``, ``_jhash_final``) and loads. jhash is one long chain of dependent
    steps; two independent chains side by side let the core run both in about 1.4 times the
    time of one. 4096 bytes are 341 rounds of 12, then a tail of 4 (into ``a``)."""
    a = b = c = (JHASH_INITVAL + PAGE_SIZE) & _M32
    d = e = f = a
    p = 0
    for _ in range(341):
        a = (a + np.int64(read32(x, p))) & _M32
        b = (b + np.int64(read32(x, p + 4))) & _M32
        c = (c + np.int64(read32(x, p + 8))) & _M32
        d = (d + np.int64(read32(y, p))) & _M32
        e = (e + np.int64(read32(y, p + 4))) & _M32
        f = (f + np.int64(read32(y, p + 8))) & _M32
        a, b, c = _jhash_mix(a, b, c)
        d, e, f = _jhash_mix(d, e, f)
        p += 12
    a = (a + np.int64(read32(x, p))) & _M32
    d = (d + np.int64(read32(y, p))) & _M32
    return _jhash_final(a, b, c), _jhash_final(d, e, f)


@njit(cache=True, nogil=True, inline="always")
def _checksums(pages, lo, hi, skip, hash_kind, csums):
    """The checksum of rows ``lo..hi`` whose ``skip`` is 0 (jhash two pages at a time)."""
    if hash_kind == HASH_JHASH:
        pend = -1
        for i in range(lo, hi):
            if skip[i]:
                continue
            if pend < 0:
                pend = i
            else:
                csums[pend], csums[i] = jhash_pages2(pages[pend], pages[i])
                pend = -1
        if pend >= 0:
            csums[pend] = jhash_bytes(pages[pend], PAGE_SIZE, 0)
    else:
        for i in range(lo, hi):
            if not skip[i]:
                csums[i] = _checksum(pages[i], hash_kind)


@njit(cache=True, nogil=True, inline="always")
def _checksum(page, hash_kind):
    if hash_kind == HASH_JHASH:
        return jhash_bytes(page, PAGE_SIZE, 0)
    if hash_kind == HASH_XXH:
        return np.int64(xxh64(page, PAGE_SIZE, np.uint64(0)) & np.uint64(_M32))
    return np.int64(0)


@njit(cache=True, nogil=True)
def checksum_rows(pages, hash_kind, out):
    """The checksum of every row, as ``prepare`` computes them (for tests)."""
    _checksums(pages, 0, pages.shape[0], np.zeros(pages.shape[0], np.uint8), hash_kind, out)


# -- the parallel step -------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def prepare(pages, lo, hi, sflags, fills, out, lengths, csums, comped, detect_same, lz4, param, hash_kind, seen):
    """Rows ``lo..hi`` of a batch: the same-filled test, the checksum (into ``csums``, unless
    ``hash_kind`` is ``HASH_GIVEN``: then already there) and the speculative compression
    (``comped[i]`` 1 when compressed ahead, into ``out``/``lengths``). Reads no device state
    but the filter ``seen``, whose races only move a compression between threads."""
    words = pages.view(np.uint64)
    table = np.empty(1 << LZ4.HASH_LOG, np.uint16)
    dct = np.empty(LZO.D_SIZE, np.uint16)
    for i in range(lo, hi):
        if detect_same and F._same_filled_row(words[i]):
            sflags[i] = 1
            fills[i] = words[i, 0]
        else:
            sflags[i] = 0
            fills[i] = 0
    if hash_kind != HASH_GIVEN:
        _checksums(pages, lo, hi, sflags, hash_kind, csums)
    for i in range(lo, hi):
        if sflags[i]:
            lengths[i] = 0
            comped[i] = 0
            continue
        s = csums[i] & (SEEN_SIZE - 1)
        if seen[s]:
            comped[i] = 0
            lengths[i] = 0
            continue
        seen[s] = 1
        if lz4:
            lengths[i] = LZ4.compress_block(pages[i], out[i], table, param)
        else:
            lengths[i] = LZO.compress_block(pages[i], out[i], dct, param)
        comped[i] = 1


# -- the entry table and the hash index ----------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _chain_push(E, BH, e, mask):
    """Insert entry ``e`` at the head of its checksum's chain (newest first)."""
    b = E[e, E_CSUM] & mask
    h = BH[b]
    E[e, E_NEXT] = h
    E[e, E_PREV] = -1
    if h >= 0:
        E[h, E_PREV] = e
    BH[b] = e


@njit(cache=True, nogil=True, inline="always")
def _chain_remove(E, BH, e, mask):
    nx = E[e, E_NEXT]
    pv = E[e, E_PREV]
    if pv >= 0:
        E[pv, E_NEXT] = nx
    else:
        BH[E[e, E_CSUM] & mask] = nx
    if nx >= 0:
        E[nx, E_PREV] = pv


@njit(cache=True, nogil=True, inline="always")
def _new_entry(E, EF, BH, DD, hid, n, csum, mask):
    if DD[DD_NFREE] > 0:
        DD[DD_NFREE] -= 1
        e = EF[DD[DD_NFREE]]
    else:
        e = DD[DD_NEXT]
        DD[DD_NEXT] += 1
    E[e, E_HID] = hid
    E[e, E_LEN] = n
    E[e, E_CSUM] = csum
    E[e, E_REF] = 1
    _chain_push(E, BH, e, mask)
    DD[DD_ENTRIES] += 1
    return e


@njit(cache=True, nogil=True, inline="always")
def slot_free(pool, zflags, zhandle, zsize, D, E, EF, BH, DD, idx, port, mask):
    """``zram_free_page`` with dedup: a same-filled slot as plain zram; a stored object's entry
    loses a reference, and at none is unlinked and its object freed (``compr_data_size``
    drops then, or, under ``port`` accounting, for every slot freed)."""
    fl = zflags[idx]
    if fl & ZRAM_SAME:
        F.slot_free(pool, zflags, zhandle, zsize, D, idx)
        return
    size = zsize[idx]
    if size == 0:
        return
    if fl & ZRAM_HUGE:
        D[F.D_HUGE] -= 1
    e = np.int64(zhandle[idx])
    E[e, E_REF] -= 1
    if E[e, E_REF] == 0:
        _chain_remove(E, BH, e, mask)
        F.zs_free(pool, E[e, E_HID])
        DD[DD_ENTRIES] -= 1
        EF[DD[DD_NFREE]] = e
        DD[DD_NFREE] += 1
        if not port:
            D[F.D_COMPR] -= size
    else:
        DD[DD_DUP] -= E[e, E_LEN]
    if port:
        D[F.D_COMPR] -= size
    D[F.D_STORED] -= 1
    zflags[idx] = 0
    zhandle[idx] = 0
    zsize[idx] = 0


@njit(cache=True, nogil=True)
def free_slots(pool, zflags, zhandle, zsize, D, E, EF, BH, DD, indexes, port):
    mask = BH.shape[0] - 1
    for i in range(indexes.shape[0]):
        slot_free(pool, zflags, zhandle, zsize, D, E, EF, BH, DD, indexes[i], port, mask)


@njit(cache=True, nogil=True, inline="always")
def _pages_equal(a, b):
    for p in range(0, PAGE_SIZE, 8):
        if read64(a, p) != read64(b, p):
            return False
    return True


@njit(cache=True, nogil=True)
def _decompress(lz4, src, dst):
    if lz4:
        return LZ4.decompress_block(src, dst)
    return LZO.decompress_block(src, dst)


# -- the store loop ------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def store_batch(pool, pages, out, lengths, sflags, fills, csums, comped, indexes, start, j0, io_end, use_io,
                zflags, zhandle, zsize, D, failed_out, skipped_out, E, EF, BH, DD, W, compare_all, port, lz4,
                param, scratch, dpage, table, dct):
    """Store rows ``j0..`` of a prepared batch in order (see the module's docstring).

    Returns (status, row) as ``engine._zram_fast.store_batch``, or ``ST_CORRUPT`` at the row
    whose candidate did not decompress to a page. A row that stops the loop has changed no
    state and counted no work (it is looked up again when the loop resumes); a compression
    done for it on this thread is kept (``comped``)."""
    CR = pool[2]
    k = pages.shape[0]
    nslots = zflags.shape[0]
    mask = BH.shape[0] - 1
    for j in range(j0, k):
        pos = start + j
        gate = F.page_gate(indexes, pos, nslots, D, skipped_out)
        if gate == 2:
            return F.ST_BAD_INDEX, j
        if gate == 1:                                    # the rest of a refused I/O
            continue
        idx = indexes[pos]
        if sflags[j]:
            slot_free(pool, zflags, zhandle, zsize, D, E, EF, BH, DD, idx, port, mask)
            F.slot_set_same(zflags, zhandle, D, idx, fills[j])
            continue
        page = pages[j]
        csum = csums[j]
        n = 0
        huge = False
        # zram_dedup_find: every entry with this checksum, newest first, compared in full
        found = -1
        ncmp = 0
        ndec = 0
        e = BH[csum & mask]
        while e >= 0:
            if E[e, E_CSUM] == csum:
                n = E[e, E_LEN]
                F.read_object(pool, E[e, E_HID], n, scratch)
                ncmp += 1
                if n == PAGE_SIZE:
                    equal = _pages_equal(scratch, page)
                else:
                    ndec += 1
                    if _decompress(lz4, scratch[:n], dpage) != PAGE_SIZE:
                        return ST_CORRUPT, j
                    equal = _pages_equal(dpage, page)
                if equal:
                    found = e
                    break
                if not compare_all:
                    break
            e = E[e, E_NEXT]
        if found < 0:
            if not comped[j]:                            # guessed a duplicate: compress it now
                if lz4:
                    lengths[j] = LZ4.compress_block(page, out[j], table, param)
                else:
                    lengths[j] = LZO.compress_block(page, out[j], dct, param)
                comped[j] = 1
                DD[DD_RUNS] += 1
            n, huge = F.object_size(D, lengths[j])
            if not F._room_for(pool, CR[n]):
                return F.ST_GROW, j
        W[W_HASHED] += 1
        W[W_BYTES_HASHED] += PAGE_SIZE
        W[W_COMPARES] += ncmp
        W[W_BYTES_COMPARED] += ncmp * PAGE_SIZE
        W[W_DECOMPRESSIONS] += ndec
        if found >= 0:                                   # a hit: the slot shares the entry
            E[found, E_REF] += 1
            n = E[found, E_LEN]
            DD[DD_DUP] += n
            slot_free(pool, zflags, zhandle, zsize, D, E, EF, BH, DD, idx, port, mask)
            F.slot_set_object(zflags, zhandle, zsize, D, idx, np.uint64(found), n, n == PAGE_SIZE, False)
            continue
        W[W_COMPRESSIONS] += 1
        hid = F.store_object(pool, D, page if huge else out[j], n, pos, io_end, use_io, failed_out)
        if hid < 0:
            continue
        if zflags[idx] or zsize[idx]:
            slot_free(pool, zflags, zhandle, zsize, D, E, EF, BH, DD, idx, port, mask)
        e = _new_entry(E, EF, BH, DD, hid, n, csum, mask)
        F.slot_set_object(zflags, zhandle, zsize, D, idx, np.uint64(e), n, huge, True)
    return F.ST_DONE, k


@njit(cache=True, nogil=True)
def entries_in_chain_order(E, BH, out):
    """The live entries, bucket by bucket, each chain from its head (the entries of one
    checksum newest first); returns how many were written to ``out``."""
    m = 0
    for b in range(BH.shape[0]):
        e = BH[b]
        while e >= 0:
            out[m] = e
            m += 1
            e = E[e, E_NEXT]
    return m


@njit(cache=True, nogil=True)
def load_chains(E, BH, order):
    """Link entries into the chains, ``order`` oldest first (each pushed at its chain's head)."""
    mask = BH.shape[0] - 1
    for i in range(order.shape[0]):
        _chain_push(E, BH, order[i], mask)
