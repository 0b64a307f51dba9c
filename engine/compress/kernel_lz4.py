"""``kernel-lz4``: the exact model of zram's ``lz4`` backend (see ``_lz4_kernel``)."""
from __future__ import annotations

import lz4.block
import numpy as np

from . import _lz4_kernel as K
from .base import Compressor, register


@register
class KernelLZ4(Compressor):
    name = "kernel-lz4"
    kernel_name = "lz4"

    def __init__(self, acceleration: int = 1, cache=None):
        super().__init__(cache)
        self.acceleration = max(1, int(acceleration))
        self._dst = np.empty(K.bound(4096), np.uint8)
        self._table = np.empty(1 << K.HASH_LOG, np.uint16)

    def _compress_raw(self, page: np.ndarray) -> bytes:
        n = K.compress_block(np.ascontiguousarray(page), self._dst, self._table, self.acceleration)
        return self._dst[:n].tobytes()

    def _compress_raw_many(self, pages: np.ndarray) -> list[bytes]:
        k = pages.shape[0]
        out = np.empty((k, K.bound(pages.shape[1])), np.uint8)
        lengths = np.empty(k, np.int64)
        K.compress_pages(np.ascontiguousarray(pages), out, lengths, self.acceleration)
        return [out[i, :lengths[i]].tobytes() for i in range(k)]

    def decompress(self, block: bytes, size: int = 4096) -> bytes:
        self.decompressions += 1
        return lz4.block.decompress(block, uncompressed_size=size)
