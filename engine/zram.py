"""zram: a compressed RAM block device on top of a zsmalloc pool (``drivers/block/zram``).

The model keeps the slot table, the flags that matter on the live kernel (same-filled, huge),
the write/overwrite/read/discard paths in the kernel's order, ``mem_limit`` with
``failed_writes``, and every field of ``mm_stat`` and ``io_stat``. Reading a slot back
returns exactly the bytes written.

Kernel facts it reproduces (see ``shared/reference/kernel-ground-truth.md``):

* same-filled: all 512 8-byte words equal; only the word is kept, nothing is allocated, no
  limit check and no ``mem_used_max`` sample;
* huge: compressed length >= ``huge_class_size`` (derived from the zsmalloc class table,
  3625 here) -> the raw page is stored as a 4096-byte object;
* on an overwrite the new object is allocated (and ``mem_used_max`` sampled) *before* the old
  one is freed; the limit is checked after allocation and a refused store keeps the old data;
* discard frees whole pages and counts one ``notify_free`` per page;
* a write of several pages is one bio: the kernel stores its pages in order and, at the first
  page refused by ``mem_limit``, counts one ``failed_writes`` and ends the bio, so the rest of
  that I/O is neither stored nor counted (``zram_bio_write``). ``write_pages(io_pages=N)`` cuts
  runs of consecutive slots into I/Os of N pages, as the live-kernel harness writes them.

The compressor defaults to the kernel's default backend, ``lzo-rle`` (model ``kernel-lzo-rle``).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import xxhash

from . import events as ev
from .compress import get_compressor, Compressor, DEFAULT_COMPRESSOR, KernelLZ4, KernelLZO, KernelLZORLE
from .compress._lz4_kernel import same_filled as _same_filled_batch
from .events import EventBus
from .pages import PAGE_SIZE, PageSet, DEFAULT_CHUNK_PAGES
from .zsmalloc import ZsPool
from ._util import no_gc

# slot flags (named after the kernel's enum zram_pageflags)
ZRAM_SAME = 1
ZRAM_HUGE = 2

MM_STAT_FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
                  "same_pages", "pages_compacted", "huge_pages", "huge_pages_since")
IO_STAT_FIELDS = ("failed_reads", "failed_writes", "invalid_io", "notify_free")
#: the most pages one write may carry: a direct write of up to BIO_MAX_VECS (256) pages is one
#: bio, so a refused page ends exactly that I/O (beyond that the block layer may split it)
MAX_IO_PAGES = 256
#: the methods a subclass must leave alone for the compiled write path to stand in for them
_FAST_HOOKS = ("write_page", "write_pages", "_write_pages", "prepare_batch", "store_page", "store_object",
               "write_same_filled_page", "slot_free", "read_page", "discard", "slot_free_notify",
               "store_uncompressed", "load", "check_index", "slot_allocated")
#: the backends the compiled path runs (exact classes: a subclass may compress differently)
_FAST_COMPRESSORS = (KernelLZ4, KernelLZO, KernelLZORLE)
#: a pool in object form is moved into arrays (a cost per object it holds) only for a write of
#: at least this many pages and of at least a quarter of its objects (less 4096); an empty
#: pool always is
_FAST_MIN_PAGES = 64


def io_spans(indexes, io_pages: int = 1) -> list[tuple[int, int, int]]:
    """Cut a slot sequence into I/Os as a block-device writer issues them: runs of consecutive
    ascending slots, each cut into pieces of at most ``io_pages`` pages from its start.
    Returns ``(position in indexes, first slot, pages)`` per I/O."""
    if not 1 <= io_pages <= MAX_IO_PAGES:
        raise ValueError(f"io_pages must be 1..{MAX_IO_PAGES}")
    spans = []
    pos = 0
    run_pos, run_start, run_len = 0, None, 0
    for i in indexes:
        if run_start is not None and run_start + run_len == i and run_len < io_pages:
            run_len += 1
        else:
            if run_start is not None:
                spans.append((run_pos, run_start, run_len))
            run_pos, run_start, run_len = pos, i, 1
        pos += 1
    if run_start is not None:
        spans.append((run_pos, run_start, run_len))
    return spans


#: pages per batch of the compiled write path, batches in flight (prepared ahead of the one
#: being stored), and pages per compression task of a worker
_FAST_BATCH = 1024
_FAST_DEPTH = 4
_FAST_TASK = 256
_EXECUTOR = None
#: batch arrays of full-sized batches kept for the next write (any device of this process):
#: (rows, width, gathering) -> free sets of arrays, at most ``_FAST_DEPTH`` each, as the
#: kernel allocates its per-CPU compression buffers once and not per write
_BATCH_ARRAYS: dict = {}


def _fast_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _fast_executor():
    """The worker threads that compress batches (one per usable core, created once per
    process: a child made by fork() has none of its parent's threads and makes its own)."""
    global _EXECUTOR
    if _EXECUTOR is None or _EXECUTOR[0] != os.getpid():
        from concurrent.futures import ThreadPoolExecutor
        _EXECUTOR = (os.getpid(), ThreadPoolExecutor(max_workers=_fast_workers(),
                                                     thread_name_prefix="zram-compress"))
    return _EXECUTOR[1]


class BatchBuffers:
    """One batch's same-filled flags, fill words, compressed blocks and lengths (a design's
    ``compiled_buffers`` adds its own)."""

    def __init__(self, k: int, width: int, gathering: bool):
        self._key = (k, width, gathering) if k == _FAST_BATCH else None
        try:
            arrays = _BATCH_ARRAYS.get(self._key, []).pop()
        except IndexError:
            arrays = (np.empty(k, np.uint8), np.empty(k, np.uint64), np.empty((k, width), np.uint8),
                      np.empty(k, np.int64), np.empty((k, PAGE_SIZE), np.uint8) if gathering else None)
        self.sflags, self.fills, self.out, self.lengths, self.gather = arrays

    def release(self) -> None:
        """Give the arrays back for the next write (no thread may be writing them any more);
        what they hold is rewritten before it is read."""
        if self._key is not None:
            free = _BATCH_ARRAYS.setdefault(self._key, [])
            if len(free) < _FAST_DEPTH:
                free.append((self.sflags, self.fills, self.out, self.lengths, self.gather))
            self._key = None


class ZramArrays(NamedTuple):
    """The compiled state of a device in array form (``ZramDevice.array_state``)."""

    pool: object                 # engine._zram_fast.PoolArrays
    flags: np.ndarray            # the slot flags (a view of ``ZramDevice.flags``)
    handle: np.ndarray
    size: np.ndarray
    stats: np.ndarray            # the counters (engine._zram_fast.D_*)


def is_same_filled(page) -> tuple[bool, int]:
    """zram's test: the page's 512 little-endian 8-byte words are all equal."""
    b = bytes(page)
    if b[:8] * 512 == b:
        return True, int.from_bytes(b[:8], "little")
    return False, 0


@dataclass
class ZramStats:
    """``mm_stat`` and ``io_stat`` in the kernel's field names and order."""

    mm_stat: dict
    io_stat: dict
    #: the kernel's name of the compressor that produced these counters (``comp_algorithm``)
    comp_algorithm: str = ""

    def to_dict(self) -> dict:
        d = {"mm_stat": dict(self.mm_stat), "io_stat": dict(self.io_stat)}
        if self.comp_algorithm:
            d["comp_algorithm"] = self.comp_algorithm
        return d

    @classmethod
    def from_lines(cls, mm_line: str, io_line: str, comp_algorithm: str = "") -> "ZramStats":
        mm = [int(x) for x in mm_line.split()]
        io = [int(x) for x in io_line.split()]
        return cls(dict(zip(MM_STAT_FIELDS, mm)), dict(zip(IO_STAT_FIELDS, io)), comp_algorithm)


class ZramDevice:
    """One zram device: ``disksize`` bytes of slots backed by a zsmalloc pool.

    As the store behind a swap device (``engine.swap.SwapStore``) it offers
    ``store_pages(pages, slots)`` (returns the positions it refused), ``load(index)`` and
    ``slot_free_notify(index)``.

    A design (``engine.mechanisms``) extends it only through the public interface below; the
    names with a leading underscore are this class's own (tests/test_extension_points.py
    checks that no design defines or touches them).

    Python path (the reference), in the kernel's order:

    * ``prepare_batch(chunk, same_flags)``: per-page work on a batch of ``write_pages`` that
      does not depend on the device's state (a checksum); may clear same-filled flags;
    * ``write_same_filled_page(index, fill)``: keep only the fill word;
    * ``store_page(index, page, block, cached, prepared)``: store a page that is not
      same-filled (a dedup design looks for an identical stored page first);
    * ``store_object(index, page, block, cached, force_huge)``: ``zs_malloc``, the
      ``mem_limit`` check, and the slot pointed at the new object (the old one freed);
    * ``slot_free(index, reason)``: release what a slot holds (``zram_free_page``);
      ``reason`` is ``"overwrite"``, ``"discard"`` or ``"swap_free"``;
    * ``read_page(index)``; ``check_index(index)``; ``slot_allocated(index)``.

    A subclass overriding any method named in ``COMPILED_HOOKS`` runs the Python path, so
    every call reaches its override. A design that brings its own compiled path names the
    methods that path stands in for in its own ``COMPILED_HOOKS`` and extends the compiled
    path's steps:

    * array form: ``enter_arrays(npages)`` / ``leave_arrays()`` move the slot table (and the
      pool, ``pool.enter_arrays``) into arrays and back; ``in_array_form()``;
      ``slot_arrays`` is ``(handle, size)`` in array form, None otherwise;
      ``OBJECT_FORM_ATTRS`` are the attributes absent meanwhile (touching one converts
      back); ``slots_to_arrays()`` / ``slots_from_arrays(slots)`` carry a design's state;
    * counters: ``stats_array()`` / ``sync_stats(D)`` (``engine._zram_fast.D_*``), and
      ``array_state()``, a context that gives ``ZramArrays(pool, flags, handle, size,
      stats)`` and writes the counters back on leaving;
    * steps: ``compiled_eligible()``, ``compiled_buffers``, ``compiled_gathered``,
      ``compiled_prepare_task`` (worker threads), ``compiled_store_batch`` with
      ``compiled_store_loop`` and ``compiled_store_failed``, ``compiled_free_slots``
      (discard and swap free), ``compiled_object_id`` (read side: the pool's handle row a
      slot's handle field names), ``COMPILED_POOLS``;

    as ``engine.mechanisms.zram_dedup.ZramDedupDevice`` does.
    """

    #: the methods whose behaviour this class's compiled path reproduces
    COMPILED_HOOKS = _FAST_HOOKS
    #: attributes absent while the compiled path holds the state in arrays (touching one
    #: converts back to the object form)
    OBJECT_FORM_ATTRS = ("handle", "size")
    #: the pool classes (exact) whose methods this class's compiled path reproduces
    COMPILED_POOLS = (ZsPool,)

    def __init__(self, disksize: int, algo: str | Compressor = DEFAULT_COMPRESSOR, mem_limit: int = 0,
                 bus: EventBus | None = None, detect_same_filled: bool = True):
        if disksize <= 0 or disksize % PAGE_SIZE:
            raise ValueError(f"disksize must be a positive multiple of {PAGE_SIZE}")
        self.bus = bus if bus is not None else EventBus()
        self.comp = algo if isinstance(algo, Compressor) else get_compressor(algo)
        self.algorithm = self.comp.name
        #: the kernel's name for the same backend (what ``comp_algorithm`` would show)
        self.comp_algorithm = self.comp.kernel_name
        self.pool = ZsPool("zram", bus=self.bus)
        self.huge_class_size = self.pool.huge_class_size
        self.num_pages = disksize // PAGE_SIZE
        # slot table: flags, handle (or fill word for same-filled), object size
        self.flags = bytearray(self.num_pages)
        self.handle = [0] * self.num_pages
        self.size = [0] * self.num_pages
        # stats (struct zram_stats)
        self.pages_stored = 0
        self.compr_data_size = 0
        self.same_pages = 0
        self.huge_pages = 0
        self.huge_pages_since = 0
        self.max_used_pages = 0
        self.failed_reads = 0
        self.failed_writes = 0
        self.invalid_io = 0
        self.notify_free = 0
        self.limit_pages = 0
        self.set_mem_limit(mem_limit)
        self.detect_same_filled = detect_same_filled
        # work done, as the kernel would do it (the model's cache may skip repeated compressions)
        self.work_compressions = 0
        self.work_decompressions = 0
        self.last_failed: list[int] = []
        #: positions (in the last write_pages call) skipped because an earlier page of their
        #: I/O was refused
        self.last_skipped: list[int] = []
        #: (handle, size) of every slot as arrays while the compiled write path owns the slot
        #: table (``handle`` and ``size`` lists are absent then; touching them converts back)
        self._slots = None
        #: use the compiled write path where it can stand in (False: always the Python path,
        #: the reference the compiled one is tested against)
        self.compiled = True

    # -- the compiled write path (engine._zram_fast) -----------------------------------------
    def __getattr__(self, name):
        # only reached when normal lookup fails (the slot lists are absent in array form)
        d = self.__dict__
        if name in type(self).OBJECT_FORM_ATTRS and d.get("_slots") is not None:
            self.leave_arrays()
            return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def compiled_eligible(self) -> bool:
        """The compiled path stands in for the Python one: nobody listens for events, the
        device and pool are the plain classes (or a subclass overriding none of the write
        path of the nearest class that brings a compiled path, i.e. defines ``COMPILED_HOOKS``),
        and the backend is one of the kernel's."""
        if not self.compiled or self.bus.enabled or self.pool.bus.enabled:
            return False
        cls = type(self)
        base = next(c for c in cls.__mro__ if "COMPILED_HOOKS" in c.__dict__)
        if cls is not base and any(getattr(cls, m) is not getattr(base, m) for m in base.COMPILED_HOOKS):
            return False
        return type(self.pool) in self.COMPILED_POOLS and type(self.comp) in _FAST_COMPRESSORS

    def enter_arrays(self, npages: int) -> bool:
        """Put the slot table and the pool into array form for a write of ``npages`` pages;
        False (nothing changed) when moving a large pool for a small write would not pay."""
        pool = self.pool
        if pool.arrays is None:
            if npages < _FAST_MIN_PAGES and pool.live_handles() > 0:
                return False
            if pool.live_handles() > 4 * npages + 4096:
                return False
            pool.enter_arrays(self.num_pages)
        if self._slots is None:
            slots = self.slots_to_arrays()
            d = self.__dict__
            for name in type(self).OBJECT_FORM_ATTRS:
                del d[name]
            self._slots = slots
        return True

    def slots_to_arrays(self):
        """The slot table as arrays: (handle, size); a design adds its own state here."""
        return np.array(self.handle, np.uint64), np.array(self.size, np.int64)

    def slots_from_arrays(self, slots) -> None:
        """The inverse of ``slots_to_arrays``: the slot lists of the Python path."""
        h, sz = slots
        self.handle = h.tolist()
        self.size = sz.tolist()

    def leave_arrays(self) -> None:
        """Back to the slot lists of the Python path (the pool converts itself when touched)."""
        if self._slots is not None:
            slots = self._slots
            self._slots = None
            self.slots_from_arrays(slots)

    @property
    def slot_arrays(self):
        """The slot table's ``(handle, size)`` arrays in array form; None in object form."""
        return self._slots

    def in_array_form(self) -> bool:
        """The slot table and the pool are both in array form (the compiled paths' state)."""
        return self._slots is not None and self.pool.arrays is not None

    @contextmanager
    def array_state(self):
        """For a compiled step on the array form: ``ZramArrays(pool arrays, flags, handle,
        size, stats)``, the stats array made from the counters on entry and written back
        (``sync_stats``) on leaving, also on an error."""
        zh, zsz = self._slots
        D = self.stats_array()
        try:
            yield ZramArrays(self.pool.arrays, np.frombuffer(self.flags, np.uint8), zh, zsz, D)
        finally:
            self.sync_stats(D)

    def stats_array(self):
        """The counters the compiled paths update, as ``engine._zram_fast``'s ``D`` array."""
        from . import _zram_fast as F
        D = np.zeros(F.D_COLS, np.int64)
        D[F.D_STORED], D[F.D_COMPR], D[F.D_SAME] = self.pages_stored, self.compr_data_size, self.same_pages
        D[F.D_HUGE], D[F.D_HUGE_SINCE], D[F.D_MAXUSED] = self.huge_pages, self.huge_pages_since, self.max_used_pages
        D[F.D_FAILED], D[F.D_WORKC], D[F.D_LIMIT] = self.failed_writes, self.work_compressions, self.limit_pages
        D[F.D_HUGECLS] = self.huge_class_size
        return D

    def sync_stats(self, D) -> None:
        """The inverse of ``stats_array`` (a design syncs its own counters here too)."""
        from . import _zram_fast as F
        self.pages_stored, self.compr_data_size, self.same_pages = int(D[F.D_STORED]), int(D[F.D_COMPR]), \
            int(D[F.D_SAME])
        self.huge_pages, self.huge_pages_since = int(D[F.D_HUGE]), int(D[F.D_HUGE_SINCE])
        self.max_used_pages, self.failed_writes = int(D[F.D_MAXUSED]), int(D[F.D_FAILED])
        self.work_compressions = int(D[F.D_WORKC])
        self.pool.pages_allocated = int(self.pool.arrays.P[F.P_PAGES])

    def _write_pages_fast(self, arr, n, indexes, chunk_pages, progress, io_pages) -> int:
        """``_write_pages`` in compiled batches, with the same results (see engine._zram_fast).

        The pages are cut into batches, up to ``_FAST_DEPTH`` of them in flight. Worker threads
        prepare them (``compiled_prepare_task``: the same-filled test and the compression, in
        compiled code without the GIL), a few hundred pages per task, handed out in order as
        threads come free, while this thread stores the oldest prepared batch, page by page in
        order, also in compiled code (``compiled_store_batch``); a stored batch's buffers take
        the next batch. When the batch to store next still has tasks no worker has started
        (the workers are behind, e.g. their core is taken), this thread runs those itself
        instead of waiting. Each page is prepared on its own, so which thread prepared it, and
        when, changes nothing: only the store has effects."""
        from collections import deque
        from . import _zram_fast as F
        from .compress import _lz4_kernel, _lzo_kernel
        if isinstance(indexes, range):
            idx = np.arange(indexes.start, indexes.stop, indexes.step, dtype=np.int64)
        else:
            idx = np.asarray(indexes, dtype=np.int64).reshape(-1)
        use_io = io_pages > 1
        io_end = F.io_end_of(idx, io_pages) if use_io else np.zeros(1, np.int64)
        width = _lz4_kernel.bound(PAGE_SIZE) if isinstance(self.comp, KernelLZ4) else _lzo_kernel.bound(PAGE_SIZE)
        batch = max(1, min(n, chunk_pages, _FAST_BATCH))
        gathering = not isinstance(arr, np.ndarray)
        starts = list(range(0, n, batch))
        depth = max(1, min(_FAST_DEPTH, len(starts)))
        pool_ex = _fast_executor()
        task = max(16, min(_FAST_TASK, -(-batch // max(1, _fast_workers()))))
        prepare = self.compiled_prepare_task()
        bufs = []

        def submit(bi: int):
            """Gather batch ``bi`` (if needed) and hand its preparation to the workers:
            (pages, buffers, [(future, first row, end row)])."""
            start = starts[bi]
            b = bufs[bi % depth]
            if not gathering:
                chunk = arr[start:start + batch]
                if chunk.dtype != np.uint8 or not chunk.flags.c_contiguous or type(chunk) is not np.ndarray:
                    chunk = np.ascontiguousarray(chunk, dtype=np.uint8).view(np.ndarray)
            else:
                rows = arr[start:start + batch]
                chunk = b.gather[:len(rows)]
                flat = chunk.reshape(-1)
                for j, r in enumerate(rows):
                    flat[j * PAGE_SIZE:(j + 1) * PAGE_SIZE] = np.frombuffer(r, np.uint8)
            k = chunk.shape[0]
            self.compiled_gathered(chunk, b)
            if len(starts) == 1 and k <= task:            # a small write: no hand-off to the workers
                prepare(chunk, 0, k, b)
                return chunk, b, []
            return chunk, b, [(pool_ex.submit(prepare, chunk, lo, min(k, lo + task), b), lo, min(k, lo + task))
                              for lo in range(0, k, task)]

        D = self.stats_array()
        failed_out = np.empty(n, np.int64)
        skipped_out = np.empty(n, np.int64)
        pending = deque()
        try:
            bufs.extend(self.compiled_buffers(batch, width, gathering) for _ in range(depth))
            for bi in range(depth):
                pending.append(submit(bi))
            for bi, start in enumerate(starts):
                chunk, b, tasks = pending[0]
                for fut, lo, hi in tasks:
                    if fut.cancel():                  # not started by a worker: prepare it here
                        prepare(chunk, lo, hi, b)
                    else:
                        fut.result()
                pending.popleft()
                self.compiled_store_batch(chunk, b, idx, start, io_end, use_io, D, failed_out, skipped_out)
                if bi + depth < len(starts):
                    pending.append(submit(bi + depth))    # into the buffers just stored
                if progress is not None:
                    progress.update(chunk.shape[0])
        finally:
            for _chunk, _b, tasks in pending:         # never leave a worker writing a buffer
                for fut, _lo, _hi in tasks:
                    if not fut.cancel():
                        fut.exception()
            for b in bufs:
                if hasattr(b, "release"):
                    b.release()
            self.sync_stats(D)
            self.last_failed = failed_out[:D[F.D_NFAILED]].tolist()
            self.last_skipped = skipped_out[:D[F.D_NSKIPPED]].tolist()
        return int(D[F.D_NFAILED])

    def compiled_buffers(self, k: int, width: int, gathering: bool) -> BatchBuffers:
        """The buffers of one batch of ``k`` pages (two are used in turn)."""
        return BatchBuffers(k, width, gathering)

    def compiled_gathered(self, chunk, b) -> None:
        """Called on this thread once a batch's pages are in ``chunk``, before the workers
        prepare it."""

    def compiled_prepare_task(self):
        """The function the worker threads run on rows ``lo..hi`` of a batch:
        ``task(chunk, lo, hi, buffers)`` (compiled code without the GIL)."""
        from . import _zram_fast as F
        comp = self.comp
        if isinstance(comp, KernelLZ4):
            prepare, param = F.prepare_lz4, comp.acceleration
        else:
            prepare, param = F.prepare_lzo, comp.rle
        detect = bool(self.detect_same_filled)

        def task(chunk, lo, hi, b):
            prepare(chunk, lo, hi, b.sflags, b.fills, b.out, b.lengths, detect, param)
        return task

    def compiled_store_loop(self, step, k: int, idx, start: int) -> None:
        """Run a compiled store loop over a batch of ``k`` pages: ``step(j)`` stores from row
        ``j`` and returns (status, row); the arrays are grown and the loop resumed where it
        asks for room, and a slot beyond disksize raises IndexError (the pages before it
        stored)."""
        from . import _zram_fast as F
        j = 0
        while True:
            st, j = step(j)
            if st == F.ST_DONE:
                return
            if st == F.ST_GROW:
                self.pool.arrays.grow(k - j)
                continue
            if st == F.ST_BAD_INDEX:
                self.check_index(int(idx[start + j]))       # raises IndexError
            self.compiled_store_failed(st, j)

    def compiled_store_failed(self, status: int, row: int) -> None:
        raise AssertionError(f"zram: compiled store loop stopped with status {status} at row {row}")

    def compiled_store_batch(self, chunk, b, idx, start, io_end, use_io, D, failed_out, skipped_out) -> None:
        """Store a prepared batch in order, in compiled code (``_zram_fast.store_batch``)."""
        from . import _zram_fast as F
        k = chunk.shape[0]
        self.comp.compressions += k - int(np.count_nonzero(b.sflags[:k]))
        zh, zsz = self._slots
        zf = np.frombuffer(self.flags, np.uint8)
        pa = self.pool.arrays

        def step(j):
            return F.store_batch(pa.tup(), chunk, b.out, b.lengths, b.sflags, b.fills, idx, start, j, io_end,
                                 use_io, zf, zh, zsz, D, failed_out, skipped_out)
        self.compiled_store_loop(step, k, idx, start)

    # -- knobs ------------------------------------------------------------------------------
    def set_mem_limit(self, nbytes: int) -> None:
        """``echo BYTES > mem_limit`` (page-aligned up; 0 = no limit)."""
        self.limit_pages = -(-int(nbytes) // PAGE_SIZE)

    def reset_mem_used_max(self) -> None:
        """``echo 0 > mem_used_max``: restart the peak from the current pool size."""
        self.max_used_pages = self.pool.total_pages()

    # -- slot helpers -----------------------------------------------------------------------
    def check_index(self, index: int) -> None:
        """IndexError for a slot beyond disksize."""
        if not 0 <= index < self.num_pages:
            raise IndexError(f"zram: slot {index} beyond disksize ({self.num_pages} pages)")

    def slot_allocated(self, index: int) -> bool:
        """The slot holds a page (same-filled or an object)."""
        return bool(self.flags[index] & ZRAM_SAME) or self.size[index] != 0

    def slot_free(self, index: int, reason: str) -> None:
        """``zram_free_page``: release what slot ``index`` holds (nothing when it is empty);
        ``reason``: ``"overwrite"``, ``"discard"`` or ``"swap_free"``."""
        fl = self.flags[index]
        size = self.size[index]
        if not (fl & ZRAM_SAME) and size == 0:
            return
        if self.bus.enabled:
            self.bus.emit(ev.SlotFreed(index, reason, _flag_name(fl), size))
        if fl & ZRAM_HUGE:
            self.huge_pages -= 1
        if fl & ZRAM_SAME:
            self.same_pages -= 1
        else:
            self.pool.free(self.handle[index])
            self.compr_data_size -= size
        self.pages_stored -= 1
        self.flags[index] = 0
        self.handle[index] = 0
        self.size[index] = 0

    # -- write path -------------------------------------------------------------------------
    def write_same_filled_page(self, index: int, fill: int) -> bool:
        """``write_same_filled_page``: the slot keeps only the 8-byte fill word."""
        if self.bus.enabled:
            self.bus.emit(ev.SameFilledDetected(index, fill))
        self.slot_free(index, "overwrite")
        self.flags[index] = ZRAM_SAME
        self.handle[index] = fill
        self.same_pages += 1
        self.pages_stored += 1
        if self.bus.enabled:
            self.bus.emit(ev.SlotWritten(index, "same", 0, 0))
        return True

    def store_object(self, index: int, page, block: bytes, cached: bool, force_huge: bool = False) -> bool:
        """Store a compressed page as a pool object (whole if it is huge or ``force_huge``):
        ``zs_malloc``, the ``mem_limit`` check (False: refused, the old data kept), then the
        slot's old content freed and the slot pointed at the new object."""
        clen = len(block)
        huge = force_huge or clen >= self.huge_class_size
        listening = self.bus.enabled
        if listening:
            self.bus.emit(ev.PageCompressed(index, self.algorithm, clen, huge, cached))
        if huge:
            clen = PAGE_SIZE
            block = page.tobytes() if isinstance(page, np.ndarray) else bytes(page)
        pool = self.pool
        # zs_malloc + zs_obj_write (the kernel writes after the limit check; a refused
        # object is freed unseen either way, so the order is not observable)
        handle = pool.malloc(clen, block)
        alloced = pool.pages_allocated
        if alloced > self.max_used_pages:
            self.max_used_pages = alloced
        if self.limit_pages and alloced > self.limit_pages:
            pool.free(handle)
            self.failed_writes += 1
            if listening:
                self.bus.emit(ev.WriteFailed(index, "mem_limit", alloced))
            return False
        if self.flags[index] or self.size[index]:
            self.slot_free(index, "overwrite")
        self.handle[index] = handle
        self.size[index] = clen
        if huge:
            self.flags[index] = ZRAM_HUGE
            self.huge_pages += 1
            self.huge_pages_since += 1
        self.pages_stored += 1
        self.compr_data_size += clen
        if listening:
            self.bus.emit(ev.SlotWritten(index, "huge" if huge else "normal", clen, handle))
        return True

    def store_uncompressed(self, index: int, page, block: bytes) -> bool:
        """Store ``page`` as a whole-page (huge) object whatever it compressed to (``block``),
        for stores that decide by a size limit of their own (the patent's method)."""
        self.check_index(index)
        return self.store_object(index, page, block, True, force_huge=True)

    def write_page(self, index: int, page) -> bool:
        """Store one 4 KiB page in slot ``index``; False if refused by ``mem_limit``."""
        self.check_index(index)
        if len(page) != PAGE_SIZE:
            raise ValueError(f"zram: a page is {PAGE_SIZE} bytes, got {len(page)}")
        same, fill = is_same_filled(page) if self.detect_same_filled else (False, 0)
        if same:
            return self.write_same_filled_page(index, fill)
        block, cached = self.comp.compress(page)
        return self.store_page(index, page, block, cached)

    def prepare_batch(self, chunk: np.ndarray, same_flags: np.ndarray):
        """Called once per batch of ``write_pages``, before any of its pages is stored, with
        the pages and their same-filled flags: per-page work that does not depend on the
        device's state (a dedup design hashes here). A design that takes fewer pages as
        same-filled clears their flags here (they are then compressed and stored with
        ``store_page``). Returns one value per page, handed to ``store_page`` as
        ``prepared`` (a page skipped because its I/O was refused is never stored, and its
        value is dropped with it), or None."""
        return None

    def store_page(self, index: int, page, block: bytes, cached: bool, prepared=None) -> bool:
        """Store a page that is not same-filled in slot ``index`` (``block`` is its compressed
        form, ``prepared`` what ``prepare_batch`` returned for it, None from ``write_page``);
        False if ``mem_limit`` refused it. Dedup designs override this to look for an
        identical stored page first; here the compression counts as work and the object is
        stored (``store_object``)."""
        self.work_compressions += 1
        return self.store_object(index, page, block, cached)

    def write_pages(self, pages, indexes=None, chunk_pages: int = DEFAULT_CHUNK_PAGES, progress=None,
                    io_pages: int = 1) -> int:
        """Store every page of ``pages`` (page i into slot ``indexes[i]``, default i) in order.

        ``pages`` is a :class:`PageSet`, a (n, 4096) uint8 array, or a list of 4 KiB buffers
        (gathered chunk by chunk into one reused array). Same-filled tests and compression
        run in compiled batches; the pool sees the pages one at a time, in order, exactly as
        the kernel's write path. ``io_pages``: pages per write I/O (see :func:`io_spans`); a
        page refused by ``mem_limit`` ends its I/O, and the rest of that I/O is skipped.
        Returns the number of pages refused (each one ``failed_writes``).
        """
        if isinstance(pages, PageSet):
            pages = pages.array
        n = pages.shape[0] if isinstance(pages, np.ndarray) else len(pages)
        if indexes is None:
            indexes = range(n)
        elif len(indexes) != n:
            raise ValueError("indexes must name one slot per page")
        if not 1 <= io_pages <= MAX_IO_PAGES:
            io_spans((), io_pages)                     # raises the range error
        done = self._write_pages_dispatch(pages, n, indexes, chunk_pages, progress, io_pages)
        if done is not None:
            return done
        # io_end[p]: the position just past the I/O that page p belongs to
        io_end = None
        if io_pages > 1:
            io_end = np.empty(n, np.int64)
            for pos, _slot, cnt in io_spans(indexes, io_pages):
                io_end[pos:pos + cnt] = pos + cnt
            io_end = io_end.tolist()
        elif io_pages != 1:
            io_spans((), io_pages)                     # raises the range error
        with no_gc():
            return self._write_pages(pages, n, indexes, chunk_pages, progress, io_end)

    def _write_pages_dispatch(self, pages, n, indexes, chunk_pages, progress, io_pages) -> int | None:
        """The compiled path when it may stand in (see ``compiled_eligible``); None otherwise."""
        if n == 0 or not self.compiled_eligible() or not self.enter_arrays(n):
            return None
        if isinstance(pages, np.ndarray) and (pages.ndim != 2 or pages.shape[1] != PAGE_SIZE):
            raise ValueError(f"zram: pages must be rows of {PAGE_SIZE} bytes")
        with no_gc():
            return self._write_pages_fast(pages, n, indexes, chunk_pages, progress, io_pages)

    def _write_pages(self, arr, n, indexes, chunk_pages, progress, io_end=None) -> int:
        failed = 0
        skip_to = 0                  # positions before this are skipped (rest of a refused I/O)
        self.last_failed = []
        self.last_skipped = []
        digest = xxhash.xxh3_128_digest
        gather = None
        if not isinstance(arr, np.ndarray):
            gather = np.empty((min(n, chunk_pages), PAGE_SIZE), np.uint8)
        for start in range(0, n, chunk_pages):
            if gather is None:
                chunk = arr[start:start + chunk_pages]
            else:
                bufs = arr[start:start + chunk_pages]
                chunk = gather[:len(bufs)]
                flat = chunk.reshape(-1)
                for j, b in enumerate(bufs):
                    flat[j * PAGE_SIZE:(j + 1) * PAGE_SIZE] = np.frombuffer(b, np.uint8)
            k = chunk.shape[0]
            flags = np.empty(k, np.uint8)
            fills = np.empty(k, np.uint64)
            _same_filled_batch(chunk, flags, fills)
            if not self.detect_same_filled:
                flags[:] = 0
            prepared = self.prepare_batch(chunk, flags)
            rows = np.flatnonzero(flags == 0)
            keys = [digest(chunk[r]) for r in rows]
            blocks, cached = self.comp.compress_many(chunk[rows], keys) if len(rows) else ([], [])
            bi = 0
            fl = flags.tolist()
            fw = fills.tolist()
            for j in range(k):
                pos = start + j
                idx = indexes[pos]
                if not 0 <= idx < self.num_pages:
                    self.check_index(idx)
                if pos < skip_to:
                    self.last_skipped.append(pos)
                    if not fl[j]:
                        bi += 1
                    continue
                if fl[j]:
                    self.write_same_filled_page(idx, fw[j])
                else:
                    if not self.store_page(idx, chunk[j], blocks[bi], cached[bi],
                                           None if prepared is None else prepared[j]):
                        failed += 1
                        self.last_failed.append(pos)
                        if io_end is not None:
                            skip_to = io_end[pos]
                    bi += 1
            if progress is not None:
                progress.update(k)
        return failed

    # -- read / discard / compact -----------------------------------------------------------
    def read_page(self, index: int) -> bytes:
        """Return the 4096 bytes last stored in ``index`` (zeros if never written)."""
        self.check_index(index)
        fl = self.flags[index]
        if self._slots is not None and self.pool.arrays is not None and not self.bus.enabled:
            return self._read_page_fast(index, fl)
        if self.bus.enabled:
            self.bus.emit(ev.SlotRead(index, _flag_name(fl) if self.slot_allocated(index) else "empty"))
        if fl & ZRAM_SAME:
            return self.handle[index].to_bytes(8, "little") * 512
        size = self.size[index]
        if size == 0:
            return bytes(PAGE_SIZE)
        data = self.pool.read(self.handle[index], size)
        if size == PAGE_SIZE:
            return data
        self.work_decompressions += 1
        return self.comp.decompress(data, PAGE_SIZE)

    def compiled_object_id(self, slot_handle: int) -> int:
        """The pool's handle row for a slot's handle field in array form (a design whose slots
        point elsewhere, e.g. at a dedup entry, says how to get there)."""
        from ._zram_fast import HANDLE_BASE
        return (slot_handle - HANDLE_BASE) >> 3

    def _read_page_fast(self, index: int, fl: int) -> bytes:
        from ._zram_fast import read_object
        zh, zsz = self._slots
        if fl & ZRAM_SAME:
            return int(zh[index]).to_bytes(8, "little") * 512
        size = int(zsz[index])
        if size == 0:
            return bytes(PAGE_SIZE)
        dst = np.empty(size, np.uint8)
        read_object(self.pool.arrays.tup(), self.compiled_object_id(int(zh[index])), size, dst)
        data = dst.tobytes()
        if size == PAGE_SIZE:
            return data
        self.work_decompressions += 1
        return self.comp.decompress(data, PAGE_SIZE)

    def compiled_free_slots(self, indexes) -> bool:
        """Free slots in compiled code when the slot table and pool are in array form (False:
        not done, the caller frees them with ``slot_free``)."""
        if not self.in_array_form() or not self.compiled_eligible():
            return False
        from . import _zram_fast as F
        with self.array_state() as a:
            F.free_slots(a.pool.tup(), a.flags, a.handle, a.size, a.stats, np.asarray(indexes, np.int64).reshape(-1))
        return True

    # the store behind a swap device (engine.swap.SwapStore)
    def store_pages(self, pages, slots, io_pages: int = 1) -> list[int]:
        """Store page i in slot ``slots[i]`` with one :meth:`write_pages`; return the
        positions not stored: refused by ``mem_limit``, and (with ``io_pages`` > 1) the rest
        of each refused I/O, in ascending order."""
        self.write_pages(pages if isinstance(pages, np.ndarray) else list(pages), indexes=slots, io_pages=io_pages)
        if not self.last_skipped:
            return list(self.last_failed)
        return sorted(self.last_failed + self.last_skipped)

    def load(self, index: int) -> bytes:
        return self.read_page(index)

    def discard(self, indexes, io_pages: int | None = None) -> None:
        """Discards over whole pages: free each slot, one ``notify_free`` per page
        (``zram_bio_discard`` never fails, so cutting the slots into discard requests of
        ``io_pages`` pages, as the live harness does, changes no counter)."""
        indexes = list(indexes)
        for index in indexes:
            self.check_index(index)
        spans = io_spans(indexes, io_pages) if io_pages is not None else [(0, None, len(indexes))]
        if indexes and self.compiled_free_slots(indexes):
            self.notify_free += len(indexes)
            return
        for pos, _slot, cnt in spans:
            for index in indexes[pos:pos + cnt]:
                self.slot_free(index, "discard")
                self.notify_free += 1

    def slot_free_notify(self, index: int) -> None:
        """The swap layer released this slot (``swap_slot_free_notify``)."""
        self.check_index(index)
        self.notify_free += 1
        if not self.compiled_free_slots((index,)):
            self.slot_free(index, "swap_free")

    def compact(self) -> int:
        """``echo 1 > compact``: run ``zs_compact``; return pages freed."""
        return self.pool.compact()

    # -- stats ------------------------------------------------------------------------------
    def mm_stat(self) -> dict:
        return {
            "orig_data_size": self.pages_stored * PAGE_SIZE,
            "compr_data_size": self.compr_data_size,
            "mem_used_total": self.pool.total_pages() * PAGE_SIZE,
            "mem_limit": self.limit_pages * PAGE_SIZE,
            "mem_used_max": self.max_used_pages * PAGE_SIZE,
            "same_pages": self.same_pages,
            "pages_compacted": self.pool.pages_compacted,
            "huge_pages": self.huge_pages,
            "huge_pages_since": self.huge_pages_since,
        }

    def io_stat(self) -> dict:
        return {"failed_reads": self.failed_reads, "failed_writes": self.failed_writes,
                "invalid_io": self.invalid_io, "notify_free": self.notify_free}

    def stats(self) -> ZramStats:
        return ZramStats(self.mm_stat(), self.io_stat(), self.comp_algorithm)

    def mm_stat_line(self) -> str:
        """``mm_stat`` formatted as the kernel prints it."""
        v = list(self.mm_stat().values())
        return "%8d %8d %8d %8d %8d %8d %8d %8d %8d" % tuple(v)


def _flag_name(fl: int) -> str:
    if fl & ZRAM_SAME:
        return "same"
    if fl & ZRAM_HUGE:
        return "huge"
    return "normal"

