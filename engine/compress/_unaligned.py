"""Word access for the compiled compressors: what the kernel's C does with get_unaligned and
put_unaligned, as numba intrinsics on C-contiguous uint8 arrays.

``read32(a, p)`` / ``read64(a, p)`` return the little-endian 32/64-bit word at byte ``p``
with one unaligned load; ``write64(a, p, v)`` stores one; ``ctz64(v)`` counts trailing zero
bits (64 for 0); ``copy(dst, op, src, ip, n)`` copies ``n`` bytes 8 at a time, ``memcpy`` with one
``llvm.memcpy``. None of them tests bounds or negative indices: the callers keep every access
inside the arrays.
"""
from __future__ import annotations

import sys

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

if sys.byteorder != "little":                     # the loads below read little-endian words
    raise ImportError("engine.compress._unaligned: needs a little-endian machine")


def _is_bytes(a) -> bool:
    return isinstance(a, types.Array) and a.dtype == types.uint8 and a.layout == "C"


def _load_word(bits):
    ret = types.uint32 if bits == 32 else types.uint64

    @intrinsic
    def load(typingctx, a, p):
        if not (_is_bytes(a) and isinstance(p, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            idx = context.cast(builder, args[1], sig.args[1], types.intp)
            ptr = builder.bitcast(builder.gep(ary.data, [idx]), ir.IntType(bits).as_pointer())
            return builder.load(ptr, align=1)
        return ret(a, p), codegen
    return load


read32 = _load_word(32)
read64 = _load_word(64)


@intrinsic
def write64(typingctx, a, p, v):
    if not (_is_bytes(a) and isinstance(p, types.Integer) and v == types.uint64):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = builder.bitcast(builder.gep(ary.data, [idx]), ir.IntType(64).as_pointer())
        builder.store(args[2], ptr, align=1)
        return context.get_dummy_value()
    return types.none(a, p, v), codegen


@intrinsic
def memcpy(typingctx, dst, op, src, ip, n):
    """``dst[op:op + n] = src[ip:ip + n]`` as one ``llvm.memcpy`` (distinct arrays, no bounds
    test): what a numba slice assignment does element by element (about 14 times slower for
    a 1 KiB object)."""
    if not (_is_bytes(dst) and _is_bytes(src) and isinstance(op, types.Integer) and isinstance(ip, types.Integer)
            and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        d = context.make_array(sig.args[0])(context, builder, args[0])
        s = context.make_array(sig.args[2])(context, builder, args[2])
        dp = builder.gep(d.data, [context.cast(builder, args[1], sig.args[1], types.intp)])
        sp = builder.gep(s.data, [context.cast(builder, args[3], sig.args[3], types.intp)])
        count = context.cast(builder, args[4], sig.args[4], types.intp)
        cgutils.raw_memcpy(builder, dp, sp, count, 1)
        return context.get_dummy_value()
    return types.none(dst, op, src, ip, n), codegen


@intrinsic
def ctz64(typingctx, v):
    if v != types.uint64:
        return None

    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.uint64(v), codegen


@njit(cache=True, nogil=True, inline="always")
def copy(dst, op, src, ip, n):
    """``dst[op:op + n] = src[ip:ip + n]`` 8 bytes at a time (distinct arrays)."""
    j = 0
    while j + 8 <= n:
        write64(dst, op + j, read64(src, ip + j))
        j += 8
    while j < n:
        dst[np.uint64(op + j)] = src[np.uint64(ip + j)]
        j += 1


@njit(cache=True, nogil=True, inline="always")
def copy_match(dst, op, off, n):
    """``dst[op:op + n] = dst[op - off:op - off + n]`` byte by byte in effect, as a decoder's
    match copy (``off`` >= 1; the source may overlap what is written). 8 bytes at a time from
    ``step`` back, ``step`` being ``off`` or, for a nearer match, the smallest multiple of it of
    at least 8, after the first ``step`` bytes one by one: those 8 bytes already hold what the
    byte-by-byte copy would write. May write up to 7 bytes past ``op + n``: the caller keeps
    ``op + n + 8 <= len(dst)``."""
    step = off
    j = 0
    if off < 8:
        step = off * ((8 + off - 1) // off)
        while j < step and j < n:
            dst[np.uint64(op + j)] = dst[np.uint64(op + j - off)]
            j += 1
    while j < n:
        write64(dst, op + j, read64(dst, op + j - step))
        j += 8


@njit(cache=True, nogil=True, inline="always")
def wild_copy(dst, op, src, ip, n):
    """``dst[op:op + n] = src[ip:ip + n]`` in whole 8-byte words (distinct arrays): reads up to
    7 bytes past ``ip + n`` and writes up to 7 past ``op + n``, so the caller keeps both inside
    their arrays; the bytes written past ``op + n`` are overwritten later or not part of the
    output."""
    j = 0
    while j < n:
        write64(dst, op + j, read64(src, ip + j))
        j += 8
