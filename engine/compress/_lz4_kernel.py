"""Compiled core of the ``kernel-lz4`` compressor.

This is the greedy fast LZ4 block compressor as the Linux kernel runs it for zram
(``LZ4_compress_fast`` on one 4 KiB page, lib/lz4 in the kernel, a port of LZ4 1.7.x), written
from its description in ``shared/reference`` rather than copied:

* 16-bit position table of 2**13 entries (``byU16`` table type, inputs below 64 KiB), zeroed
  per call, so an empty entry points at position 0;
* hash of the 4 bytes at a position: ``(read32le(p) * 2654435761 mod 2**32) >> 19``;
* skip trigger 6 with acceleration ``a``: the step grows by one every ``2**6`` misses;
* MFLIMIT 12 (no match search starts past ``end - 12``), the last 5 bytes are literals;
* backward catch-up of a found match, greedy forward extension, and an immediate re-match
  test at the end of each match (after inserting ``ip - 2``).

The output is a raw LZ4 block that ``lz4.block.decompress(..., uncompressed_size=4096)`` reads.
Numba compiles these functions to machine code (cached on disk after the first run). As in the
kernel's C, the hot paths read 4 and 8 bytes with one unaligned little-endian load, extend a
match 8 bytes at a time (the first differing byte from the trailing zero bits of the XOR),
copy literals 8 bytes at a time and index with unsigned integers (no negative-index wrap test);
``src`` and ``dst`` must therefore be C-contiguous, and ``dst`` at least ``bound(len(src))``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._unaligned import (copy as _copy, copy_match as _copy_match, ctz64 as _ctz64, read32 as _read32,
                         read64 as _read64, wild_copy as _wild_copy)

HASH_LOG = 13
MINMATCH = 4
MFLIMIT = 12
LASTLITERALS = 5
SKIP_TRIGGER = 6
ML_BITS = 4
ML_MASK = 15
RUN_MASK = 15
PRIME32 = 2654435761


def bound(n: int) -> int:
    """LZ4_COMPRESSBOUND: the largest output for ``n`` input bytes."""
    return n + n // 255 + 16


@njit(cache=True, nogil=True, inline="always")
def _hash(v):
    return ((np.uint64(v) * np.uint64(PRIME32)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - HASH_LOG)


@njit(cache=True, nogil=True)
def _write_len(dst, op, n):
    while n >= 255:
        dst[np.uint64(op)] = 255
        op += 1
        n -= 255
    dst[np.uint64(op)] = n
    return op + 1


@njit(cache=True, nogil=True)
def compress_block(src, dst, table, acceleration):
    """Compress ``src`` (uint8, < 64 KiB) into ``dst``; return the compressed length.

    ``table`` is a uint16 scratch array of 2**13 entries (cleared here).
    """
    n = src.shape[0]
    table[:] = 0
    anchor = 0
    op = 0
    if acceleration < 1:
        acceleration = 1
    mflimit = n - MFLIMIT
    matchlimit = n - LASTLITERALS
    if n >= MFLIMIT + 1:
        table[_hash(_read32(src, 0))] = 0
        ip = 1
        forward_h = _hash(_read32(src, ip))
        done = False
        while not done:
            # -- find a match (skip ahead faster the longer nothing is found)
            forward_ip = ip
            step = 1
            search_nb = acceleration << SKIP_TRIGGER
            while True:
                h = forward_h
                ip = forward_ip
                forward_ip += step
                step = search_nb >> SKIP_TRIGGER
                search_nb += 1
                if forward_ip > mflimit:
                    done = True
                    break
                match = np.int64(table[h])
                forward_h = _hash(_read32(src, forward_ip))
                table[h] = ip
                if _read32(src, match) == _read32(src, ip):
                    break
            if done:
                break
            # -- catch up backwards
            while ip > anchor and match > 0 and src[np.uint64(ip - 1)] == src[np.uint64(match - 1)]:
                ip -= 1
                match -= 1
            # -- literals
            lit = ip - anchor
            token = op
            op += 1
            if lit >= RUN_MASK:
                dst[np.uint64(token)] = RUN_MASK << ML_BITS
                op = _write_len(dst, op, lit - RUN_MASK)
            else:
                dst[np.uint64(token)] = lit << ML_BITS
            if op + lit + 8 <= dst.shape[0]:           # whole words: the match follows (MFLIMIT)
                _wild_copy(dst, op, src, anchor, lit)
            else:
                _copy(dst, op, src, anchor, lit)
            op += lit
            while True:  # _next_match
                off = ip - match
                dst[np.uint64(op)] = off & 0xFF
                dst[np.uint64(op + 1)] = off >> 8
                op += 2
                p = ip + MINMATCH
                q = match + MINMATCH
                while p + 8 <= matchlimit:            # 8 bytes at a time, then byte by byte
                    diff = _read64(src, q) ^ _read64(src, p)
                    if diff != 0:
                        p += np.int64(_ctz64(diff) >> np.uint64(3))
                        break
                    p += 8
                    q += 8
                else:
                    while p < matchlimit and src[np.uint64(p)] == src[np.uint64(q)]:
                        p += 1
                        q += 1
                mcode = p - (ip + MINMATCH)
                ip = p
                if mcode >= ML_MASK:
                    dst[np.uint64(token)] += ML_MASK
                    op = _write_len(dst, op, mcode - ML_MASK)
                else:
                    dst[np.uint64(token)] += mcode
                anchor = ip
                if ip > mflimit:
                    done = True
                    break
                table[_hash(_read32(src, ip - 2))] = ip - 2
                h = _hash(_read32(src, ip))
                match = np.int64(table[h])
                table[h] = ip
                if _read32(src, match) == _read32(src, ip):
                    token = op
                    dst[np.uint64(token)] = 0
                    op += 1
                    continue
                break
            if done:
                break
            ip += 1
            forward_h = _hash(_read32(src, ip))
    # -- last literals
    last = n - anchor
    if last >= RUN_MASK:
        dst[np.uint64(op)] = RUN_MASK << ML_BITS
        op = _write_len(dst, op + 1, last - RUN_MASK)
    else:
        dst[np.uint64(op)] = last << ML_BITS
        op += 1
    _copy(dst, op, src, anchor, last)
    return op + last


@njit(cache=True, nogil=True, parallel=True)
def compress_pages(pages, out, lengths, acceleration):
    """Compress every row of ``pages`` (k x 4096) into the rows of ``out``; lengths to ``lengths``."""
    k = pages.shape[0]
    nchunks = 8 if k >= 64 else 1
    per = (k + nchunks - 1) // nchunks
    for c in prange(nchunks):                       # one scratch table per chunk, not per page
        table = np.empty(1 << HASH_LOG, np.uint16)
        for i in range(c * per, min(k, (c + 1) * per)):
            lengths[i] = compress_block(pages[i], out[i], table, acceleration)


@njit(cache=True, nogil=True)
def same_filled(pages, flags, fills):
    """zram's same-filled test on each row: all 512 little-endian u64 words equal.

    Word 0 is compared with word 511 first, then with words 1..510 (as the kernel does);
    ``flags[i]`` gets 1 and ``fills[i]`` the word when the page qualifies.
    """
    words = pages.view(np.uint64)
    k = words.shape[0]
    for i in range(k):
        w = words[i]
        v = w[0]
        ok = w[511] == v
        if ok:
            for j in range(1, 511):
                if w[j] != v:
                    ok = False
                    break
        if ok:
            flags[i] = 1
            fills[i] = v
        else:
            flags[i] = 0
            fills[i] = np.uint64(0)


@njit(cache=True, nogil=True)
def decompress_block(src, dst):
    """Decode a raw LZ4 block (all of ``src``) into ``dst``; return the decoded length, or -1
    for a malformed block (a read past ``src``, a write past ``dst``, an offset of 0 or one
    reaching before the start of ``dst``).

    The LZ4 block format: sequences of a token (literal count in the high nibble, match
    length - 4 in the low one, a nibble of 15 continued by bytes of 255 and a final smaller
    byte), the literals, a 2-byte little-endian offset and the match, copied from that far
    back in the output (it may overlap what it writes). The last sequence has literals only.
    ``src`` and ``dst`` must be C-contiguous (literals and matches are copied 8 bytes at a
    time, see ``_unaligned.copy_match``/``wild_copy``)."""
    n = src.shape[0]
    on = dst.shape[0]
    ip = 0
    op = 0
    while ip < n:
        token = np.int64(src[np.uint64(ip)])
        ip += 1
        lit = token >> ML_BITS
        if lit == RUN_MASK:
            while True:
                if ip >= n:
                    return -1
                b = np.int64(src[np.uint64(ip)])
                ip += 1
                lit += b
                if b != 255:
                    break
        if ip + lit > n or op + lit > on:
            return -1
        if ip + lit + 8 <= n and op + lit + 8 <= on:
            _wild_copy(dst, op, src, ip, lit)
        else:
            _copy(dst, op, src, ip, lit)
        ip += lit
        op += lit
        if ip >= n:                                   # the last sequence: literals only
            break
        if ip + 2 > n:
            return -1
        off = np.int64(src[np.uint64(ip)]) | (np.int64(src[np.uint64(ip + 1)]) << 8)
        ip += 2
        if off == 0 or off > op:
            return -1
        mlen = token & ML_MASK
        if mlen == ML_MASK:
            while True:
                if ip >= n:
                    return -1
                b = np.int64(src[np.uint64(ip)])
                ip += 1
                mlen += b
                if b != 255:
                    break
        mlen += MINMATCH
        if op + mlen > on:
            return -1
        if op + mlen + 8 <= on:
            _copy_match(dst, op, off, mlen)
        else:
            for j in range(mlen):                     # near the end of dst: byte by byte
                dst[np.uint64(op + j)] = dst[np.uint64(op + j - off)]
        op += mlen
    return op
