"""Compiled core of the ``kernel-lzo`` and ``kernel-lzo-rle`` compressors.

This is LZO1X-1 as the Linux kernel runs it for zram (``lzo1x_1_compress`` and
``lzorle1x_1_compress`` in lib/lzo/lzo1x_compress.c, x86-64 build), written from a reading of
that source rather than copied. The points where it differs from liblzo2's LZO1X-1, and which
decide the compressed length:

* the dictionary holds 2**13 16-bit offsets from the start of the current block, zeroed per
  block, so an empty entry points at offset 0; the hash of the 4 bytes at a position is
  ``((read32le(p) * 0x1824429d) mod 2**32) >> 19``; a candidate is taken when its 4 bytes equal
  the current 4 (no offset or second-probe test);
* the input is cut into blocks of at most ``M4_MAX_OFFSET + 1`` bytes (0xc000 for lzo, 0xbfff
  for lzo-rle), each compressed by ``lzo1x_1_do_compress`` with the literals still pending from
  the previous block (``ti``) carried over; a 4 KiB page is one block;
* the search starts 4 bytes in (``4 - ti`` when literals are carried) and, after a miss, skips
  ahead by ``1 + (literals pending >> 5)``; after a match it tests the very next position;
  no search starts at or past ``end - 20``;
* a match is extended 8 bytes at a time (the x86-64 build compares 64-bit words and counts the
  equal low bytes); once the compared word lies at or past ``end - 20`` the extension stops at
  that word boundary without counting its equal bytes;
* matches are coded M2 (length <= 8, offset <= 0x800), else M3 (offset <= 0x4000), else M4;
  literal runs of 1..3 go into the low two bits of the previous instruction's state byte
  (``state_offset``: 2 bytes back after a match, 3 after a zero run);
* lzo-rle (bitstream version 1) begins with the bytes 17, 1 and, wherever the 4 bytes at a
  tested position are zero, measures the zero run (up to the search limit, at most 2051 bytes)
  and codes it as a 4-byte M4-shaped instruction ``(run - 4) << 21 | 0xfffc18 | (run - 4) & 7``
  instead of probing the dictionary;
* the remaining literals follow (a first instruction of ``17 + t`` when nothing was coded and
  ``t <= 238``) and the end marker 0x11 0x00 0x00.

:func:`decompress_block` reads both bitstreams (as ``lzo1x_decompress_safe`` does) and is
checked: it returns a negative code on a malformed block instead of reading or writing out of
bounds. Numba compiles these functions to machine code (cached on disk after the first run).
The compressor's hot paths use the word access of ``_unaligned`` as the kernel's C does (4- and
8-byte unaligned loads, the equal bytes of a word from the trailing zeros of an XOR, zero runs
measured 8 bytes at a time, literals copied 8 at a time) and unsigned indices; ``src`` and
``dst`` must be C-contiguous, ``dst`` at least ``bound(len(src))``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._unaligned import (copy as _copy, copy_match as _copy_match, ctz64 as _ctz64, read32 as _read32, read64 as _read64,
                         wild_copy as _wild_copy)

D_BITS = 13
D_SIZE = 1 << D_BITS
M2_MAX_LEN = 8
M3_MAX_LEN = 33
M4_MAX_LEN = 9
M2_MAX_OFFSET = 0x0800
M3_MAX_OFFSET = 0x4000
M4_MAX_OFFSET_V0 = 0xbfff
M4_MAX_OFFSET_V1 = 0xbffe
M3_MARKER = 32
M4_MARKER = 16
MIN_ZERO_RUN_LENGTH = 4
MAX_ZERO_RUN_LENGTH = 2047 + MIN_ZERO_RUN_LENGTH
#: the bitstream version lzo-rle writes after its leading 17
LZO_RLE_VERSION = 1
HASH_MUL = 0x1824429d

E_INPUT_OVERRUN = -4
E_OUTPUT_OVERRUN = -5
E_LOOKBEHIND_OVERRUN = -6
E_INPUT_NOT_CONSUMED = -8
E_ERROR = -1


def bound(n: int) -> int:
    """lzo1x_worst_compress: the largest output for ``n`` input bytes (plus the rle header)."""
    return n + n // 16 + 64 + 3 + 2


@njit(cache=True, nogil=True, inline="always")
def _equal_bytes8(a, p, q):
    """How many of the 8 bytes at ``p`` and ``q`` are equal before the first difference."""
    return np.int64(_ctz64(_read64(a, p) ^ _read64(a, q)) >> np.uint64(3))


@njit(cache=True, nogil=True, inline="always")
def _put_literals(src, ii, t, dst, op, state_offset, wild):
    """Code a literal run of ``t`` bytes from ``src[ii:]``; return the new ``op``. ``wild``: the
    run is followed by at least 8 more input bytes, so it may be copied in whole 8-byte words
    (as the kernel's COPY8 does), writing up to 7 bytes past it that the next instruction
    overwrites (only where ``dst`` has room for them)."""
    if t <= 3:
        dst[np.uint64(op + state_offset)] |= t
    elif t <= 18:
        dst[np.uint64(op)] = t - 3
        op += 1
    else:
        tt = t - 18
        dst[np.uint64(op)] = 0
        op += 1
        while tt > 255:
            tt -= 255
            dst[np.uint64(op)] = 0
            op += 1
        dst[np.uint64(op)] = tt
        op += 1
    if wild and op + t + 8 <= dst.shape[0]:
        _wild_copy(dst, op, src, ii, t)
    else:
        _copy(dst, op, src, ii, t)
    return op + t


@njit(cache=True, nogil=True)
def _do_compress(src, base, in_len, dst, op, ti, dct, state, rle):
    """One block ``src[base:base + in_len]`` (lzo1x_1_do_compress). ``state`` is the
    ``state_offset`` coming in. Returns (op, literals left pending, state_offset)."""
    in_end = base + in_len
    ip_end = in_end - 20
    ii = base
    ip = base + (4 - ti if ti < 4 else 0)
    skip = True                           # entering at 'literal' advances ip first
    while True:
        if skip:
            ip += 1 + ((ip - ii) >> 5)
        skip = True
        if ip >= ip_end:
            break
        dv = _read32(src, ip)
        run_length = 0
        m_pos = 0
        if dv == 0 and rle:
            limit = ip + MAX_ZERO_RUN_LENGTH + 1
            if ip_end < limit:
                limit = ip_end
            ir = ip + 4
            while ir + 8 <= limit:                 # 8 bytes at a time, then byte by byte
                w = _read64(src, ir)
                if w != 0:
                    ir += np.int64(_ctz64(w) >> np.uint64(3))
                    break
                ir += 8
            else:
                while ir < limit and src[np.uint64(ir)] == 0:
                    ir += 1
            run_length = ir - ip
            if run_length > MAX_ZERO_RUN_LENGTH:
                run_length = MAX_ZERO_RUN_LENGTH
        else:
            h = ((np.uint64(dv) * np.uint64(HASH_MUL)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - D_BITS)
            m_pos = base + np.int64(dct[h])
            dct[h] = ip - base
            if dv != _read32(src, m_pos):
                continue
        ii -= ti
        ti = 0
        t = ip - ii
        if t != 0:
            op = _put_literals(src, ii, t, dst, op, state, True)
        if run_length:
            ip += run_length
            rl = run_length - MIN_ZERO_RUN_LENGTH
            v = (rl << 21) | 0xfffc18 | (rl & 7)
            dst[np.uint64(op)] = v & 0xFF
            dst[np.uint64(op + 1)] = (v >> 8) & 0xFF
            dst[np.uint64(op + 2)] = (v >> 16) & 0xFF
            dst[np.uint64(op + 3)] = (v >> 24) & 0xFF
            op += 4
            state = -3
            ii = ip
            skip = False
            continue
        # match length: 64-bit words compared from ip + 4
        m_len = 4
        k = _equal_bytes8(src, ip + m_len, m_pos + m_len)
        if k == 8:
            while True:
                m_len += 8
                k = _equal_bytes8(src, ip + m_len, m_pos + m_len)
                if ip + m_len >= ip_end:
                    k = 0
                    break
                if k != 8:
                    break
        m_len += k
        m_off = ip - m_pos
        ip += m_len
        if m_len <= M2_MAX_LEN and m_off <= M2_MAX_OFFSET:
            m_off -= 1
            dst[np.uint64(op)] = ((m_len - 1) << 5) | ((m_off & 7) << 2)
            dst[np.uint64(op + 1)] = m_off >> 3
            op += 2
        else:
            if m_off <= M3_MAX_OFFSET:
                m_off -= 1
                if m_len <= M3_MAX_LEN:
                    dst[np.uint64(op)] = M3_MARKER | (m_len - 2)
                    op += 1
                else:
                    m_len -= M3_MAX_LEN
                    dst[np.uint64(op)] = M3_MARKER
                    op += 1
                    while m_len > 255:
                        m_len -= 255
                        dst[np.uint64(op)] = 0
                        op += 1
                    dst[np.uint64(op)] = m_len
                    op += 1
            else:
                m_off -= 0x4000
                if m_len <= M4_MAX_LEN:
                    dst[np.uint64(op)] = M4_MARKER | ((m_off >> 11) & 8) | (m_len - 2)
                    op += 1
                else:
                    m_len -= M4_MAX_LEN
                    dst[np.uint64(op)] = M4_MARKER | ((m_off >> 11) & 8)
                    op += 1
                    while m_len > 255:
                        m_len -= 255
                        dst[np.uint64(op)] = 0
                        op += 1
                    dst[np.uint64(op)] = m_len
                    op += 1
            dst[np.uint64(op)] = (m_off << 2) & 0xFF
            dst[np.uint64(op + 1)] = (m_off >> 6) & 0xFF
            op += 2
        state = -2
        ii = ip
        skip = False
    return op, in_end - (ii - ti), state


@njit(cache=True, nogil=True)
def compress_block(src, dst, dct, rle):
    """Compress ``src`` (uint8) into ``dst`` (at least ``bound(len(src))`` bytes) as the kernel's
    lzo1x_1_compress (``rle`` false) or lzorle1x_1_compress (``rle`` true); return the length.
    ``dct`` is a uint16 scratch array of 2**13 entries."""
    n = src.shape[0]
    op = 0
    if rle:
        dst[0] = 17
        dst[1] = LZO_RLE_VERSION
        op = 2
        m4_max_offset = M4_MAX_OFFSET_V1
    else:
        m4_max_offset = M4_MAX_OFFSET_V0
    data_start = op
    state = -2
    t = 0
    ip = 0
    left = n
    while left > 20:
        ll = left if left <= m4_max_offset + 1 else m4_max_offset + 1
        dct[:] = 0
        op, t, state = _do_compress(src, ip, ll, dst, op, t, dct, state, rle)
        ip += ll
        left -= ll
    t += left
    if t > 0:
        ii = n - t
        if op == data_start and t <= 238:
            dst[np.uint64(op)] = 17 + t
            op += 1
            _copy(dst, op, src, ii, t)
            op += t
        else:
            op = _put_literals(src, ii, t, dst, op, state, False)
    dst[np.uint64(op)] = M4_MARKER | 1
    dst[np.uint64(op + 1)] = 0
    dst[np.uint64(op + 2)] = 0
    return op + 3


@njit(cache=True, nogil=True, parallel=True)
def compress_pages(pages, out, lengths, rle):
    """Compress every row of ``pages`` (k x 4096) into the rows of ``out``; lengths to ``lengths``."""
    k = pages.shape[0]
    nchunks = 8 if k >= 64 else 1
    per = (k + nchunks - 1) // nchunks
    for c in prange(nchunks):                       # one dictionary per chunk, not per page
        dct = np.empty(D_SIZE, np.uint16)
        for i in range(c * per, min(k, (c + 1) * per)):
            lengths[i] = compress_block(pages[i], out[i], dct, rle)


@njit(cache=True, nogil=True)
def _count_zeros(src, ip, n):
    """A length extension: the number of zero bytes at ``ip`` (each worth 255) and the index of
    the closing non-zero byte, or (-1, -1) past the end."""
    z = 0
    while ip < n and src[ip] == 0:
        z += 1
        ip += 1
    if ip >= n:
        return -1, -1
    return z, ip


@njit(cache=True, nogil=True)
def decompress_block(src, dst):
    """Decode an LZO1X block (either bitstream) into ``dst``; return the decoded length or a
    negative LZO error code (input/output/look-behind overrun, input not consumed). ``src``
    and ``dst`` must be C-contiguous (literals and matches are copied 8 bytes at a time)."""
    n = src.shape[0]
    on = dst.shape[0]
    ip = 0
    op = 0
    version = 0
    if n >= 5 and src[0] == 17:
        version = src[1]
        ip = 2
    if ip >= n:
        return E_INPUT_OVERRUN
    state = 0
    if src[ip] > 17:
        t = np.int64(src[ip]) - 17
        ip += 1
        if ip + t > n:
            return E_INPUT_OVERRUN
        if op + t > on:
            return E_OUTPUT_OVERRUN
        _copy(dst, op, src, ip, t)
        op += t
        ip += t
        state = t if t < 4 else 4
    while True:
        if ip >= n:
            return E_INPUT_OVERRUN
        t = np.int64(src[ip])
        ip += 1
        nxt = 0
        length = 0
        off = 0
        if t < 16:
            if state == 0:
                if t == 0:
                    z, ip = _count_zeros(src, ip, n)
                    if z < 0:
                        return E_INPUT_OVERRUN
                    t = 15 + 255 * z + np.int64(src[ip])
                    ip += 1
                t += 3
                if ip + t > n:
                    return E_INPUT_OVERRUN
                if op + t > on:
                    return E_OUTPUT_OVERRUN
                _copy(dst, op, src, ip, t)
                op += t
                ip += t
                state = 4
                continue
            if ip >= n:
                return E_INPUT_OVERRUN
            nxt = t & 3
            if state != 4:
                off = 1 + (t >> 2) + (np.int64(src[ip]) << 2)
                length = 2
            else:
                off = 1 + M2_MAX_OFFSET + (t >> 2) + (np.int64(src[ip]) << 2)
                length = 3
            ip += 1
        elif t >= 64:
            if ip >= n:
                return E_INPUT_OVERRUN
            nxt = t & 3
            off = 1 + ((t >> 2) & 7) + (np.int64(src[ip]) << 3)
            ip += 1
            length = (t >> 5) + 1
        elif t >= 32:
            length = t & 31
            if length == 0:
                z, ip = _count_zeros(src, ip, n)
                if z < 0:
                    return E_INPUT_OVERRUN
                length = 31 + 255 * z + np.int64(src[ip])
                ip += 1
            length += 2
            if ip + 2 > n:
                return E_INPUT_OVERRUN
            le16 = np.int64(src[ip]) | (np.int64(src[ip + 1]) << 8)
            ip += 2
            off = 1 + (le16 >> 2)
            nxt = le16 & 3
        else:
            if ip + 2 > n:
                return E_INPUT_OVERRUN
            le16 = np.int64(src[ip]) | (np.int64(src[ip + 1]) << 8)
            if version and (le16 & 0xfffc) == 0xfffc and (t & 0xf8) == 0x18:
                if ip + 3 > n:
                    return E_INPUT_OVERRUN
                run = ((t & 7) | (np.int64(src[ip + 2]) << 3)) + MIN_ZERO_RUN_LENGTH
                if op + run > on:
                    return E_OUTPUT_OVERRUN
                dst[op:op + run] = 0
                op += run
                nxt = le16 & 3
                ip += 3
                length = 0
            else:
                length = t & 7
                if length == 0:
                    z, ip = _count_zeros(src, ip, n)
                    if z < 0:
                        return E_INPUT_OVERRUN
                    length = 7 + 255 * z + np.int64(src[ip])
                    ip += 1
                length += 2
                if ip + 2 > n:
                    return E_INPUT_OVERRUN
                le16 = np.int64(src[ip]) | (np.int64(src[ip + 1]) << 8)
                ip += 2
                off = ((t & 8) << 11) + (le16 >> 2)
                nxt = le16 & 3
                if off == 0:                          # the end marker
                    if length != 3:
                        return E_ERROR
                    if ip < n:
                        return E_INPUT_NOT_CONSUMED
                    return op
                off += 0x4000
        if length:
            if off > op:
                return E_LOOKBEHIND_OVERRUN
            if op + length > on:
                return E_OUTPUT_OVERRUN
            if op + length + 8 <= on:                 # 8 bytes at a time (see copy_match)
                _copy_match(dst, op, off, length)
            else:
                m = op - off
                for j in range(length):               # overlapping copy, byte by byte
                    dst[op + j] = dst[m + j]
            op += length
        # the state bits: 0..3 literals follow directly
        if nxt:
            if ip + nxt > n:
                return E_INPUT_OVERRUN
            if op + nxt > on:
                return E_OUTPUT_OVERRUN
            for j in range(nxt):
                dst[np.uint64(op + j)] = src[np.uint64(ip + j)]
            op += nxt
            ip += nxt
        state = nxt
