"""Compiled zram write path: the same-filled test, compression, class lookup, ``zs_malloc``,
the object write and the slot update over a batch of pages, in machine code (numba).

This is the fast path of :class:`engine.zram.ZramDevice` for the common case (nobody listens
on the event bus, a plain ``ZramDevice`` over a plain ``ZsPool``, one of the kernel's
backends). It follows the Python model step by step, so its results are identical:

* the same-filled test and the compression of every page of a batch run first, spread over
  all cores: ``prepare_lz4``/``prepare_lzo`` release the GIL, and ``ZramDevice`` hands ranges
  of a few hundred pages to one worker thread per core as they come free (dynamic, so a core
  taken by another process does not hold the batch back), while it stores the batch before.
  Each page is compressed on its own with a cleared scratch table (the kernels of
  ``engine.compress``), so its bytes do not depend on which thread ran it or on its
  neighbours;
* then, one page at a time and in order, what ``zram_write_page`` does: free the old object
  on an overwrite, pick the size class of the compressed length (a length of at least
  ``huge_class_size`` is stored as the raw page), ``zs_malloc`` (the fullest non-full zspage of
  the class first, the head of that fullness list, a new zspage when none; the zspage's LIFO
  free list of slots, linked through the first word of each free slot; the fullness group
  after the change; handles reused LIFO), write the 8-byte header ``handle | 1`` and the
  payload into the zspage's pages, sample ``mem_used_max``, check ``mem_limit`` (a refused
  object is freed and the rest of its I/O skipped), and update the slot.

The pool's state lives in arrays here (see :class:`PoolArrays`): one row per zspage (id,
class, objects in use, fullness group, free-list head, the doubly linked fullness list), its
page frames, one row per handle (zspage, object index), the free stacks of handles, zspage
rows and page frames, and the frames themselves (4 KiB each, addressed by ``pfn -
PFN_BASE``). ``ZsPool`` converts between this and its object form (``Zspage`` objects with
their own bytes); the conversion is exact in both directions, including every zspage's bytes,
free list and list position.

A batch stops early (and is resumed by the caller after growing the arrays) when a page
would need a new handle, zspage row or page frame beyond the arrays' capacity; that check
runs before the page changes any state.
"""
from __future__ import annotations

import mmap
import os

import numpy as np
from numba import njit

from .compress import _lz4_kernel as LZ4
from .compress import _lzo_kernel as LZO
from .compress._unaligned import memcpy

PAGE_SIZE = 4096
ZS_HANDLE_SIZE = 8
HANDLE_BASE = 0xFFFF888000000000
END_LINK = 0xFFFFFFFFFFFFFFFE
GROUP_EMPTY = 0
GROUP_FULL = 11
FULLNESS_GROUPS = 12
ZRAM_SAME = 1
ZRAM_HUGE = 2

# zspage row columns (Z)
Z_ID, Z_CLS, Z_INUSE, Z_GROUP, Z_FREE, Z_NEXT, Z_PREV, Z_HUGEH = range(8)
Z_COLS = 8
# class columns (C), indexed by the class's table index
C_SIZE, C_PPZ, C_OBJS, C_HUGE, C_ALLOC, C_INUSE = range(6)
C_COLS = 6
# pool scalars (P)
P_PAGES, P_NEXT_FRAME, P_NFREE_FRAMES, P_NEXT_HID, P_NFREE_H, P_NEXT_ZID, P_NFREE_Z, P_NEXT_ZSLOT, P_LIVE = range(9)
P_COLS = 9
# device scalars (D)
(D_STORED, D_COMPR, D_SAME, D_HUGE, D_HUGE_SINCE, D_MAXUSED, D_FAILED, D_WORKC, D_LIMIT, D_HUGECLS,
 D_SKIPTO, D_NFAILED, D_NSKIPPED) = range(13)
D_COLS = 13

ST_DONE, ST_GROW, ST_BAD_INDEX = 0, 1, 2


