"""Hash functions the mechanisms use, selectable and replaceable (for the weak-hash test).

* ``jhash``: the kernel's ``jhash(key, length, initval)`` (Bob Jenkins' lookup3 on a
  little-endian machine), which Joonsoo Kim's 2017 zram dedup used over the page;
* ``xxhash32``: the low 32 bits of XXH64 (seed 0), the kernel's ``xxhash()`` stored in a u32,
  as KSM's checksum and the later dedup ports do;
* ``xxhash64``: XXH64 (seed 0), as Romanov's merge (2022) and fold (2023) hash objects;
* ``weak``: every input hashes to 0, to show that identity never rests on the hash alone.

Each function takes a bytes-like object and returns an int. ``xxh64`` is XXH64 compiled (numba)
for the offline steps' compiled paths (``engine._offline_fast``); it gives the ``xxhash``
package's value on every input (tests check it on thousands of random lengths).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xxhash
from numba import njit

from .compress._unaligned import read32, read64

JHASH_INITVAL = 0xDEADBEEF
_M = 0xFFFFFFFF


@njit(cache=True, nogil=True, inline="always")
def _rol(x, k):
    return ((x << k) | (x >> (32 - k))) & _M


@njit(cache=True, nogil=True, inline="always")
def _jhash_mix(a, b, c):
    """lookup3's ``__jhash_mix``: one round over the three 32-bit words."""
    a = (a - c) & _M; a ^= _rol(c, 4); c = (c + b) & _M
    b = (b - a) & _M; b ^= _rol(a, 6); a = (a + c) & _M
    c = (c - b) & _M; c ^= _rol(b, 8); b = (b + a) & _M
    a = (a - c) & _M; a ^= _rol(c, 16); c = (c + b) & _M
    b = (b - a) & _M; b ^= _rol(a, 19); a = (a + c) & _M
    c = (c - b) & _M; c ^= _rol(b, 4); b = (b + a) & _M
    return a, b, c


@njit(cache=True, nogil=True)
def jhash_bytes(k, n, initval):
    """The kernel's ``jhash(k, n, initval)`` (lookup3 ``hashlittle`` on a little-endian
    machine) of the first ``n`` bytes of ``k``, one 32-bit load per word."""
    length = n
    a = b = c = (JHASH_INITVAL + length + initval) & _M
    p = 0
    while length > 12:
        a = (a + np.int64(read32(k, p))) & _M
        b = (b + np.int64(read32(k, p + 4))) & _M
        c = (c + np.int64(read32(k, p + 8))) & _M
        a, b, c = _jhash_mix(a, b, c)
        length -= 12
        p += 12
    if length == 0:
        return c
    # last block: up to 12 bytes, little-endian into a, b, c
    for i in range(length):
        v = np.int64(k[p + i]) << (8 * (i % 4))
        if i < 4:
            a = (a + v) & _M
        elif i < 8:
            b = (b + v) & _M
        else:
            c = (c + v) & _M
    return _jhash_final(a, b, c)


@njit(cache=True, nogil=True, inline="always")
def _jhash_final(a, b, c):
    c ^= b; c = (c - _rol(b, 14)) & _M
    a ^= c; a = (a - _rol(c, 11)) & _M
    b ^= a; b = (b - _rol(a, 25)) & _M
    c ^= b; c = (c - _rol(b, 16)) & _M
    a ^= c; a = (a - _rol(c, 4)) & _M
    b ^= a; b = (b - _rol(a, 14)) & _M
    c ^= b; c = (c - _rol(b, 24)) & _M
    return c


@njit(cache=True, nogil=True)
def _jhash(k, initval):
    """jhash of the whole 1-D uint8 array ``k``."""
    return jhash_bytes(k, k.shape[0], initval)


@njit(cache=True, nogil=True)
def _jhash_rows(rows, initval, out):
    for i in range(rows.shape[0]):
        out[i] = _jhash(rows[i], initval)


# -- XXH64 (Yann Collet's xxHash, 64-bit), as the kernel's xxh64() --------------------------------
_P1 = np.uint64(11400714785074694791)
_P2 = np.uint64(14029467366897019727)
_P3 = np.uint64(1609587929392839161)
_P4 = np.uint64(9650029242287828579)
_P5 = np.uint64(2870177450012600261)


@njit(cache=True, nogil=True, inline="always")
def _rotl64(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@njit(cache=True, nogil=True, inline="always")
def _xxh64_round(acc, lane):
    acc = acc + lane * _P2
    acc = _rotl64(acc, 31)
    return acc * _P1


@njit(cache=True, nogil=True, inline="always")
def _xxh64_merge(acc, v):
    acc ^= _xxh64_round(np.uint64(0), v)
    return acc * _P1 + _P4


@njit(cache=True, nogil=True)
def xxh64(buf, n, seed):
    """XXH64 of ``buf[:n]`` (a C-contiguous uint8 array) with ``seed`` (a uint64)."""
    return xxh64_at(buf, 0, n, seed)


@njit(cache=True, nogil=True)
def xxh64_at(buf, start, n, seed):
    """XXH64 of ``buf[start:start + n]``."""
    p = start
    end = start + n
    if n >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        limit = end - 32
        while p <= limit:
            v1 = _xxh64_round(v1, read64(buf, p))
            v2 = _xxh64_round(v2, read64(buf, p + 8))
            v3 = _xxh64_round(v3, read64(buf, p + 16))
            v4 = _xxh64_round(v4, read64(buf, p + 24))
            p += 32
        h = _rotl64(v1, 1) + _rotl64(v2, 7) + _rotl64(v3, 12) + _rotl64(v4, 18)
        h = _xxh64_merge(h, v1)
        h = _xxh64_merge(h, v2)
        h = _xxh64_merge(h, v3)
        h = _xxh64_merge(h, v4)
    else:
        h = seed + _P5
    h += np.uint64(n)
    while p + 8 <= end:
        h ^= _xxh64_round(np.uint64(0), read64(buf, p))
        h = _rotl64(h, 27) * _P1 + _P4
        p += 8
    if p + 4 <= end:
        h ^= np.uint64(read32(buf, p)) * _P1
        h = _rotl64(h, 23) * _P2 + _P3
        p += 4
    while p < end:
        h ^= np.uint64(buf[p]) * _P5
        h = _rotl64(h, 11) * _P1
        p += 1
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


def hash_rows(name: str, fn, rows: np.ndarray) -> list[int]:
    """Hash every row of a (k, n) uint8 array; compiled in one batch for jhash."""
    if fn is jhash:
        out = np.empty(rows.shape[0], np.int64)
        _jhash_rows(rows, 0, out)
        return out.tolist()
    return [fn(r) for r in rows]


def jhash(data, initval: int = 0) -> int:
    arr = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    return int(_jhash(arr, initval))


def xxhash32(data) -> int:
    return xxhash.xxh64_intdigest(data) & _M


def xxhash64(data) -> int:
    return xxhash.xxh64_intdigest(data)


def weak(data) -> int:
    return 0


HASHES: dict[str, Callable] = {"jhash": jhash, "xxhash32": xxhash32, "xxhash64": xxhash64, "weak": weak}


def get_hash(name_or_fn) -> tuple[str, Callable]:
    if callable(name_or_fn):
        return getattr(name_or_fn, "__name__", "custom"), name_or_fn
    try:
        return name_or_fn, HASHES[name_or_fn]
    except KeyError:
        from .errors import InputError
        raise InputError(f"hash {name_or_fn!r}: unknown; use one of {', '.join(HASHES)}") from None
