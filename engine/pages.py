"""Page sets: raw bytes, a multiple of 4096 long, page ``i`` at offset ``i * 4096``.

A page set is memory-mapped, never read into Python objects as a whole, so a multi-GiB file
is processed in bounded memory: :meth:`PageSet.chunks` yields numpy views of a few MiB at a
time and :meth:`PageSet.page` returns one page as a ``memoryview`` into the mapping.
"""
from __future__ import annotations

import mmap
import os
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from pathlib import Path

import numpy as np

from . import lease
from .errors import InputError

PAGE_SIZE = 4096
PAGE_SHIFT = 12
#: pages per chunk handed to the compiled kernels (16 MiB)
DEFAULT_CHUNK_PAGES = 4096
#: single-page reads of a memory-mapped page set between two releases of the range they read
#: (:meth:`PageSet.page_bytes`): 16 MiB of the file when read in order; read at random, each
#: read may map the 64 KiB around it (the kernel's ``fault_around_bytes``), 256 MiB at most
RELEASE_EVERY = 4096


def open_input(path: str | os.PathLike, what: str):
    """Open a regular file for binary reading (see :func:`engine.fileio.open_input`)."""
    from .fileio import open_input as _open
    return _open(path, what)


def default_pages_path() -> str:
    """The embedded default page set: real memory of known programs (see the README)."""
    from importlib.resources import files
    return str(files("engine") / "data" / "default.pages")


_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(s: str, what: str = "--mem-limit", limit: int = 1 << 50) -> int:
    """Bytes like the kernel's memparse: ``1048576``, ``64K``, ``100M``, ``2G``."""
    t = str(s).strip().lower()
    mult = 1
    if t and t[-1] in _SUFFIX:
        mult = _SUFFIX[t[-1]]
        t = t[:-1]
    if not (t.isascii() and t.isdigit()) or len(t) > 20:
        raise InputError(f"{what}: cannot parse {s!r} as bytes (e.g. 1048576, 64K, 100M)")
    v = int(t) * mult
    if v > limit:
        raise InputError(f"{what}: {s!r} is more than {limit} bytes")
    return v