def _arena(frames: int):
    """Page frames for zspages: an anonymous mapping, committed only as frames are touched,
    with transparent huge pages asked for (fewer page faults while the pool grows)."""
    m = mmap.mmap(-1, frames * PAGE_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            m.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return np.frombuffer(m, np.uint8).reshape(frames, PAGE_SIZE)


def _reserve_frames(pages: int) -> int:
    """Frames to reserve for a pool expected to hold up to ``pages`` pages: a quarter more
    for fragmentation, at most three quarters of RAM (more is grown on demand)."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        ram = 1 << 20
    return int(max(256, min(pages + pages // 4 + 1024, ram * 3 // 4)))


class PoolArrays:
    """A zsmalloc pool's state as arrays (see the module's docstring). Rows past the
    high-water marks are uninitialised (``np.empty``, not committed until used)."""

    def __init__(self, classes_table: np.ndarray, class_by_request: np.ndarray, cap_h=1024, cap_z=256,
                 cap_frames=256):
        self.C = classes_table
        self.CR = class_by_request
        self.CH = np.full((classes_table.shape[0], FULLNESS_GROUPS), -1, np.int64)
        self.P = np.zeros(P_COLS, np.int64)
        self.Z = np.empty((cap_z, Z_COLS), np.int64)
        self.ZP = np.empty((cap_z, 8), np.int64)
        self.ZF = np.empty(cap_z, np.int64)
        self.H = np.empty((cap_h, 2), np.int64)
        self.HF = np.empty(cap_h, np.int64)
        self.PF = np.empty(cap_frames, np.int64)
        self.A = _arena(cap_frames)
        self.A64 = self.A.view(np.uint64)

    def tup(self):
        return (self.P, self.C, self.CR, self.CH, self.Z, self.ZP, self.ZF, self.H, self.HF, self.PF, self.A,
                self.A64)

    @staticmethod
    def _grown(a, n):
        b = np.empty((n,) + a.shape[1:], a.dtype)
        b[:a.shape[0]] = a
        return b

    def grow(self, pages: int = 1) -> None:
        """Room for at least ``pages`` more pages' worth of new handles, zspages and frames."""
        P = self.P
        need_h = P[P_NEXT_HID] + pages + 1
        if need_h > self.H.shape[0]:
            n = max(need_h, 2 * self.H.shape[0])
            self.H, self.HF = self._grown(self.H, n), self._grown(self.HF, n)
        need_z = P[P_NEXT_ZSLOT] + pages + 1
        if need_z > self.Z.shape[0]:
            n = max(need_z, 2 * self.Z.shape[0])
            self.Z, self.ZP, self.ZF = self._grown(self.Z, n), self._grown(self.ZP, n), self._grown(self.ZF, n)
        need_f = P[P_NEXT_FRAME] + 8 * min(pages, 64) + 8
        if need_f > self.A.shape[0]:
            n = int(max(need_f, self.A.shape[0] + self.A.shape[0] // 2 + 256))
            A = _arena(n)
            used = int(P[P_NEXT_FRAME])
            A[:used] = self.A[:used]
            self.A, self.A64 = A, A.view(np.uint64)
            self.PF = self._grown(self.PF, n)


# -- the same-filled test and compression of a batch, on all cores ------------------------------

@njit(cache=True, nogil=True, inline="always")
def _same_filled_row(w):
    v = w[0]
    if w[511] != v:
        return False
    for j in range(1, 511):
        if w[j] != v:
            return False
    return True


@njit(cache=True, nogil=True)
def prepare_lz4(pages, lo, hi, sflags, fills, out, lengths, detect_same, acceleration):
    """Rows ``lo..hi`` of ``pages``: the same-filled test (``detect_same``) and LZ4 compression
    of the other rows (into ``out``, lengths into ``lengths``). Runs without the GIL, so
    several threads can prepare disjoint ranges of one batch at once."""
    words = pages.view(np.uint64)
    table = np.empty(1 << LZ4.HASH_LOG, np.uint16)
    for i in range(lo, hi):
        if detect_same and _same_filled_row(words[i]):
            sflags[i] = 1
            fills[i] = words[i, 0]
            lengths[i] = 0
        else:
            sflags[i] = 0
            fills[i] = 0
            lengths[i] = LZ4.compress_block(pages[i], out[i], table, acceleration)


@njit(cache=True, nogil=True)
def prepare_lzo(pages, lo, hi, sflags, fills, out, lengths, detect_same, rle):
    """As :func:`prepare_lz4`, with LZO (``rle`` false) or LZO-RLE."""
    words = pages.view(np.uint64)
    dct = np.empty(LZO.D_SIZE, np.uint16)
    for i in range(lo, hi):
        if detect_same and _same_filled_row(words[i]):
            sflags[i] = 1
            fills[i] = words[i, 0]
            lengths[i] = 0
        else:
            sflags[i] = 0
            fills[i] = 0
            lengths[i] = LZO.compress_block(pages[i], out[i], dct, rle)


# -- zsmalloc on arrays --------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _group_of(inuse, objs):
    if inuse == 0:
        return GROUP_EMPTY
    if inuse == objs:
        return GROUP_FULL
    return (100 * inuse // objs) // 10 + 1


@njit(cache=True, nogil=True, inline="always")
def _list_remove(CH, Z, zs):
    c = Z[zs, Z_CLS]
    g = Z[zs, Z_GROUP]
    nx = Z[zs, Z_NEXT]
    pv = Z[zs, Z_PREV]
    if pv >= 0:
        Z[pv, Z_NEXT] = nx
    else:
        CH[c, g] = nx
    if nx >= 0:
        Z[nx, Z_PREV] = pv
    Z[zs, Z_NEXT] = -1
    Z[zs, Z_PREV] = -1


@njit(cache=True, nogil=True, inline="always")
def _list_push(CH, Z, zs, g):
    """Insert at the head of group ``g`` (the kernel's insert_zspage)."""
    c = Z[zs, Z_CLS]
    Z[zs, Z_GROUP] = g
    h = CH[c, g]
    Z[zs, Z_NEXT] = h
    Z[zs, Z_PREV] = -1
    if h >= 0:
        Z[h, Z_PREV] = zs
    CH[c, g] = zs


@njit(cache=True, nogil=True, inline="always")
def _word_at(ZP, A64, zs, off):
    return A64[ZP[zs, off >> 12], (off & 4095) >> 3]


@njit(cache=True, nogil=True, inline="always")
def _set_word(ZP, A64, zs, off, v):
    A64[ZP[zs, off >> 12], (off & 4095) >> 3] = v


@njit(cache=True, nogil=True, inline="always")
def _find_zspage(CH, c):
    for g in range(GROUP_FULL - 1, -1, -1):           # fullest non-full group first (10 .. 0)
        if CH[c, g] >= 0:
            return CH[c, g]
    return -1


@njit(cache=True, nogil=True, inline="always")
def _room_for(pool, c):
    """Whether one more zs_malloc in class ``c`` fits the arrays (checked before any change)."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    if P[P_NFREE_H] == 0 and P[P_NEXT_HID] >= H.shape[0]:
        return False
    if _find_zspage(CH, c) < 0:
        if P[P_NFREE_Z] == 0 and P[P_NEXT_ZSLOT] >= Z.shape[0]:
            return False
        if P[P_NFREE_FRAMES] + (A.shape[0] - P[P_NEXT_FRAME]) < C[c, C_PPZ]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _alloc_zspage(pool, c):
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    if P[P_NFREE_Z] > 0:
        P[P_NFREE_Z] -= 1
        zs = ZF[P[P_NFREE_Z]]
    else:
        zs = P[P_NEXT_ZSLOT]
        P[P_NEXT_ZSLOT] += 1
    ppz = C[c, C_PPZ]
    for p in range(8):
        ZP[zs, p] = -1
    for p in range(ppz):
        if P[P_NFREE_FRAMES] > 0:
            P[P_NFREE_FRAMES] -= 1
            f = PF[P[P_NFREE_FRAMES]]
            A64[f, :] = 0                               # a new zspage's bytes start as zeros
        else:
            f = P[P_NEXT_FRAME]                         # never used: still zeros
            P[P_NEXT_FRAME] += 1
        ZP[zs, p] = f
    Z[zs, Z_ID] = P[P_NEXT_ZID]
    P[P_NEXT_ZID] += 1
    Z[zs, Z_CLS] = c
    Z[zs, Z_INUSE] = 0
    Z[zs, Z_GROUP] = GROUP_EMPTY
    Z[zs, Z_FREE] = 0
    Z[zs, Z_NEXT] = -1
    Z[zs, Z_PREV] = -1
    Z[zs, Z_HUGEH] = -1
    objs = C[c, C_OBJS]
    if not C[c, C_HUGE]:
        size = C[c, C_SIZE]
        for i in range(objs - 1):                       # free list: slot i -> i + 1
            _set_word(ZP, A64, zs, i * size, np.uint64(i + 1) << np.uint64(1))
        _set_word(ZP, A64, zs, (objs - 1) * size, np.uint64(END_LINK))
    P[P_PAGES] += ppz
    C[c, C_ALLOC] += objs
    return zs


@njit(cache=True, nogil=True, inline="always")
def _free_zspage(pool, zs):
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    c = Z[zs, Z_CLS]
    ppz = C[c, C_PPZ]
    _list_remove(CH, Z, zs)
    P[P_PAGES] -= ppz
    C[c, C_ALLOC] -= C[c, C_OBJS]
    for p in range(ppz - 1, -1, -1):                    # _free_pfns.extend(reversed(pfns))
        PF[P[P_NFREE_FRAMES]] = ZP[zs, p]
        P[P_NFREE_FRAMES] += 1
    Z[zs, Z_ID] = -1
    Z[zs, Z_CLS] = -1
    ZF[P[P_NFREE_Z]] = zs
    P[P_NFREE_Z] += 1


@njit(cache=True, nogil=True, inline="always")
def zs_malloc(pool, c):
    """``zs_malloc`` in class ``c`` (room already checked); returns the handle id."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    if P[P_NFREE_H] > 0:
        P[P_NFREE_H] -= 1
        hid = HF[P[P_NFREE_H]]
    else:
        hid = P[P_NEXT_HID]
        P[P_NEXT_HID] += 1
    zs = _find_zspage(CH, c)
    new = zs < 0
    if new:
        zs = _alloc_zspage(pool, c)
    size = C[c, C_SIZE]
    idx = Z[zs, Z_FREE]
    if C[c, C_HUGE]:
        Z[zs, Z_FREE] = -1
        Z[zs, Z_HUGEH] = hid
    else:
        link = _word_at(ZP, A64, zs, idx * size)
        Z[zs, Z_FREE] = -1 if link == np.uint64(END_LINK) else np.int64(link >> np.uint64(1))
        _set_word(ZP, A64, zs, idx * size,
                  (np.uint64(HANDLE_BASE) + (np.uint64(hid) << np.uint64(3))) | np.uint64(1))
    Z[zs, Z_INUSE] += 1
    H[hid, 0] = zs
    H[hid, 1] = idx
    g = _group_of(Z[zs, Z_INUSE], C[c, C_OBJS])
    if new:
        _list_push(CH, Z, zs, g)
    elif g != Z[zs, Z_GROUP]:
        _list_remove(CH, Z, zs)
        _list_push(CH, Z, zs, g)
    C[c, C_INUSE] += 1
    P[P_LIVE] += 1
    return hid


@njit(cache=True, nogil=True, inline="always")
def zs_free(pool, hid):
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    zs = H[hid, 0]
    idx = H[hid, 1]
    H[hid, 0] = -1
    H[hid, 1] = -1
    c = Z[zs, Z_CLS]
    if C[c, C_HUGE]:
        Z[zs, Z_HUGEH] = -1
    else:
        head = Z[zs, Z_FREE]
        link = np.uint64(END_LINK) if head < 0 else np.uint64(head) << np.uint64(1)
        _set_word(ZP, A64, zs, idx * C[c, C_SIZE], link)
    Z[zs, Z_FREE] = idx
    Z[zs, Z_INUSE] -= 1
    C[c, C_INUSE] -= 1
    P[P_LIVE] -= 1
    HF[P[P_NFREE_H]] = hid
    P[P_NFREE_H] += 1
    g = _group_of(Z[zs, Z_INUSE], C[c, C_OBJS])
    if g == GROUP_EMPTY:
        _free_zspage(pool, zs)
    elif g != Z[zs, Z_GROUP]:
        _list_remove(CH, Z, zs)
        _list_push(CH, Z, zs, g)


@njit(cache=True, nogil=True, inline="always")
def _write_payload(pool, hid, src, n):
    """``zs_obj_write``: ``src[:n]`` after the header (at the slot's start when huge); an
    object may run over into the zspage's next page. Copied with one memcpy per page it
    touches (a numba slice assignment copies element by element, about ten times slower)."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    zs = H[hid, 0]
    c = Z[zs, Z_CLS]
    off = H[hid, 1] * C[c, C_SIZE] + (0 if C[c, C_HUGE] else ZS_HANDLE_SIZE)
    done = 0
    while done < n:
        f = ZP[zs, off >> 12]
        o = off & 4095
        m = min(n - done, PAGE_SIZE - o)
        memcpy(A[f], o, src, done, m)
        done += m
        off += m


@njit(cache=True, nogil=True)
def read_object(pool, hid, n, dst):
    """``zs_obj_read``: the first ``n`` payload bytes of the object into ``dst`` (C-contiguous
    uint8)."""
    P, C, CR, CH, Z, ZP, ZF, H, HF, PF, A, A64 = pool
    zs = H[hid, 0]
    c = Z[zs, Z_CLS]
    off = H[hid, 1] * C[c, C_SIZE] + (0 if C[c, C_HUGE] else ZS_HANDLE_SIZE)
    done = 0
    while done < n:
        f = ZP[zs, off >> 12]
        o = off & 4095
        m = min(n - done, PAGE_SIZE - o)
        memcpy(dst, done, A[f], o, m)
        done += m
        off += m


@njit(cache=True, nogil=True, inline="always")
def _hid_of(handle):
    return np.int64((handle - np.uint64(HANDLE_BASE)) >> np.uint64(3))


@njit(cache=True, nogil=True, inline="always")
def slot_free(pool, zflags, zhandle, zsize, D, index):
    """``zram_slot_free``: release what slot ``index`` holds (nothing when empty)."""
    fl = zflags[index]
    size = zsize[index]
    if not (fl & ZRAM_SAME) and size == 0:
        return
    if fl & ZRAM_HUGE:
        D[D_HUGE] -= 1
    if fl & ZRAM_SAME:
        D[D_SAME] -= 1
    else:
        zs_free(pool, _hid_of(zhandle[index]))
        D[D_COMPR] -= size
    D[D_STORED] -= 1
    zflags[index] = 0
    zhandle[index] = 0
    zsize[index] = 0


@njit(cache=True, nogil=True)
def free_slots(pool, zflags, zhandle, zsize, D, indexes):
    for i in range(indexes.shape[0]):
        slot_free(pool, zflags, zhandle, zsize, D, indexes[i])


@njit(cache=True, nogil=True)
def io_end_of(indexes, io_pages):
    """For each position, the position just past its I/O (``engine.zram.io_spans``)."""
    n = indexes.shape[0]
    out = np.empty(n, np.int64)
    pos = 0
    while pos < n:
        start = indexes[pos]
        cnt = 1
        while pos + cnt < n and cnt < io_pages and indexes[pos + cnt] == start + cnt:
            cnt += 1
        for p in range(pos, pos + cnt):
            out[p] = pos + cnt
        pos += cnt
    return out


# -- the steps of zram_write_page, shared by every compiled store loop (plain zram, dedup) -------

@njit(cache=True, nogil=True, inline="always")
def page_gate(indexes, pos, nslots, D, skipped_out):
    """Before a page is stored: 0 to store it, 1 when it is the rest of a refused I/O (recorded
    as skipped), 2 when its slot is beyond disksize (nothing changed)."""
    idx = indexes[pos]
    if idx < 0 or idx >= nslots:
        return 2
    if pos < D[D_SKIPTO]:
        skipped_out[D[D_NSKIPPED]] = pos
        D[D_NSKIPPED] += 1
        return 1
    return 0


@njit(cache=True, nogil=True, inline="always")
def slot_set_same(zflags, zhandle, D, idx, fill):
    """A same-filled page into a freed slot: only the fill word is kept."""
    zflags[idx] = ZRAM_SAME
    zhandle[idx] = fill
    D[D_SAME] += 1
    D[D_STORED] += 1


@njit(cache=True, nogil=True, inline="always")
def object_size(D, clen):
    """The object a compressed length becomes: (bytes stored, huge); a length of at least
    ``huge_class_size`` is stored as the raw page."""
    if clen >= D[D_HUGECLS]:
        return PAGE_SIZE, True
    return clen, False


@njit(cache=True, nogil=True, inline="always")
def store_object(pool, D, src, n, pos, io_end, use_io, failed_out):
    """``zs_malloc`` of ``n`` bytes (room already checked with ``_room_for``), the object
    write, the ``mem_used_max`` sample and the ``mem_limit`` check. Returns the handle id, or
    -1 when the limit refused it (the object freed, ``failed_writes`` counted, the rest of
    its I/O to be skipped)."""
    P = pool[0]
    CR = pool[2]
    hid = zs_malloc(pool, CR[n])
    _write_payload(pool, hid, src, n)
    alloced = P[P_PAGES]
    if alloced > D[D_MAXUSED]:
        D[D_MAXUSED] = alloced
    if D[D_LIMIT] and alloced > D[D_LIMIT]:
        zs_free(pool, hid)
        D[D_FAILED] += 1
        failed_out[D[D_NFAILED]] = pos
        D[D_NFAILED] += 1
        if use_io:
            D[D_SKIPTO] = io_end[pos]
        return -1
    return hid


@njit(cache=True, nogil=True, inline="always")
def slot_set_object(zflags, zhandle, zsize, D, idx, value, n, huge, new_object):
    """Point a freed slot at an object of ``n`` bytes (``value``: the handle, or what a design
    keeps there); ``new_object``: a new allocation (counted in ``compr_data_size`` and
    ``huge_pages_since``), not a share of one stored before."""
    zhandle[idx] = value
    zsize[idx] = n
    if huge:
        zflags[idx] = ZRAM_HUGE
        D[D_HUGE] += 1
        if new_object:
            D[D_HUGE_SINCE] += 1
    D[D_STORED] += 1
    if new_object:
        D[D_COMPR] += n


@njit(cache=True, nogil=True, inline="always")
def handle_of(hid):
    return np.uint64(HANDLE_BASE) + (np.uint64(hid) << np.uint64(3))


@njit(cache=True, nogil=True, inline="always")
def store_loop(pool, pages, out, lengths, sflags, fills, indexes, start, j0, io_end, use_io,
               zflags, zhandle, zsize, D, failed_out, skipped_out, free_step, free_ctx):
    """Store rows ``j0..`` of a prepared batch in order, as ``zram_write_page`` per page, with
    the design's slot free: ``free_step(pool, zflags, zhandle, zsize, D, free_ctx, index)``
    (a compiled function; ``free_ctx`` the state it needs), called for the slot a page
    overwrites. Every design whose write differs from upstream's only in how a slot is freed
    (the merge series, the fold) runs this one loop.

    Returns (status, row): ``ST_DONE``; ``ST_GROW`` at the row that needs larger arrays (not
    yet touched); ``ST_BAD_INDEX`` at the row whose slot is out of range."""
    CR = pool[2]
    k = pages.shape[0]
    nslots = zflags.shape[0]
    for j in range(j0, k):
        pos = start + j
        gate = page_gate(indexes, pos, nslots, D, skipped_out)
        if gate == 2:
            return ST_BAD_INDEX, j
        if gate == 1:                                    # the rest of a refused I/O
            continue
        idx = indexes[pos]
        if sflags[j]:
            if zflags[idx] or zsize[idx]:
                free_step(pool, zflags, zhandle, zsize, D, free_ctx, idx)
            slot_set_same(zflags, zhandle, D, idx, fills[j])
            continue
        n, huge = object_size(D, lengths[j])
        if not _room_for(pool, CR[n]):
            return ST_GROW, j
        D[D_WORKC] += 1
        hid = store_object(pool, D, pages[j] if huge else out[j], n, pos, io_end, use_io, failed_out)
        if hid < 0:
            continue
        if zflags[idx] or zsize[idx]:
            free_step(pool, zflags, zhandle, zsize, D, free_ctx, idx)
        slot_set_object(zflags, zhandle, zsize, D, idx, handle_of(hid), n, huge, True)
    return ST_DONE, k


@njit(cache=True, nogil=True, inline="always")
def plain_free_step(pool, zflags, zhandle, zsize, D, ctx, index):
    """Upstream's slot free, as :func:`store_loop`'s ``free_step``."""
    slot_free(pool, zflags, zhandle, zsize, D, index)


@njit(cache=True, nogil=True)
def store_batch(pool, pages, out, lengths, sflags, fills, indexes, start, j0, io_end, use_io,
                zflags, zhandle, zsize, D, failed_out, skipped_out):
    """Store rows ``j0..`` of a prepared batch in order, as ``zram_write_page`` per page
    (:func:`store_loop` with upstream's slot free)."""
    return store_loop(pool, pages, out, lengths, sflags, fills, indexes, start, j0, io_end, use_io,
                      zflags, zhandle, zsize, D, failed_out, skipped_out, plain_free_step, 0)
