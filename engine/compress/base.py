"""The compressor interface and the content-hash cache."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import xxhash

from ..errors import InputError

#: model name -> the kernel's ``comp_algorithm`` name it reproduces
KERNEL_NAMES: dict[str, str] = {}
_REGISTRY: dict[str, type["Compressor"]] = {}
#: the kernel's default zram compressor (``comp_algorithm`` after a reset), as its model's name
DEFAULT_COMPRESSOR = "kernel-lzo-rle"


def register(cls):
    _REGISTRY[cls.name] = cls
    KERNEL_NAMES[cls.name] = cls.kernel_name
    return cls


def available_compressors() -> list[str]:
    return sorted(_REGISTRY)


def get_compressor(name: str, **params) -> "Compressor":
    if name in _REGISTRY:
        return _REGISTRY[name](**params)
    # accept the kernel's own name for a modelled backend ("lz4" -> "kernel-lz4")
    for model, kname in KERNEL_NAMES.items():
        if name == kname:
            return _REGISTRY[model](**params)
    raise InputError(f"--algo {name}: unknown compressor; use one of: {', '.join(available_compressors())} "
                     f"(or the kernel's names {', '.join(sorted(KERNEL_NAMES.values()))})")


def page_digest(page) -> bytes:
    """128-bit content hash used as the cache key (never as an identity test for sharing)."""
    return xxhash.xxh3_128_digest(page)


class CompressionCache:
    """Compressed blocks keyed by a 128-bit content hash, bounded in bytes (oldest out first).

    The cache only saves work: it never decides that two pages are identical for sharing
    purposes (the mechanisms compare full contents for that).
    """

    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = max_bytes
        self._d: dict[bytes, bytes] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes):
        v = self._d.get(key)
        if v is None:
            self.misses += 1
        else:
            self.hits += 1
        return v

    def put(self, key: bytes, value: bytes) -> None:
        if key in self._d:
            return
        self._d[key] = value
        self.bytes += len(value) + 64
        while self.bytes > self.max_bytes and self._d:
            old = next(iter(self._d))
            self.bytes -= len(self._d.pop(old)) + 64

    def __len__(self):
        return len(self._d)


class Compressor(ABC):
    """One compression algorithm. Subclasses set ``name`` and ``kernel_name``.

    ``compress`` returns the exact block the kernel would store; results are cached by
    content hash so a duplicate page is never compressed twice.
    """

    name: str = ""
    kernel_name: str = ""

    def __init__(self, cache: CompressionCache | None = None):
        self.cache = cache if cache is not None else CompressionCache()
        #: pages actually run through the algorithm (cache misses)
        self.compressions = 0
        self.decompressions = 0

    @abstractmethod
    def _compress_raw(self, page: np.ndarray) -> bytes: ...

    @abstractmethod
    def _compress_raw_many(self, pages: np.ndarray) -> list[bytes]: ...

    @abstractmethod
    def decompress(self, block: bytes, size: int = 4096) -> bytes: ...

    def compress(self, page, key: bytes | None = None) -> tuple[bytes, bool]:
        """Return ``(block, was_cached)`` for one 4 KiB page."""
        if key is None:
            key = page_digest(page)
        blk = self.cache.get(key)
        if blk is not None:
            return blk, True
        arr = np.frombuffer(page, dtype=np.uint8) if not isinstance(page, np.ndarray) else page
        blk = self._compress_raw(arr)
        self.compressions += 1
        self.cache.put(key, blk)
        return blk, False

    def compress_many(self, pages: np.ndarray, keys: list[bytes]) -> tuple[list[bytes], list[bool]]:
        """Compress rows of ``pages`` (k x 4096), compiling the misses in one batch."""
        out: list[bytes | None] = [None] * len(keys)
        cached = [True] * len(keys)
        miss_rows: list[int] = []
        first_of: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            blk = self.cache.get(k)
            if blk is not None:
                out[i] = blk
            elif k in first_of:           # duplicate inside this batch: compress once
                self.cache.hits += 1
                self.cache.misses -= 1
            else:
                first_of[k] = i
                miss_rows.append(i)
                cached[i] = False
        if miss_rows:
            blocks = self._compress_raw_many(pages[miss_rows])
            self.compressions += len(blocks)
            for i, blk in zip(miss_rows, blocks):
                out[i] = blk
                self.cache.put(keys[i], blk)
        for i, k in enumerate(keys):
            if out[i] is None:
                out[i] = out[first_of[k]]
        return out, cached