class PageSet:
    """A read-only sequence of 4 KiB pages backed by a memory-mapped file or a bytes object."""

    def __init__(self, buffer, name: str = "<memory>", _file=None, _mmap=None):
        self.name = name
        self._file = _file
        self._mmap = _mmap
        self._buf = memoryview(buffer).cast("B")
        if len(self._buf) % PAGE_SIZE:
            raise InputError(f"{name}: length {len(self._buf)} is not a multiple of {PAGE_SIZE}")
        self.array = np.frombuffer(self._buf, dtype=np.uint8).reshape(-1, PAGE_SIZE)
        #: the object slicing returns ``bytes`` from (the mapping, or a bytes buffer), if any
        self._raw = buffer if isinstance(buffer, (bytes, mmap.mmap)) else None
        #: reads through :meth:`page_bytes` / :meth:`page_view` since the last release, and
        #: the lowest and highest page they read
        self._touched = self._lo = self._hi = 0

    # -- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "PageSet":
        """Memory-map a page-set file; bad files raise :class:`InputError` naming the file."""
        p = Path(path)
        f = open_input(p, "page-set file")
        try:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise InputError(f"{p}: empty page-set file (no pages)")
            if size % PAGE_SIZE:
                raise InputError(
                    f"{p}: length {size} is not a multiple of {PAGE_SIZE} "
                    f"(truncated? {size // PAGE_SIZE} whole pages and {size % PAGE_SIZE} stray bytes)")
            lease.take(f.fileno(), str(p))     # a truncation by another process stops the run, not SIGBUS
            try:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except OSError as e:
                raise InputError(f"{p}: cannot memory-map page-set file ({e.strerror})") from None
        except BaseException:
            lease.drop(f.fileno())
            f.close()
            raise
        return cls(mm, name=str(p), _file=f, _mmap=mm)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray, name: str = "<memory>") -> "PageSet":
        if len(data) == 0:
            raise InputError(f"{name}: empty page set (no pages)")
        return cls(bytes(data), name=name)

    @classmethod
    def from_pages(cls, pages, name: str = "<memory>") -> "PageSet":
        pages = list(pages)
        for i, pg in enumerate(pages):
            if len(pg) != PAGE_SIZE:
                raise InputError(f"{name}: page {i} is {len(pg)} bytes, not {PAGE_SIZE}")
        return cls.from_bytes(b"".join(bytes(p) for p in pages), name=name)

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.array.shape[0]

    @property
    def nbytes(self) -> int:
        return len(self) * PAGE_SIZE

    def page(self, i: int) -> memoryview:
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}: page {i} out of range (0..{len(self) - 1})")
        return self._buf[i * PAGE_SIZE:(i + 1) * PAGE_SIZE]

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.page(i))

    def __iter__(self) -> Iterator[memoryview]:
        for i in range(len(self)):
            yield self.page(i)

    def chunks(self, chunk_pages: int = DEFAULT_CHUNK_PAGES, start: int = 0,
               stop: int | None = None, release: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_page_index, uint8 array of shape (n, 4096))`` views, n <= chunk_pages,
        over pages ``start`` to ``stop - 1`` (default: all).

        A scan releases what it has read (``release``, the default): once the caller asks for
        the next chunk, the previous chunk's range of a memory-mapped file is dropped from this
        process (``madvise(MADV_DONTNEED)``), and so is the last chunk once the scan ends, so a
        scan of a 20 GiB file keeps only about one chunk resident. The mapping is read-only and
        shared, so nothing is lost: a view still held reads the same bytes again from the file."""
        if chunk_pages < 1:
            raise ValueError("chunk_pages must be at least 1")
        stop = len(self) if stop is None else min(stop, len(self))
        released = start * PAGE_SIZE
        released -= released % mmap.PAGESIZE
        for first in range(start, stop, chunk_pages):
            end = min(stop, first + chunk_pages)
            yield first, self.array[first:end]
            if release:
                released = self._release(released, end * PAGE_SIZE)

    def release(self, start: int = 0, stop: int | None = None) -> None:
        """Drop pages ``start`` to ``stop - 1`` (default: all) of a memory-mapped file from this
        process's resident memory (``madvise(MADV_DONTNEED)``, on whole system pages). Nothing
        is lost: the mapping is read-only and shared, so a later read of those pages, through
        any view, reads the same bytes again from the file. A page set held in memory
        (``from_bytes``) has nothing to release."""
        stop = len(self) if stop is None else min(stop, len(self))
        if stop <= start or self._mmap is None:
            return
        begin = start * PAGE_SIZE
        begin -= begin % mmap.PAGESIZE
        self._release(begin, stop * PAGE_SIZE)
        self._touched = 0

    def page_bytes(self, i: int) -> bytes:
        """Page ``i`` as a new ``bytes`` object (a 4 KiB copy; ``i`` must be in range, it is
        not checked). Reads through the mapping are counted (:meth:`_touch`), so reading pages
        one by one, in any order, keeps a bounded part of the file resident."""
        if self._mmap is not None:
            self._touch(i)
        raw = self._raw
        if raw is not None:
            return raw[i * PAGE_SIZE:(i + 1) * PAGE_SIZE]
        return self._buf[i * PAGE_SIZE:(i + 1) * PAGE_SIZE].tobytes()

    def page_view(self, i: int) -> memoryview:
        """Page ``i`` as a read-only memoryview into the page set (no copy; ``i`` must be in
        range; counted as a read like :meth:`page_bytes`)."""
        if self._mmap is not None:
            self._touch(i)
        return self._buf[i * PAGE_SIZE:(i + 1) * PAGE_SIZE]

    def _touch(self, i: int) -> None:
        """Count a single-page read of page ``i``; after :data:`RELEASE_EVERY` of them, release
        the range of pages they fell in. A sequential reader (a scan in address order) keeps
        about that many pages resident; a random one at most that many 64 KiB blocks (the
        kernel maps the page cache around a faulting page)."""
        t = self._touched
        if t == 0:
            self._lo = self._hi = i
        elif i < self._lo:
            self._lo = i
        elif i > self._hi:
            self._hi = i
        self._touched = t + 1
        if t + 1 >= RELEASE_EVERY:
            self.release(self._lo, self._hi + 1)

    def _release(self, begin: int, end: int) -> int:
        """Drop ``[begin, end)`` of the file mapping from this process's memory (whole
        system pages only); return how far it is released."""
        if self._mmap is None or not hasattr(self._mmap, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return begin
        end -= end % mmap.PAGESIZE
        if end > begin:
            try:
                self._mmap.madvise(mmap.MADV_DONTNEED, begin, end - begin)
            except (OSError, ValueError):
                return begin
            return end
        return begin

    def close(self) -> None:
        self.array = None
        self._raw = None
        self._buf.release()
        mapped = False
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                # views of the mapping are still held (a traceback's frames, a caller's array):
                # it is unmapped when they go; its lease (held by the same open file) stays
                # until then, so nothing truncates the file under a live view
                mapped = True
        if self._file is not None:
            if not mapped:
                lease.drop(self._file.fileno())   # after the mapping is gone: a writer may go ahead
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"PageSet({self.name!r}, pages={len(self)})"


class IndexList(Sequence):
    """The page indexes a LIST names, kept as ranges (never materialised): ``len``, iteration
    in the order written, indexing, ``max``, and ``in`` cost nothing per index."""

    def __init__(self, ranges: list[range]):
        self.ranges = ranges
        self._ends = list(accumulate(len(r) for r in ranges))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __iter__(self) -> Iterator[int]:
        for r in self.ranges:
            yield from r

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(k)
        j = bisect_right(self._ends, k)
        before = self._ends[j - 1] if j else 0
        return self.ranges[j][k - before]

    def __contains__(self, x) -> bool:
        return any(x in r for r in self.ranges)

    def max(self) -> int:
        return max(r[-1] for r in self.ranges if len(r))

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, tuple, IndexList)) else NotImplemented

    def __repr__(self) -> str:
        return f"IndexList({self.ranges!r})"


#: a LIST may name each page a few times (each is one operation), not unboundedly many
MAX_LIST_FACTOR = 4


def parse_list(spec: str, what: str = "LIST", n_pages: int | None = None) -> IndexList:
    """Parse a page-index list such as ``0-99,200,300-399:3``.

    Comma-separated items; each is ``N`` or an inclusive range ``A-B`` with an optional step
    ``:S``. Order is kept as written (duplicates are kept too: each is one operation). With
    ``n_pages``, every index must name a page of the set (0 to n_pages - 1), and the list
    may hold at most ``MAX_LIST_FACTOR * n_pages`` operations. Numbers are checked before
    anything is built, and ranges stay ranges."""
    if spec is None or not spec.strip():
        raise InputError(f"{what}: empty list")
    if len(spec) > 1 << 20:
        raise InputError(f"{what}: list longer than 1 MiB of text")
    ranges: list[range] = []
    total = 0
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise InputError(f"{what}: empty item in {spec[:80]!r}")
        rng, _, step_s = item.partition(":")
        a_s, dash, b_s = rng.partition("-")
        fields = [x.strip() for x in (a_s, b_s if dash else a_s, step_s or "1")]
        if not all(f.isdigit() and f.isascii() for f in fields):
            raise InputError(f"{what}: cannot parse {item[:40]!r} (expected N, A-B or A-B:S with whole numbers)")
        if any(len(f) > 18 for f in fields):
            raise InputError(f"{what}: number too large in {item[:40]!r}")
        a, b, step = (int(f) for f in fields)
        if b < a or step < 1:
            raise InputError(f"{what}: bad range {item!r} (need 0 <= A <= B and step >= 1)")
        if n_pages is not None and b >= n_pages:
            raise InputError(f"{what}: {item!r} names page {b}, but the page set has {n_pages} pages "
                             f"(0 to {n_pages - 1})")
        r = range(a, b + 1, step)
        total += len(r)
        if n_pages is not None and total > MAX_LIST_FACTOR * n_pages:
            raise InputError(f"{what}: more than {MAX_LIST_FACTOR} x {n_pages} operations listed")
        ranges.append(r)
    return IndexList(ranges)
