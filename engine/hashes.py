"""Hash functions the mechanisms use, selectable and replaceable (for the weak-hash test).

* ``jhash``: the kernel's ``jhash(key, length, initval)`` (Bob Jenkins' lookup3 on a
  little-endian machine), which Joonsoo Kim's 2017 zram dedup used over the page;
* ``xxhash32``: the low 32 bits of XXH64 (seed 0), the kernel's ``xxhash()`` stored in a u32,
  as KSM's checksum and the later dedup ports do;
* ``xxhash64``: XXH64 (seed 0), as Romanov's merge (2022) and fold (2023) hash objects;
* ``weak``: every input hashes to 0, to show that identity never rests on the hash alone.

Each function takes a bytes-like object and returns an int.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xxhash
from numba import njit

JHASH_INITVAL = 0xDEADBEEF
_M = 0xFFFFFFFF


@njit(cache=True, nogil=True, inline="always")
def _rol(x, k):
    return ((x << k) | (x >> (32 - k))) & _M


@njit(cache=True, nogil=True)
def _jhash(k, initval):
    length = k.shape[0]
    a = b = c = (JHASH_INITVAL + length + initval) & _M
    p = 0
    while length > 12:
        a = (a + (np.int64(k[p]) | (np.int64(k[p + 1]) << 8) | (np.int64(k[p + 2]) << 16) | (np.int64(k[p + 3]) << 24))) & _M
        b = (b + (np.int64(k[p + 4]) | (np.int64(k[p + 5]) << 8) | (np.int64(k[p + 6]) << 16) | (np.int64(k[p + 7]) << 24))) & _M
        c = (c + (np.int64(k[p + 8]) | (np.int64(k[p + 9]) << 8) | (np.int64(k[p + 10]) << 16) | (np.int64(k[p + 11]) << 24))) & _M
        # mix
        a = (a - c) & _M; a ^= _rol(c, 4); c = (c + b) & _M
        b = (b - a) & _M; b ^= _rol(a, 6); a = (a + c) & _M
        c = (c - b) & _M; c ^= _rol(b, 8); b = (b + a) & _M
        a = (a - c) & _M; a ^= _rol(c, 16); c = (c + b) & _M
        b = (b - a) & _M; b ^= _rol(a, 19); a = (a + c) & _M
        c = (c - b) & _M; c ^= _rol(b, 4); b = (b + a) & _M
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
    # final
    c ^= b; c = (c - _rol(b, 14)) & _M
    a ^= c; a = (a - _rol(c, 11)) & _M
    b ^= a; b = (b - _rol(a, 25)) & _M
    c ^= b; c = (c - _rol(b, 16)) & _M
    a ^= c; a = (a - _rol(c, 4)) & _M
    b ^= a; b = (b - _rol(a, 14)) & _M
    c ^= b; c = (c - _rol(b, 24)) & _M
    return c


@njit(cache=True, nogil=True)
def _jhash_rows(rows, initval, out):
    for i in range(rows.shape[0]):
        out[i] = _jhash(rows[i], initval)


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
